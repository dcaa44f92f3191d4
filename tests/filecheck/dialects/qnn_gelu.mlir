// RUN: dory-opt %s --split-input-file --verify-diagnostics | filecheck %s

// qnn.gelu (dory_mlir/dialects/qnn.py): QuantLib's iGELU, elementwise, int32 result. The first case
// verifies and round-trips; each later one is a verifier error, matched on the line right after its
// chunk separator.

// CHECK:      func.func @elements
// CHECK-NEXT:   %y = qnn.gelu %x {b = -80 : i64, one = 7036 : i64} : (tensor<1x8x6x1xsi8>) -> tensor<1x8x6x1xsi32>
func.func @elements(%x: tensor<1x8x6x1xsi8>) {
  %y = qnn.gelu %x {b = -80 : i64, one = 7036 : i64} : (tensor<1x8x6x1xsi8>) -> tensor<1x8x6x1xsi32>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must have si32 elements, got si8
func.func @narrow_result(%x: tensor<1x8x6x1xsi8>) {
  %y = qnn.gelu %x {b = -80 : i64, one = 7036 : i64} : (tensor<1x8x6x1xsi8>) -> tensor<1x8x6x1xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result shape [1, 8, 5, 1] differs from input shape [1, 8, 6, 1]
func.func @shape(%x: tensor<1x8x6x1xsi8>) {
  %y = qnn.gelu %x {b = -80 : i64, one = 7036 : i64} : (tensor<1x8x6x1xsi8>) -> tensor<1x8x5x1xsi32>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}values may reach ±{{[0-9]+}}, beyond 32 bits
func.func @overflow(%x: tensor<1x8x6x1xsi8>) {
  %y = qnn.gelu %x {b = -8192 : i64, one = 7036 : i64} : (tensor<1x8x6x1xsi8>) -> tensor<1x8x6x1xsi32>
  func.return
}
