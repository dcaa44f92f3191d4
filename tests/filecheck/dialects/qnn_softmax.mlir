// RUN: dory-opt %s --split-input-file --verify-diagnostics | filecheck %s

// qnn.softmax (dory_mlir/dialects/qnn.py): QuantLib's iSoftmax over the features (channels) of each
// row (pixel) of a tensor of rows 1×K×R×1. The first case verifies and round-trips; each later one
// is a verifier error, matched on the line right after its chunk separator.

// 6 rows of 8 features, Deeploy's coefficients.
// CHECK:      func.func @rows
// CHECK-NEXT:   %y = qnn.softmax %x {coeff_a = 1 : i64, coeff_b = 345 : i64, coeff_c = 62395 : i64, log2 = 255 : i64, n_levels = 256 : i64} : (tensor<1x8x6x1xsi8>) -> tensor<1x8x6x1xui8>
func.func @rows(%x: tensor<1x8x6x1xsi8>) {
  %y = qnn.softmax %x {coeff_a = 1 : i64, coeff_b = 345 : i64, coeff_c = 62395 : i64, log2 = 255 : i64, n_levels = 256 : i64} : (tensor<1x8x6x1xsi8>) -> tensor<1x8x6x1xui8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must be ui8, got si8
func.func @signed_result(%x: tensor<1x8x6x1xsi8>) {
  %y = qnn.softmax %x {coeff_a = 1 : i64, coeff_b = 345 : i64, coeff_c = 62395 : i64, log2 = 255 : i64, n_levels = 256 : i64} : (tensor<1x8x6x1xsi8>) -> tensor<1x8x6x1xsi8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}input must have 8-bit elements, got si16
func.func @wide_input(%x: tensor<1x8x6x1xsi16>) {
  %y = qnn.softmax %x {coeff_a = 1 : i64, coeff_b = 345 : i64, coeff_c = 62395 : i64, log2 = 255 : i64, n_levels = 256 : i64} : (tensor<1x8x6x1xsi16>) -> tensor<1x8x6x1xui8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}n_levels must be in [2, 256], got 512
func.func @levels(%x: tensor<1x8x6x1xsi8>) {
  %y = qnn.softmax %x {coeff_a = 1 : i64, coeff_b = 345 : i64, coeff_c = 62395 : i64, log2 = 255 : i64, n_levels = 512 : i64} : (tensor<1x8x6x1xsi8>) -> tensor<1x8x6x1xui8>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}exponentials reach [70676, 181420]: over 30000 features the 32-bit sum or the products by 255 would overflow
func.func @overflow(%x: tensor<1x30000x1x1xsi8>) {
  %y = qnn.softmax %x {coeff_a = 1 : i64, coeff_b = 345 : i64, coeff_c = 62395 : i64, log2 = 255 : i64, n_levels = 256 : i64} : (tensor<1x30000x1x1xsi8>) -> tensor<1x30000x1x1xui8>
  func.return
}
