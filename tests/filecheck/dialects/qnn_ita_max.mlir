// RUN: dory-opt %s --split-input-file --verify-diagnostics | filecheck %s

// qnn.ita_max (dory_mlir/dialects/qnn.py): ITA's integer softmax (QuantLib's ITAMax) over the features
// (channels) of each row (pixel) of a tensor of int8 rows 1×K×R×1, an unsigned result. The first case
// verifies and round-trips; each later one is a verifier error, matched on the line right after its
// chunk separator.

// CHECK:      func.func @rows
// CHECK-NEXT:   %y = qnn.ita_max %x {group_width = 64 : i64, n_levels = 256 : i64} : (tensor<1x64x6x1xsi8>) -> tensor<1x64x6x1xui8>
func.func @rows(%x: tensor<1x64x6x1xsi8>) {
  %y = qnn.ita_max %x {group_width = 64 : i64, n_levels = 256 : i64} : (tensor<1x64x6x1xsi8>) -> tensor<1x64x6x1xui8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}input must be an si8 tensor of rows (rank 4), got tensor<1x64x6x1xui8>
func.func @unsigned_input(%x: tensor<1x64x6x1xui8>) {
  %y = qnn.ita_max %x {group_width = 64 : i64, n_levels = 256 : i64} : (tensor<1x64x6x1xui8>) -> tensor<1x64x6x1xui8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must be ui8, got si8
func.func @signed_result(%x: tensor<1x64x6x1xsi8>) {
  %y = qnn.ita_max %x {group_width = 64 : i64, n_levels = 256 : i64} : (tensor<1x64x6x1xsi8>) -> tensor<1x64x6x1xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}n_levels must be 256 (ITA's 8-bit steps of 1/32), got 16
func.func @levels(%x: tensor<1x64x6x1xsi8>) {
  %y = qnn.ita_max %x {group_width = 64 : i64, n_levels = 16 : i64} : (tensor<1x64x6x1xsi8>) -> tensor<1x64x6x1xui8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}group_width 24 does not divide the 64 features
func.func @groups(%x: tensor<1x64x6x1xsi8>) {
  %y = qnn.ita_max %x {group_width = 24 : i64, n_levels = 256 : i64} : (tensor<1x64x6x1xsi8>) -> tensor<1x64x6x1xui8>
  func.return
}
