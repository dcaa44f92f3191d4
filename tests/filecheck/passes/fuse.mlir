// RUN: dory-opt %s --fuse | filecheck %s
// RUN: dory-opt %s --fuse --fuse | filecheck %s
// RUN: dory-opt %s -p fuse --print-op-generic | dory-opt | filecheck %s

// A padded conv, a residual branch (pool) and an add: the zero pad folds into the
// conv, constants move to the top, each anchor takes its requant chain, and layers
// are numbered in network order (the conv before the pool even though the pool's
// result is used first).

func.func @network(%x: tensor<1x2x6x6xui8>) -> tensor<1x4xsi32> {
  %p = qnn.pad %x {pads = array<i64: 1, 0, 1, 0>, value = 0 : i64} : (tensor<1x2x6x6xui8>) -> tensor<1x2x8x6xui8> loc("Pad_0")
  %w = qnn.constant dense<1> : tensor<2x2x3x3xsi8> loc("conv.weight")
  %acc = qnn.conv %p, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 1, 0, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x8x6xui8>, tensor<2x2x3x3xsi8>) -> tensor<1x2x6x6xsi32> loc("Conv_1")
  %k = qnn.constant dense<[3, 5]> : tensor<2xsi32> loc("bn.kappa")
  %l = qnn.constant dense<0> : tensor<1xsi32> loc("bn.lambda")
  %y = qnn.requant %acc, %k, %l {scale = 1 : i64, divisor = 16 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x2x6x6xsi32>, tensor<2xsi32>, tensor<1xsi32>) -> tensor<1x2x6x6xui8> loc("Clip_2")
  %pool = qnn.max_pool %x {kernel = array<i64: 1, 1>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x2x6x6xui8>) -> tensor<1x2x6x6xui8> loc("MaxPool_3")
  %sum = qnn.add %pool, %y {mul = array<i64: 1, 1>, add = array<i64: 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x2x6x6xui8>, tensor<1x2x6x6xui8>) -> tensor<1x2x6x6xsi32> loc("Add_4")
  %one = qnn.constant dense<1> : tensor<1xsi32> loc("one")
  %zero = qnn.constant dense<0> : tensor<1xsi32> loc("zero")
  %z = qnn.requant %sum, %one, %zero {scale = 1 : i64, divisor = 2 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x2x6x6xsi32>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x2x6x6xui8> loc("Clip_5")
  %flat = qnn.reshape %z : (tensor<1x2x6x6xui8>) -> tensor<1x72xui8> loc("Flatten_6")
  %fw = qnn.constant dense<2> : tensor<4x72xsi8> loc("fc.weight")
  %out = qnn.linear %flat, %fw : (tensor<1x72xui8>, tensor<4x72xsi8>) -> tensor<1x4xsi32> loc("MatMul_7")
  func.return %out : tensor<1x4xsi32>
}

// CHECK:      func.func @network(%x: tensor<1x2x6x6xui8>) -> tensor<1x4xsi32> {
// CHECK-NEXT:   %w = qnn.constant dense<1> : tensor<2x2x3x3xsi8>
// CHECK-NEXT:   %k = qnn.constant dense<[3, 5]> : tensor<2xsi32>
// CHECK-NEXT:   %l = qnn.constant dense<0> : tensor<1xsi32>
// CHECK-NEXT:   %one = qnn.constant
// CHECK-NEXT:   %zero = qnn.constant
// CHECK-NEXT:   %fw = qnn.constant
// CHECK-NEXT:   [[CONV:%.*]] = qnn.layer 0 (%x, %w, %k, %l) : (tensor<1x2x6x6xui8>, tensor<2x2x3x3xsi8>, tensor<2xsi32>, tensor<1xsi32>) -> tensor<1x2x6x6xui8> {
// CHECK-NEXT:   ^{{.*}}([[X:%.*]]: tensor<1x2x6x6xui8>, [[W:%.*]]: tensor<2x2x3x3xsi8>, [[K:%.*]]: tensor<2xsi32>, [[L:%.*]]: tensor<1xsi32>):
// CHECK-NEXT:     [[ACC:%.*]] = qnn.conv [[X]], [[W]] {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64}
// CHECK-NEXT:     [[Y:%.*]] = qnn.requant [[ACC]], [[K]], [[L]]
// CHECK-NEXT:     qnn.yield [[Y]] : tensor<1x2x6x6xui8>
// CHECK-NEXT:   }
// CHECK-NEXT:   [[POOL:%.*]] = qnn.layer 1 (%x) : (tensor<1x2x6x6xui8>) -> tensor<1x2x6x6xui8> {
// CHECK:          qnn.max_pool
// CHECK:        [[ADD:%.*]] = qnn.layer 2 ([[POOL]], [[CONV]], %one, %zero) : (tensor<1x2x6x6xui8>, tensor<1x2x6x6xui8>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x2x6x6xui8> {
// CHECK:          qnn.add
// CHECK-NEXT:     qnn.requant
// CHECK-NEXT:     qnn.yield
// CHECK-NEXT:   }
// CHECK-NEXT:   [[FLAT:%.*]] = qnn.reshape [[ADD]] : (tensor<1x2x6x6xui8>) -> tensor<1x72xui8>
// CHECK-NEXT:   [[FC:%.*]] = qnn.layer 3 ([[FLAT]], %fw) : (tensor<1x72xui8>, tensor<4x72xsi8>) -> tensor<1x4xsi32> {
// CHECK:          qnn.linear
// CHECK:        func.return [[FC]] : tensor<1x4xsi32>
// CHECK-NOT:    qnn.pad

// An exact power-of-two division after an add becomes the add's per-input shifts, so the
// layer requantizes once: floor((53·a + 128·b) / 128) = floor(53·a / 2^7) + b.
func.func @shift_add(%a: tensor<1x2x4x4xui8>, %b: tensor<1x2x4x4xui8>) -> tensor<1x2x4x4xui8> {
  %one = qnn.constant dense<1> : tensor<1xsi32>
  %zero = qnn.constant dense<0> : tensor<1xsi32>
  %sum = qnn.add %a, %b {mul = array<i64: 53, 128>, add = array<i64: 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x2x4x4xui8>, tensor<1x2x4x4xui8>) -> tensor<1x2x4x4xsi32>
  %s = qnn.requant %sum, %one, %zero {scale = 1 : i64, divisor = 128 : i64, min = 0 : i64, max = 361 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x2x4x4xsi32>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x2x4x4xsi32>
  %y = qnn.requant %s, %one, %zero {scale = 27 : i64, divisor = 32 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x2x4x4xsi32>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x2x4x4xui8>
  func.return %y : tensor<1x2x4x4xui8>
}

// CHECK-LABEL: func.func @shift_add
// CHECK:         qnn.layer 0 (%a, %b, %one, %zero)
// CHECK:           qnn.add {{%.*}}, {{%.*}} {mul = array<i64: 53, 1>, add = array<i64: 0, 0>, shift = array<i64: 7, 0>}
// CHECK-NEXT:      qnn.requant {{.*}} {scale = 27 : i64, divisor = 32 : i64
// CHECK-NEXT:      qnn.yield
