// RUN: dory-opt %s --split-input-file --verify-diagnostics | filecheck %s

// qnn.hardswish (dory_mlir/dialects/qnn.py): QuantLib's iHardswish, elementwise, int32 result. The
// first case verifies and round-trips; each later one is a verifier error, matched on the line right
// after its chunk separator.

// CHECK:      func.func @elements
// CHECK-NEXT:   %y = qnn.hardswish %x {one_over_six = 33 : i64, three = 765 : i64, six = 1530 : i64} : (tensor<1x1x10x100xsi8>) -> tensor<1x1x10x100xsi32>
func.func @elements(%x: tensor<1x1x10x100xsi8>) {
  %y = qnn.hardswish %x {one_over_six = 33 : i64, three = 765 : i64, six = 1530 : i64} : (tensor<1x1x10x100xsi8>) -> tensor<1x1x10x100xsi32>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must have si32 elements, got si8
func.func @narrow_result(%x: tensor<1x1x10x100xsi8>) {
  %y = qnn.hardswish %x {one_over_six = 33 : i64, three = 765 : i64, six = 1530 : i64} : (tensor<1x1x10x100xsi8>) -> tensor<1x1x10x100xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}values may reach ±3901500000, beyond 32 bits
func.func @overflow(%x: tensor<1x1x10x100xsi8>) {
  %y = qnn.hardswish %x {one_over_six = 10000 : i64, three = 765 : i64, six = 1530 : i64} : (tensor<1x1x10x100xsi8>) -> tensor<1x1x10x100xsi32>
  func.return
}
