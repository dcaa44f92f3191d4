// RUN: dory-opt %s --split-input-file --verify-diagnostics | filecheck %s

// One case per verifier error of the qnn dialect (dory_mlir/dialects/qnn.py). With
// --verify-diagnostics the driver prints each case's error message as the first line
// of its output chunk, so every case checks the chunk separator and then its message
// on the very next line: a case that fails with any other message (or verifies) fails
// the test. (The separator is matched as `{{^//}} -----` because the literal text
// would split this file.)

// qnn.constant: declared result type differs from the value
// CHECK:      {{^}}result type tensor<3xsi8> differs from the value's type tensor<2xsi8>

%c = "qnn.constant"() <{value = dense<1> : tensor<2xsi8>}> : () -> tensor<3xsi8>

// -----

// qnn.constant: float elements
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}expected integer elements, got f32

%c = qnn.constant dense<1.000000e+00> : tensor<2xf32>

// -----

// qnn.conv: input not NCHW
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}input must have rank 4, got shape [4, 8, 8]

func.func @conv(%x: tensor<4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: 32-bit activation
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}input must have at most 16-bit elements, got si32

func.func @conv(%x: tensor<1x4x8x8xsi32>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xsi32>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: a pad value the input type cannot hold
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}pad_value 300 is outside the input's range [0, 255]

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, pad_value = 300 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x8x8xsi32>
  func.return
}

// -----

// qnn.conv: weight not OIHW
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}weight must be OIHW (rank 4), got shape [8, 4, 9]

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x9xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x9xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: unsigned weight
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}weight must have si8 (or narrower signed) elements, got ui8

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xui8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xui8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: weight wider than 8 bits
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}weight must have si8 (or narrower signed) elements, got si16

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi16>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi16>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: groups do not divide the input channels
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}groups 3 must divide input channels 4 and output channels 6

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<6x1x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 3 : i64} : (tensor<1x4x8x8xui8>, tensor<6x1x3x3xsi8>) -> tensor<1x6x6x6xsi32>
  func.return
}

// -----

// qnn.conv: groups do not divide the output channels
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}groups 4 must divide input channels 4 and output channels 6

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<6x1x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 4 : i64} : (tensor<1x4x8x8xui8>, tensor<6x1x3x3xsi8>) -> tensor<1x6x6x6xsi32>
  func.return
}

// -----

// qnn.conv: groups = 0
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}groups 0 must divide input channels 4 and output channels 8

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 0 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: weight input channels do not match channels / groups
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}weight has 4 input channels per group, expected 2 (4 channels / 2 groups)

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: depthwise weight used with groups = 1
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}weight has 1 input channels per group, expected 4 (4 channels / 1 groups)

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<4x1x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<4x1x3x3xsi8>) -> tensor<1x4x6x6xsi32>
  func.return
}

// -----

// qnn.conv: signless bias
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}bias must have si32 elements, got i32

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>, %b: tensor<8xi32>) {
  %y = qnn.conv %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<8xi32>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: bias shape
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}bias must have shape [8], got [4]

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>, %b: tensor<4xsi32>) {
  %y = qnn.conv %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<4xsi32>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: 8-bit result
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must have si32 elements, got si8

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi8>
  func.return
}

// -----

// qnn.conv: result channels differ from the weight
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must be 1x8xHxW, got [1, 4, 6, 6]

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x4x6x6xsi32>
  func.return
}

// -----

// qnn.conv: rank-5 result
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must be 1x8xHxW, got [1, 8, 6, 6, 1]

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6x1xsi32>
  func.return
}

// -----

// qnn.conv: dilations length
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dilations must have 2 entries, got 1

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: zero dilation
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dilations entries must be >= 1, got [1, 0]

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 0>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: strides length
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}strides must have 2 entries, got 3

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: zero stride
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}strides entries must be >= 1, got [0, 1]

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 0, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: pads length
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}pads must have 4 entries, got 2

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: negative pads
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}pads entries must be >= 0, got [0, 0, -1, 0]

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, -1, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: kernel larger than the input
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}window 3 (dilation 1) is larger than the padded input extent 2

func.func @conv(%x: tensor<1x4x2x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x2x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x1x6xsi32>
  func.return
}

// -----

// qnn.conv: dilated kernel larger than the input (W axis)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}window 3 (dilation 4) is larger than the padded input extent 8

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 4>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x1xsi32>
  func.return
}

// -----

// qnn.conv: result H ignores the stride and pads
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}output H must be 4 for input 8, kernel 3, stride 2, pads 1+1, dilation 1; got 8

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x8x4xsi32>
  func.return
}

// -----

// qnn.conv: result W ignores the asymmetric pads
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}output W must be 7 for input 8, kernel 3, stride 1, pads 1+0, dilation 1; got 6

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 1, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.conv: result H ignores the dilation
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}output H must be 4 for input 8, kernel 3, stride 1, pads 0+0, dilation 2; got 6

func.func @conv(%x: tensor<1x4x8x8xui8>, %w: tensor<8x4x3x3xsi8>) {
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 2, 2>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x6x6xsi32>
  func.return
}

// -----

// qnn.linear: 4-D input (needs a qnn.reshape first)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}input must have rank 2, got shape [1, 64, 1, 1]

func.func @linear(%x: tensor<1x64x1x1xui8>, %w: tensor<10x64xsi8>) {
  %y = qnn.linear %x, %w : (tensor<1x64x1x1xui8>, tensor<10x64xsi8>) -> tensor<1x10xsi32>
  func.return
}

// -----

// qnn.linear: 32-bit input
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}input must have at most 16-bit elements, got ui32

func.func @linear(%x: tensor<1x64xui32>, %w: tensor<10x64xsi8>) {
  %y = qnn.linear %x, %w : (tensor<1x64xui32>, tensor<10x64xsi8>) -> tensor<1x10xsi32>
  func.return
}

// -----

// qnn.linear: weight K differs from the input
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}weight must have shape [M, 64], got [10, 32]

func.func @linear(%x: tensor<1x64xui8>, %w: tensor<10x32xsi8>) {
  %y = qnn.linear %x, %w : (tensor<1x64xui8>, tensor<10x32xsi8>) -> tensor<1x10xsi32>
  func.return
}

// -----

// qnn.linear: rank-3 weight
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}weight must have shape [M, 64], got [10, 64, 1]

func.func @linear(%x: tensor<1x64xui8>, %w: tensor<10x64x1xsi8>) {
  %y = qnn.linear %x, %w : (tensor<1x64xui8>, tensor<10x64x1xsi8>) -> tensor<1x10xsi32>
  func.return
}

// -----

// qnn.linear: signless weight
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}weight must have si8 (or narrower signed) elements, got i8

func.func @linear(%x: tensor<1x64xui8>, %w: tensor<10x64xi8>) {
  %y = qnn.linear %x, %w : (tensor<1x64xui8>, tensor<10x64xi8>) -> tensor<1x10xsi32>
  func.return
}

// -----

// qnn.linear: bias element type
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}bias must have si32 elements, got si64

func.func @linear(%x: tensor<1x64xui8>, %w: tensor<10x64xsi8>, %b: tensor<10xsi64>) {
  %y = qnn.linear %x, %w, %b : (tensor<1x64xui8>, tensor<10x64xsi8>, tensor<10xsi64>) -> tensor<1x10xsi32>
  func.return
}

// -----

// qnn.linear: bias shape
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}bias must have shape [10], got [1, 10]

func.func @linear(%x: tensor<1x64xui8>, %w: tensor<10x64xsi8>, %b: tensor<1x10xsi32>) {
  %y = qnn.linear %x, %w, %b : (tensor<1x64xui8>, tensor<10x64xsi8>, tensor<1x10xsi32>) -> tensor<1x10xsi32>
  func.return
}

// -----

// qnn.linear: 8-bit result
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must have si32 elements, got si8

func.func @linear(%x: tensor<1x64xui8>, %w: tensor<10x64xsi8>) {
  %y = qnn.linear %x, %w : (tensor<1x64xui8>, tensor<10x64xsi8>) -> tensor<1x10xsi8>
  func.return
}

// -----

// qnn.linear: result shape
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must have shape [1, 10], got [1, 5]

func.func @linear(%x: tensor<1x64xui8>, %w: tensor<10x64xsi8>) {
  %y = qnn.linear %x, %w : (tensor<1x64xui8>, tensor<10x64xsi8>) -> tensor<1x5xsi32>
  func.return
}

// -----

// qnn.requant: result shape
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result shape [1, 8, 2, 2] differs from input shape [1, 8, 4, 4]

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x2x2xui8>
  func.return
}

// -----

// qnn.requant: float input
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}expected integer elements, got f32

func.func @requant(%x: tensor<1x8x4x4xf32>, %m: tensor<8xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xf32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x4x4xf32>
  func.return
}

// -----

// qnn.requant: mul has neither one entry per channel nor one entry
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}mul must have shape [8] (per channel), [1] (per tensor), [4, 8] or [4, 1] (per row), got [4]

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<4xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<4xsi32>, tensor<8xsi32>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.requant: add is 2-D but not one block per row (the input has 4 rows)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}add must have shape [8] (per channel), [1] (per tensor), [4, 8] or [4, 1] (per row), got [1, 8]

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<1x8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<1x8xsi32>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.requant: per-row constants need a rank-4 input (rows = H)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}mul must have shape [10] (per channel) or [1] (per tensor), got [1, 10]

func.func @requant(%x: tensor<1x10xsi32>, %m: tensor<1x10xsi32>, %a: tensor<1xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x10xsi32>, tensor<1x10xsi32>, tensor<1xsi32>) -> tensor<1x10xui8>
  func.return
}

// -----

// qnn.requant: per-channel constants on a 2-D (linear) result
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}mul must have shape [10] (per channel) or [1] (per tensor), got [8]

func.func @requant(%x: tensor<1x10xsi32>, %m: tensor<8xsi32>, %a: tensor<1xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x10xsi32>, tensor<8xsi32>, tensor<1xsi32>) -> tensor<1x10xui8>
  func.return
}

// -----

// qnn.requant: 16-bit mul
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}mul must have 32- or 64-bit elements, got si16

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi16>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi16>, tensor<8xsi32>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.requant: 8-bit add
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}add must have 32- or 64-bit elements, got si8

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<1xsi8>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<1xsi8>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.requant: zero divisor
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}divisor must be positive, got 0

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 0 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.requant: negative divisor
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}divisor must be positive, got -256

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = -256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.requant: unknown rounding
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}rounding must be one of floor, trunc, got 'round'

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "round", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.requant: 16-bit intermediate
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}intermediate_bits must be 32 or 64, got 16

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 16 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.requant: 48-bit intermediate with 64-bit constants
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}intermediate_bits must be 32 or 64, got 48

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi64>, %a: tensor<8xsi64>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 48 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi64>, tensor<8xsi64>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.requant: min > max
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}min 10 is greater than max 5

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 10 : i64, max = 5 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.requant: clip range below an unsigned result
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}clip range [-1, 255] does not fit the result type ui8 [0, 255]

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = -1 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.requant: clip range above a signed result
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}clip range [-128, 128] does not fit the result type si8 [-128, 127]

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = -128 : i64, max = 128 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x4x4xsi8>
  func.return
}

// -----

// qnn.requant: signless results count as signed
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}clip range [0, 255] does not fit the result type i8 [-128, 127]

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x4x4xi8>
  func.return
}

// -----

// qnn.requant: float result
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}expected integer elements, got f32

func.func @requant(%x: tensor<1x8x4x4xsi32>, %m: tensor<8xsi32>, %a: tensor<8xsi32>) {
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x4x4xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x4x4xf32>
  func.return
}

// -----

// qnn.add: operand shapes differ
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}operands must have the same shape, got [1, 8, 4, 4] and [1, 8, 2, 2]

func.func @add(%l: tensor<1x8x4x4xui8>, %r: tensor<1x8x2x2xui8>) {
  %y = qnn.add %l, %r {mul = array<i64: 1, 1>, add = array<i64: 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x8x4x4xui8>, tensor<1x8x2x2xui8>) -> tensor<1x8x4x4xsi32>
  func.return
}

// -----

// qnn.add: 32-bit lhs
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}lhs must have at most 16-bit elements, got si32

func.func @add(%l: tensor<1x8x4x4xsi32>, %r: tensor<1x8x4x4xui8>) {
  %y = qnn.add %l, %r {mul = array<i64: 1, 1>, add = array<i64: 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x8x4x4xsi32>, tensor<1x8x4x4xui8>) -> tensor<1x8x4x4xsi32>
  func.return
}

// -----

// qnn.add: 32-bit rhs
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}rhs must have at most 16-bit elements, got si32

func.func @add(%l: tensor<1x8x4x4xui8>, %r: tensor<1x8x4x4xsi32>) {
  %y = qnn.add %l, %r {mul = array<i64: 1, 1>, add = array<i64: 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x8x4x4xui8>, tensor<1x8x4x4xsi32>) -> tensor<1x8x4x4xsi32>
  func.return
}

// -----

// qnn.add: result shape
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must have shape [1, 8, 4, 4], got [1, 8, 2, 2]

func.func @add(%l: tensor<1x8x4x4xui8>, %r: tensor<1x8x4x4xui8>) {
  %y = qnn.add %l, %r {mul = array<i64: 1, 1>, add = array<i64: 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x8x4x4xui8>, tensor<1x8x4x4xui8>) -> tensor<1x8x2x2xsi32>
  func.return
}

// -----

// qnn.add: 8-bit result
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must have si32 elements, got ui8

func.func @add(%l: tensor<1x8x4x4xui8>, %r: tensor<1x8x4x4xui8>) {
  %y = qnn.add %l, %r {mul = array<i64: 1, 1>, add = array<i64: 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x8x4x4xui8>, tensor<1x8x4x4xui8>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.add: one mul for two operands
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}mul must have one entry per operand (2)

func.func @add(%l: tensor<1x8x4x4xui8>, %r: tensor<1x8x4x4xui8>) {
  %y = qnn.add %l, %r {mul = array<i64: 1>, add = array<i64: 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x8x4x4xui8>, tensor<1x8x4x4xui8>) -> tensor<1x8x4x4xsi32>
  func.return
}

// -----

// qnn.add: three adds for two operands
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}add must have one entry per operand (2)

func.func @add(%l: tensor<1x8x4x4xui8>, %r: tensor<1x8x4x4xui8>) {
  %y = qnn.add %l, %r {mul = array<i64: 1, 1>, add = array<i64: 0, 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x8x4x4xui8>, tensor<1x8x4x4xui8>) -> tensor<1x8x4x4xsi32>
  func.return
}

// -----

// qnn.add: one shift for two operands
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}shift must have one entry per operand (2)

func.func @add(%l: tensor<1x8x4x4xui8>, %r: tensor<1x8x4x4xui8>) {
  %y = qnn.add %l, %r {mul = array<i64: 1, 1>, add = array<i64: 0, 0>, shift = array<i64: 3>} : (tensor<1x8x4x4xui8>, tensor<1x8x4x4xui8>) -> tensor<1x8x4x4xsi32>
  func.return
}

// -----

// qnn.add: shift of 32
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}shift entries must be in [0, 31], got [0, 32]

func.func @add(%l: tensor<1x8x4x4xui8>, %r: tensor<1x8x4x4xui8>) {
  %y = qnn.add %l, %r {mul = array<i64: 1, 1>, add = array<i64: 0, 0>, shift = array<i64: 0, 32>} : (tensor<1x8x4x4xui8>, tensor<1x8x4x4xui8>) -> tensor<1x8x4x4xsi32>
  func.return
}

// -----

// qnn.add: negative shift
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}shift entries must be in [0, 31], got [-1, 0]

func.func @add(%l: tensor<1x8x4x4xui8>, %r: tensor<1x8x4x4xui8>) {
  %y = qnn.add %l, %r {mul = array<i64: 1, 1>, add = array<i64: 0, 0>, shift = array<i64: -1, 0>} : (tensor<1x8x4x4xui8>, tensor<1x8x4x4xui8>) -> tensor<1x8x4x4xsi32>
  func.return
}

// -----

// qnn.max_pool: input not NCHW
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}input must have rank 4, got shape [8, 8, 8]

func.func @pool(%x: tensor<8x8x8xui8>) {
  %y = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<8x8x8xui8>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.max_pool: 32-bit input
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}input must have at most 16-bit elements, got ui32

func.func @pool(%x: tensor<1x8x8x8xui32>) {
  %y = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui32>) -> tensor<1x8x4x4xui32>
  func.return
}

// -----

// qnn.max_pool: result element type
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result element type si8 differs from input ui8

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xsi8>
  func.return
}

// -----

// qnn.max_pool: result channels
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must keep the batch and channel dimensions of the input

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x4x4x4xui8>
  func.return
}

// -----

// qnn.max_pool: kernel length
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}kernel must have 2 entries, got 1

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.max_pool %x {kernel = array<i64: 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.max_pool: zero kernel
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}kernel entries must be >= 1, got [0, 2]

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.max_pool %x {kernel = array<i64: 0, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.max_pool: pad as large as the kernel
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}pads [0, 0, 0, 2] must be smaller than the kernel [2, 2]

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 2>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x5xui8>
  func.return
}

// -----

// qnn.max_pool: strides length
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}strides must have 2 entries, got 1

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.max_pool: negative pads
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}pads entries must be >= 0, got [-1, 0, 0, 0]

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: -1, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.max_pool: window larger than the input
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}window 3 (dilation 1) is larger than the padded input extent 2

func.func @pool(%x: tensor<1x8x2x2xui8>) {
  %y = qnn.max_pool %x {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x2x2xui8>) -> tensor<1x8x1x1xui8>
  func.return
}

// -----

// qnn.max_pool: result H ignores the pads
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}output H must be 5 for input 8, kernel 2, stride 2, pads 1+1, dilation 1; got 4

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 1, 0, 1, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.sum_pool: 32-bit input
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}input must have at most 16-bit elements, got si32

func.func @pool(%x: tensor<1x8x8x8xsi32>) {
  %y = qnn.sum_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xsi32>) -> tensor<1x8x4x4xsi32>
  func.return
}

// -----

// qnn.sum_pool: 8-bit result
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must have si32 elements, got ui8

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.sum_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
  func.return
}

// -----

// qnn.sum_pool: result batch
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must keep the batch and channel dimensions of the input

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.sum_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<2x8x4x4xsi32>
  func.return
}

// -----

// qnn.sum_pool: kernel length
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}kernel must have 2 entries, got 3

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.sum_pool %x {kernel = array<i64: 2, 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xsi32>
  func.return
}

// -----

// qnn.sum_pool: zero stride
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}strides entries must be >= 1, got [2, 0]

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.sum_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 0>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xsi32>
  func.return
}

// -----

// qnn.sum_pool: result W
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}output W must be 1 for input 8, kernel 8, stride 1, pads 0+0, dilation 1; got 8

func.func @pool(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.sum_pool %x {kernel = array<i64: 8, 8>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x1x8xsi32>
  func.return
}

// -----

// qnn.pad: input not NCHW
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}input must have rank 4, got shape [4, 8]

func.func @pad(%x: tensor<4x8xui8>) {
  %y = qnn.pad %x {pads = array<i64: 1, 1, 1, 1>, value = 0 : i64} : (tensor<4x8xui8>) -> tensor<1x4x10x10xui8>
  func.return
}

// -----

// qnn.pad: result element type
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result element type ui8 differs from input si8

func.func @pad(%x: tensor<1x4x8x8xsi8>) {
  %y = qnn.pad %x {pads = array<i64: 1, 1, 1, 1>, value = 0 : i64} : (tensor<1x4x8x8xsi8>) -> tensor<1x4x10x10xui8>
  func.return
}

// -----

// qnn.pad: pads length
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}pads must have 4 entries, got 2

func.func @pad(%x: tensor<1x4x8x8xui8>) {
  %y = qnn.pad %x {pads = array<i64: 1, 1>, value = 0 : i64} : (tensor<1x4x8x8xui8>) -> tensor<1x4x10x10xui8>
  func.return
}

// -----

// qnn.pad: negative pads
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}pads entries must be >= 0, got [1, 1, -1, 1]

func.func @pad(%x: tensor<1x4x8x8xui8>) {
  %y = qnn.pad %x {pads = array<i64: 1, 1, -1, 1>, value = 0 : i64} : (tensor<1x4x8x8xui8>) -> tensor<1x4x10x10xui8>
  func.return
}

// -----

// qnn.pad: result shape
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result shape must be [1, 4, 11, 13], got [1, 4, 10, 10]

func.func @pad(%x: tensor<1x4x8x8xui8>) {
  %y = qnn.pad %x {pads = array<i64: 1, 2, 2, 3>, value = 0 : i64} : (tensor<1x4x8x8xui8>) -> tensor<1x4x10x10xui8>
  func.return
}

// -----

// qnn.pad: negative value for an unsigned input
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}pad value -1 does not fit ui8

func.func @pad(%x: tensor<1x4x8x8xui8>) {
  %y = qnn.pad %x {pads = array<i64: 1, 1, 1, 1>, value = -1 : i64} : (tensor<1x4x8x8xui8>) -> tensor<1x4x10x10xui8>
  func.return
}

// -----

// qnn.pad: value above a signed input
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}pad value 128 does not fit si8

func.func @pad(%x: tensor<1x4x8x8xsi8>) {
  %y = qnn.pad %x {pads = array<i64: 1, 1, 1, 1>, value = 128 : i64} : (tensor<1x4x8x8xsi8>) -> tensor<1x4x10x10xsi8>
  func.return
}

// -----

// qnn.reshape: element type changes
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}element type changes from ui8 to si8

func.func @reshape(%x: tensor<1x8x1x1xui8>) {
  %y = qnn.reshape %x : (tensor<1x8x1x1xui8>) -> tensor<1x8xsi8>
  func.return
}

// -----

// qnn.reshape: float elements
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}expected integer elements, got f32

func.func @reshape(%x: tensor<1x8x1x1xf32>) {
  %y = qnn.reshape %x : (tensor<1x8x1x1xf32>) -> tensor<1x8xf32>
  func.return
}

// -----

// qnn.reshape: element count changes
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}element count changes from 8 to 4

func.func @reshape(%x: tensor<1x8x1x1xui8>) {
  %y = qnn.reshape %x : (tensor<1x8x1x1xui8>) -> tensor<1x4xui8>
  func.return
}

// -----

// qnn.layer: block argument type differs from the operand
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}block argument types must match the layer's operand types

func.func @layer(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.layer 0 (%x) : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xsi8> {
  ^bb0(%a: tensor<1x8x8x8xsi8>):
    %p = qnn.max_pool %a {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xsi8>) -> tensor<1x8x4x4xsi8>
    qnn.yield %p : tensor<1x8x4x4xsi8>
  }
  func.return
}

// -----

// qnn.layer: fewer block arguments than operands
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}block argument types must match the layer's operand types

func.func @layer(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.layer 0 (%x, %x) : (tensor<1x8x8x8xui8>, tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8> {
  ^bb0(%a: tensor<1x8x8x8xui8>):
    %p = qnn.max_pool %a {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
    qnn.yield %p : tensor<1x8x4x4xui8>
  }
  func.return
}

// -----

// qnn.layer: body ends with a terminator other than qnn.yield
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}layer body must end with qnn.yield

func.func @layer(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.layer 0 (%x) : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8> {
  ^bb0(%a: tensor<1x8x8x8xui8>):
    %p = qnn.max_pool %a {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
    "test.termop"(%p) : (tensor<1x8x4x4xui8>) -> ()
  }
  func.return
}

// -----

// qnn.layer: yielded type differs from the result type
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}yielded type tensor<1x8x4x4xui8> differs from the layer's result type tensor<1x8x4x4xsi8>

func.func @layer(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.layer 0 (%x) : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xsi8> {
  ^bb0(%a: tensor<1x8x8x8xui8>):
    %p = qnn.max_pool %a {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
    qnn.yield %p : tensor<1x8x4x4xui8>
  }
  func.return
}

// -----

// qnn.layer: no anchor op
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}layer must contain exactly one conv, linear, pool or add op, found 0

func.func @layer(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.layer 0 (%x) : (tensor<1x8x8x8xui8>) -> tensor<1x512xui8> {
  ^bb0(%a: tensor<1x8x8x8xui8>):
    %p = qnn.reshape %a : (tensor<1x8x8x8xui8>) -> tensor<1x512xui8>
    qnn.yield %p : tensor<1x512xui8>
  }
  func.return
}

// -----

// qnn.layer: two anchor ops
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}layer must contain exactly one conv, linear, pool or add op, found 2

func.func @layer(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.layer 0 (%x) : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8> {
  ^bb0(%a: tensor<1x8x8x8xui8>):
    %p = qnn.max_pool %a {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
    %q = qnn.max_pool %p {kernel = array<i64: 1, 1>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x4x4xui8>) -> tensor<1x8x4x4xui8>
    qnn.yield %q : tensor<1x8x4x4xui8>
  }
  func.return
}

// -----

// qnn.layer is IsolatedFromAbove (trait message from xDSL)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}Operation using value defined out of its IsolatedFromAbove parent: MaxPoolOp(%p = qnn.max_pool %x {kernel

func.func @layer(%x: tensor<1x8x8x8xui8>) {
  %y = qnn.layer 0 (%x) : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8> {
  ^bb0(%a: tensor<1x8x8x8xui8>):
    %p = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
    qnn.yield %p : tensor<1x8x4x4xui8>
  }
  func.return
}

// -----

// qnn.yield outside qnn.layer (HasParent trait message from xDSL)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}'qnn.yield' expects parent op 'qnn.layer'

func.func @yield(%x: tensor<1x8x8x8xui8>) {
  qnn.yield %x : tensor<1x8x8x8xui8>
}

// -----

func.func @max_pool_pads_length(%x: tensor<1x4x8x8xui8>) {
  %y = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0>} : (tensor<1x4x8x8xui8>) -> tensor<1x4x4x4xui8>
  func.return
}

// CHECK: {{^//}} -----
// CHECK-NEXT: {{^}}pads must have 4 entries, got 3

// -----

func.func @sum_pool_result_rank(%x: tensor<1x4x8x8xui8>) {
  %y = qnn.sum_pool %x {kernel = array<i64: 8, 8>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x4x8x8xui8>) -> tensor<1x4xsi32>
  func.return
}

// CHECK: {{^//}} -----
// CHECK-NEXT: {{^}}result must have rank 4, got shape [1, 4]

// -----

func.func @dynamic_dimension(%x: tensor<?xui8>) {
  %y = qnn.reshape %x : (tensor<?xui8>) -> tensor<?xui8>
  func.return
}

// CHECK: {{^//}} -----
// CHECK-NEXT: {{^}}dimensions must be static and positive, got tensor<?xui8>

// -----

func.func @zero_size_kernel(%x: tensor<1x4x8x8xui8>) {
  %w = qnn.constant dense<1> : tensor<8x4x0x3xsi8>
  %y = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 1, 0, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x0x3xsi8>) -> tensor<1x8x9x8xsi32>
  func.return
}

// CHECK: {{^//}} -----
// CHECK-NEXT: {{^}}dimensions must be static and positive, got tensor<8x4x0x3xsi8>
