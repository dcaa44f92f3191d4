// RUN: dory-opt %s --split-input-file --verify-diagnostics | filecheck %s

// qnn.layer_norm (dory_mlir/dialects/qnn.py): QuantLib's iLayerNorm over the features (channels) of
// each row (pixel) of a tensor of rows 1×K×R×1, an si32 weight and bias per feature. The first case
// verifies and round-trips; each later one is a verifier error, matched on the line right after its
// chunk separator.

// CHECK:      func.func @rows
// CHECK-NEXT:   %y = qnn.layer_norm %x, %w, %b {shift = 16 : i64} : (tensor<1x8x6x1xsi8>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x6x1xsi8>
func.func @rows(%x: tensor<1x8x6x1xsi8>, %w: tensor<8xsi32>, %b: tensor<8xsi32>) {
  %y = qnn.layer_norm %x, %w, %b {shift = 16 : i64} : (tensor<1x8x6x1xsi8>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x6x1xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}bias must be si32 [8], got tensor<8xsi8>
func.func @bias_type(%x: tensor<1x8x6x1xsi8>, %w: tensor<8xsi32>, %b: tensor<8xsi8>) {
  %y = qnn.layer_norm %x, %w, %b {shift = 16 : i64} : (tensor<1x8x6x1xsi8>, tensor<8xsi32>, tensor<8xsi8>) -> tensor<1x8x6x1xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}weight must be si32 [8], got tensor<6xsi32>
func.func @weight_shape(%x: tensor<1x8x6x1xsi8>, %w: tensor<6xsi32>, %b: tensor<8xsi32>) {
  %y = qnn.layer_norm %x, %w, %b {shift = 16 : i64} : (tensor<1x8x6x1xsi8>, tensor<6xsi32>, tensor<8xsi32>) -> tensor<1x8x6x1xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must be an 8-bit tensor of the input's shape [1, 8, 6, 1]
func.func @wide_result(%x: tensor<1x8x6x1xsi8>, %w: tensor<8xsi32>, %b: tensor<8xsi32>) {
  %y = qnn.layer_norm %x, %w, %b {shift = 16 : i64} : (tensor<1x8x6x1xsi8>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x6x1xsi16>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}shift must be in [0, 31], got 40
func.func @shift(%x: tensor<1x8x6x1xsi8>, %w: tensor<8xsi32>, %b: tensor<8xsi32>) {
  %y = qnn.layer_norm %x, %w, %b {shift = 40 : i64} : (tensor<1x8x6x1xsi8>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x6x1xsi8>
  func.return
}
