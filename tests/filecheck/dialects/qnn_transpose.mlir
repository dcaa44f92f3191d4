// RUN: dory-opt %s --split-input-file --verify-diagnostics | filecheck %s

// qnn.transpose and qnn.reshape {rows} (dory_mlir/dialects/qnn.py): attention's heads. A tensor of rows
// 1×K×R×1 holds its ONNX tensor's row-major bytes; `qnn.reshape {rows}` sees them with other features
// (rows into heads, a view), `qnn.transpose` permutes the ONNX tensor `shape` by `perm`, its result rows
// of the last permuted axis. The first case verifies and round-trips; each later one is a verifier
// error, matched on the line right after its chunk separator.

// [1, 16, 64] into 8 heads of 8: [1, 16, 8, 8]; queries [1, 8, 16, 8] and keys transposed [1, 8, 8, 16].
// CHECK:      func.func @heads
// CHECK-NEXT:   %h = qnn.reshape %x {rows} : (tensor<1x64x16x1xsi8>) -> tensor<1x8x128x1xsi8>
// CHECK-NEXT:   %q = qnn.transpose %h {shape = array<i64: 1, 16, 8, 8>, perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x128x1xsi8>) -> tensor<1x8x128x1xsi8>
// CHECK-NEXT:   %k = qnn.transpose %h {shape = array<i64: 1, 16, 8, 8>, perm = array<i64: 0, 2, 3, 1>} : (tensor<1x8x128x1xsi8>) -> tensor<1x16x64x1xsi8>
// CHECK-NEXT:   %t = qnn.transpose %x {shape = array<i64: 16, 64>, perm = array<i64: 1, 0>} : (tensor<1x64x16x1xsi8>) -> tensor<1x16x64x1xsi8>
func.func @heads(%x: tensor<1x64x16x1xsi8>) {
  %h = qnn.reshape %x {rows} : (tensor<1x64x16x1xsi8>) -> tensor<1x8x128x1xsi8>
  %q = qnn.transpose %h {shape = array<i64: 1, 16, 8, 8>, perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x128x1xsi8>) -> tensor<1x8x128x1xsi8>
  %k = qnn.transpose %h {shape = array<i64: 1, 16, 8, 8>, perm = array<i64: 0, 2, 3, 1>} : (tensor<1x8x128x1xsi8>) -> tensor<1x16x64x1xsi8>
  %t = qnn.transpose %x {shape = array<i64: 16, 64>, perm = array<i64: 1, 0>} : (tensor<1x64x16x1xsi8>) -> tensor<1x16x64x1xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}perm [0, 2, 2, 3] must permute the 4 axes of shape [1, 16, 8, 8] (rank 2 to 4)
func.func @not_a_permutation(%h: tensor<1x8x128x1xsi8>) {
  %q = qnn.transpose %h {shape = array<i64: 1, 16, 8, 8>, perm = array<i64: 0, 2, 2, 3>} : (tensor<1x8x128x1xsi8>) -> tensor<1x8x128x1xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}perm [0, 1, 2, 4, 3] must permute the 5 axes of shape [1, 2, 8, 8, 8] (rank 2 to 4)
func.func @rank_five(%h: tensor<1x8x128x1xsi8>) {
  %q = qnn.transpose %h {shape = array<i64: 1, 2, 8, 8, 8>, perm = array<i64: 0, 1, 2, 4, 3>} : (tensor<1x8x128x1xsi8>) -> tensor<1x8x128x1xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}input must be the rows 1x8x128x1 of shape [1, 16, 8, 8], got [1, 64, 16, 1]
func.func @shape_is_not_the_input(%x: tensor<1x64x16x1xsi8>) {
  %q = qnn.transpose %x {shape = array<i64: 1, 16, 8, 8>, perm = array<i64: 0, 2, 1, 3>} : (tensor<1x64x16x1xsi8>) -> tensor<1x8x128x1xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must be [1, 16, 64, 1], got [1, 8, 128, 1]
func.func @wrong_result(%h: tensor<1x8x128x1xsi8>) {
  %k = qnn.transpose %h {shape = array<i64: 1, 16, 8, 8>, perm = array<i64: 0, 2, 3, 1>} : (tensor<1x8x128x1xsi8>) -> tensor<1x8x128x1xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result element type ui8 differs from input si8
func.func @element_type(%h: tensor<1x8x128x1xsi8>) {
  %q = qnn.transpose %h {shape = array<i64: 1, 16, 8, 8>, perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x128x1xsi8>) -> tensor<1x8x128x1xui8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result of a rows reshape must be rows of features 1xKxRx1, got [1, 8, 16, 8]
func.func @rows_reshape_to_nchw(%x: tensor<1x64x16x1xsi8>) {
  %h = qnn.reshape %x {rows} : (tensor<1x64x16x1xsi8>) -> tensor<1x8x16x8xsi8>
  func.return
}
