// RUN: dory-opt %s | dory-opt | filecheck %s
// RUN: dory-opt %s --print-op-generic | dory-opt | filecheck %s
// RUN: xdsl-opt %s | filecheck %s

// Round trip of every qnn op in its custom syntax. The second RUN line goes through
// the generic form, the third through plain xdsl-opt (qnn comes from the
// `xdsl.universe` entry point of the installed package).

// CHECK: builtin.module {

func.func @constants() {
  %splat = qnn.constant dense<3> : tensor<8xsi32>
  %neg = qnn.constant dense<-128> : tensor<2x2xsi8>
  %w = qnn.constant dense<[[[[1, -2], [3, 4]]]]> : tensor<1x1x2x2xsi8>
  %u = qnn.constant dense<[0, 255]> : tensor<2xui8>
  %wide = qnn.constant dense<[1, -2, 3, -4]> : tensor<4xsi64>
  %narrow = qnn.constant dense<[-8, 7]> : tensor<2xsi4>
  %named = qnn.constant dense<0> : tensor<4xsi32> {name = "bias0"}
  func.return
}

// CHECK-LABEL: func.func @constants(
// CHECK-SAME:  ) {
// CHECK-NEXT:    [[SPLAT:%.*]] = qnn.constant dense<3> : tensor<8xsi32>
// CHECK-NEXT:    [[NEG:%.*]] = qnn.constant dense<-128> : tensor<2x2xsi8>
// CHECK-NEXT:    [[W:%.*]] = qnn.constant dense<{{\[\[\[\[}}1, -2], [3, 4]]]]> : tensor<1x1x2x2xsi8>
// CHECK-NEXT:    [[U:%.*]] = qnn.constant dense<[0, 255]> : tensor<2xui8>
// CHECK-NEXT:    [[WIDE:%.*]] = qnn.constant dense<[1, -2, 3, -4]> : tensor<4xsi64>
// CHECK-NEXT:    [[NARROW:%.*]] = qnn.constant dense<[-8, 7]> : tensor<2xsi4>
// CHECK-NEXT:    [[NAMED:%.*]] = qnn.constant dense<0> : tensor<4xsi32> {name = "bias0"}
// CHECK-NEXT:    func.return
// CHECK-NEXT:  }

func.func @conv(%x: tensor<1x4x8x8xui8>, %xs: tensor<1x4x1x16xsi8>) {
  %w = qnn.constant dense<1> : tensor<8x4x3x3xsi8>
  %b = qnn.constant dense<[0, 1, 2, 3, -4, -5, -6, -7]> : tensor<8xsi32>
  %bias = qnn.conv %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<8xsi32>) -> tensor<1x8x8x8xsi32>
  %pw = qnn.constant dense<-1> : tensor<8x4x1x1xsi8>
  %nobias = qnn.conv %x, %pw {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x1x1xsi8>) -> tensor<1x8x8x8xsi32>
  %dww = qnn.constant dense<2> : tensor<4x1x3x3xsi8>
  %dw = qnn.conv %x, %dww {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 4 : i64} : (tensor<1x4x8x8xui8>, tensor<4x1x3x3xsi8>) -> tensor<1x4x8x8xsi32>
  %gw = qnn.constant dense<3> : tensor<8x2x3x3xsi8>
  %grouped = qnn.conv %x, %gw, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x4x8x8xui8>, tensor<8x2x3x3xsi8>, tensor<8xsi32>) -> tensor<1x8x6x6xsi32>
  %strided = qnn.conv %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<8xsi32>) -> tensor<1x8x4x4xsi32>
  %dilated = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 2, 2>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x4x4xsi32>
  %asym = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 0, 0, 2>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x7x8xsi32>
  %w1d = qnn.constant dense<1> : tensor<8x4x1x3xsi8>
  %row = qnn.conv %xs, %w1d, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 1, 0, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x1x16xsi8>, tensor<8x4x1x3xsi8>, tensor<8xsi32>) -> tensor<1x8x1x16xsi32>
  %row2 = qnn.conv %xs, %w1d {strides = array<i64: 1, 2>, pads = array<i64: 0, 2, 0, 2>, dilations = array<i64: 1, 2>, groups = 1 : i64} : (tensor<1x4x1x16xsi8>, tensor<8x4x1x3xsi8>) -> tensor<1x8x1x8xsi32>
  %w4 = qnn.constant dense<[[[[-8]], [[7]], [[0]], [[1]]]]> : tensor<1x4x1x1xsi4>
  %narrow = qnn.conv %x, %w4 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<1x4x1x1xsi4>) -> tensor<1x1x8x8xsi32>
  func.return
}

// CHECK-LABEL: func.func @conv(
// CHECK-SAME:  [[X:%.*]]: tensor<1x4x8x8xui8>, [[XS:%.*]]: tensor<1x4x1x16xsi8>) {
// CHECK-NEXT:    [[W:%.*]] = qnn.constant dense<1> : tensor<8x4x3x3xsi8>
// CHECK-NEXT:    [[B:%.*]] = qnn.constant dense<[0, 1, 2, 3, -4, -5, -6, -7]> : tensor<8xsi32>
// CHECK-NEXT:    [[BIAS:%.*]] = qnn.conv [[X]], [[W]], [[B]] {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<8xsi32>) -> tensor<1x8x8x8xsi32>
// CHECK-NEXT:    [[PW:%.*]] = qnn.constant dense<-1> : tensor<8x4x1x1xsi8>
// CHECK-NEXT:    [[NOBIAS:%.*]] = qnn.conv [[X]], [[PW]] {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x1x1xsi8>) -> tensor<1x8x8x8xsi32>
// CHECK-NEXT:    [[DWW:%.*]] = qnn.constant dense<2> : tensor<4x1x3x3xsi8>
// CHECK-NEXT:    [[DW:%.*]] = qnn.conv [[X]], [[DWW]] {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 4 : i64} : (tensor<1x4x8x8xui8>, tensor<4x1x3x3xsi8>) -> tensor<1x4x8x8xsi32>
// CHECK-NEXT:    [[GW:%.*]] = qnn.constant dense<3> : tensor<8x2x3x3xsi8>
// CHECK-NEXT:    [[GROUPED:%.*]] = qnn.conv [[X]], [[GW]], [[B]] {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x4x8x8xui8>, tensor<8x2x3x3xsi8>, tensor<8xsi32>) -> tensor<1x8x6x6xsi32>
// CHECK-NEXT:    [[STRIDED:%.*]] = qnn.conv [[X]], [[W]], [[B]] {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<8xsi32>) -> tensor<1x8x4x4xsi32>
// CHECK-NEXT:    [[DILATED:%.*]] = qnn.conv [[X]], [[W]] {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 2, 2>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x4x4xsi32>
// CHECK-NEXT:    [[ASYM:%.*]] = qnn.conv [[X]], [[W]] {strides = array<i64: 1, 1>, pads = array<i64: 1, 0, 0, 2>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x7x8xsi32>
// CHECK-NEXT:    [[W1D:%.*]] = qnn.constant dense<1> : tensor<8x4x1x3xsi8>
// CHECK-NEXT:    [[ROW:%.*]] = qnn.conv [[XS]], [[W1D]], [[B]] {strides = array<i64: 1, 1>, pads = array<i64: 0, 1, 0, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x1x16xsi8>, tensor<8x4x1x3xsi8>, tensor<8xsi32>) -> tensor<1x8x1x16xsi32>
// CHECK-NEXT:    [[ROW2:%.*]] = qnn.conv [[XS]], [[W1D]] {strides = array<i64: 1, 2>, pads = array<i64: 0, 2, 0, 2>, dilations = array<i64: 1, 2>, groups = 1 : i64} : (tensor<1x4x1x16xsi8>, tensor<8x4x1x3xsi8>) -> tensor<1x8x1x8xsi32>
// CHECK-NEXT:    [[W4:%.*]] = qnn.constant dense<{{\[\[\[\[}}-8]], {{\[\[}}7]], {{\[\[}}0]], {{\[\[}}1]]]]> : tensor<1x4x1x1xsi4>
// CHECK-NEXT:    [[NARROW:%.*]] = qnn.conv [[X]], [[W4]] {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<1x4x1x1xsi4>) -> tensor<1x1x8x8xsi32>
// CHECK-NEXT:    func.return
// CHECK-NEXT:  }

func.func @linear(%v: tensor<1x64xui8>) {
  %w = qnn.constant dense<1> : tensor<10x64xsi8>
  %b = qnn.constant dense<-5> : tensor<10xsi32>
  %bias = qnn.linear %v, %w, %b : (tensor<1x64xui8>, tensor<10x64xsi8>, tensor<10xsi32>) -> tensor<1x10xsi32>
  %nobias = qnn.linear %v, %w : (tensor<1x64xui8>, tensor<10x64xsi8>) -> tensor<1x10xsi32>
  func.return
}

// CHECK-LABEL: func.func @linear(
// CHECK-SAME:  [[V:%.*]]: tensor<1x64xui8>) {
// CHECK-NEXT:    [[W:%.*]] = qnn.constant dense<1> : tensor<10x64xsi8>
// CHECK-NEXT:    [[B:%.*]] = qnn.constant dense<-5> : tensor<10xsi32>
// CHECK-NEXT:    [[BIAS:%.*]] = qnn.linear [[V]], [[W]], [[B]] : (tensor<1x64xui8>, tensor<10x64xsi8>, tensor<10xsi32>) -> tensor<1x10xsi32>
// CHECK-NEXT:    [[NOBIAS:%.*]] = qnn.linear [[V]], [[W]] : (tensor<1x64xui8>, tensor<10x64xsi8>) -> tensor<1x10xsi32>
// CHECK-NEXT:    func.return
// CHECK-NEXT:  }

func.func @requant(%acc: tensor<1x8x8x8xsi32>, %lin: tensor<1x10xsi32>) {
  %m = qnn.constant dense<[1, 2, 3, 4, 5, 6, 7, 8]> : tensor<8xsi32>
  %a = qnn.constant dense<[-1, -2, -3, -4, 5, 6, 7, 8]> : tensor<8xsi32>
  %channel = qnn.requant %acc, %m, %a {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x8x8xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x8x8xui8>
  %m1 = qnn.constant dense<3> : tensor<1xsi32>
  %a1 = qnn.constant dense<-7> : tensor<1xsi32>
  %tensor = qnn.requant %acc, %m1, %a1 {scale = 5 : i64, divisor = 1024 : i64, min = -128 : i64, max = 127 : i64, rounding = "trunc", intermediate_bits = 32 : i64} : (tensor<1x8x8x8xsi32>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x8x8x8xsi8>
  %m64 = qnn.constant dense<[1099511627776, 2, 3, 4, 5, 6, 7, -8]> : tensor<8xsi64>
  %a64 = qnn.constant dense<0> : tensor<1xsi64>
  %wide = qnn.requant %acc, %m64, %a64 {scale = 3 : i64, divisor = 255 : i64, min = -100 : i64, max = 100 : i64, rounding = "floor", intermediate_bits = 64 : i64} : (tensor<1x8x8x8xsi32>, tensor<8xsi64>, tensor<1xsi64>) -> tensor<1x8x8x8xsi8>
  %m10 = qnn.constant dense<7> : tensor<10xsi32>
  %a10 = qnn.constant dense<0> : tensor<10xsi32>
  %flat = qnn.requant %lin, %m10, %a10 {scale = 1 : i64, divisor = 1 : i64, min = 0 : i64, max = 15 : i64, rounding = "trunc", intermediate_bits = 32 : i64} : (tensor<1x10xsi32>, tensor<10xsi32>, tensor<10xsi32>) -> tensor<1x10xui4>
  func.return
}

// CHECK-LABEL: func.func @requant(
// CHECK-SAME:  [[ACC:%.*]]: tensor<1x8x8x8xsi32>, [[LIN:%.*]]: tensor<1x10xsi32>) {
// CHECK-NEXT:    [[M:%.*]] = qnn.constant dense<[1, 2, 3, 4, 5, 6, 7, 8]> : tensor<8xsi32>
// CHECK-NEXT:    [[A:%.*]] = qnn.constant dense<[-1, -2, -3, -4, 5, 6, 7, 8]> : tensor<8xsi32>
// CHECK-NEXT:    [[CHANNEL:%.*]] = qnn.requant [[ACC]], [[M]], [[A]] {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x8x8xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x8x8xui8>
// CHECK-NEXT:    [[M1:%.*]] = qnn.constant dense<3> : tensor<1xsi32>
// CHECK-NEXT:    [[A1:%.*]] = qnn.constant dense<-7> : tensor<1xsi32>
// CHECK-NEXT:    [[TENSOR:%.*]] = qnn.requant [[ACC]], [[M1]], [[A1]] {scale = 5 : i64, divisor = 1024 : i64, min = -128 : i64, max = 127 : i64, rounding = "trunc", intermediate_bits = 32 : i64} : (tensor<1x8x8x8xsi32>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x8x8x8xsi8>
// CHECK-NEXT:    [[M64:%.*]] = qnn.constant dense<[1099511627776, 2, 3, 4, 5, 6, 7, -8]> : tensor<8xsi64>
// CHECK-NEXT:    [[A64:%.*]] = qnn.constant dense<0> : tensor<1xsi64>
// CHECK-NEXT:    [[WIDE:%.*]] = qnn.requant [[ACC]], [[M64]], [[A64]] {scale = 3 : i64, divisor = 255 : i64, min = -100 : i64, max = 100 : i64, rounding = "floor", intermediate_bits = 64 : i64} : (tensor<1x8x8x8xsi32>, tensor<8xsi64>, tensor<1xsi64>) -> tensor<1x8x8x8xsi8>
// CHECK-NEXT:    [[M10:%.*]] = qnn.constant dense<7> : tensor<10xsi32>
// CHECK-NEXT:    [[A10:%.*]] = qnn.constant dense<0> : tensor<10xsi32>
// CHECK-NEXT:    [[FLAT:%.*]] = qnn.requant [[LIN]], [[M10]], [[A10]] {scale = 1 : i64, divisor = 1 : i64, min = 0 : i64, max = 15 : i64, rounding = "trunc", intermediate_bits = 32 : i64} : (tensor<1x10xsi32>, tensor<10xsi32>, tensor<10xsi32>) -> tensor<1x10xui4>
// CHECK-NEXT:    func.return
// CHECK-NEXT:  }

// Requant constants that vary over the rows (H = 3): per row [H, 1], per row and channel [H, C].
func.func @requant_rows(%acc: tensor<1x2x3x1xsi32>) {
  %m = qnn.constant dense<[[1], [2], [3]]> : tensor<3x1xsi32>
  %a = qnn.constant dense<[[1, -1], [2, -2], [3, -3]]> : tensor<3x2xsi32>
  %y = qnn.requant %acc, %m, %a {scale = 1 : i64, divisor = 2 : i64, min = -128 : i64, max = 127 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x2x3x1xsi32>, tensor<3x1xsi32>, tensor<3x2xsi32>) -> tensor<1x2x3x1xsi8>
  func.return
}

// CHECK-LABEL: func.func @requant_rows(
// CHECK-NEXT:    [[M:%.*]] = qnn.constant dense<{{\[\[}}1], [2], [3]]> : tensor<3x1xsi32>
// CHECK-NEXT:    [[A:%.*]] = qnn.constant dense<{{\[\[}}1, -1], [2, -2], [3, -3]]> : tensor<3x2xsi32>
// CHECK-NEXT:    {{%.*}} = qnn.requant {{%.*}}, [[M]], [[A]] {{{.*}}} : (tensor<1x2x3x1xsi32>, tensor<3x1xsi32>, tensor<3x2xsi32>) -> tensor<1x2x3x1xsi8>

func.func @add(%l: tensor<1x8x8x8xui8>, %r: tensor<1x8x8x8xsi8>) {
  %sum = qnn.add %l, %r {mul = array<i64: 3, 5>, add = array<i64: 0, -16>, shift = array<i64: 2, 31>} : (tensor<1x8x8x8xui8>, tensor<1x8x8x8xsi8>) -> tensor<1x8x8x8xsi32>
  func.return
}

// CHECK-LABEL: func.func @add(
// CHECK-SAME:  [[L:%.*]]: tensor<1x8x8x8xui8>, [[R:%.*]]: tensor<1x8x8x8xsi8>) {
// CHECK-NEXT:    [[SUM:%.*]] = qnn.add [[L]], [[R]] {mul = array<i64: 3, 5>, add = array<i64: 0, -16>, shift = array<i64: 2, 31>} : (tensor<1x8x8x8xui8>, tensor<1x8x8x8xsi8>) -> tensor<1x8x8x8xsi32>
// CHECK-NEXT:    func.return
// CHECK-NEXT:  }

func.func @pools(%u: tensor<1x8x8x8xui8>, %s: tensor<1x8x8x8xsi8>) {
  %max = qnn.max_pool %u {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
  %max_nopad = qnn.max_pool %s {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xsi8>) -> tensor<1x8x4x4xsi8>
  %max_asym = qnn.max_pool %u {kernel = array<i64: 2, 3>, strides = array<i64: 1, 1>, pads = array<i64: 0, 1, 1, 2>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x8x9xui8>
  %global = qnn.sum_pool %u {kernel = array<i64: 8, 8>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x1x1xsi32>
  %avg = qnn.sum_pool %s {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xsi8>) -> tensor<1x8x4x4xsi32>
  func.return
}

// CHECK-LABEL: func.func @pools(
// CHECK-SAME:  [[U:%.*]]: tensor<1x8x8x8xui8>, [[S:%.*]]: tensor<1x8x8x8xsi8>) {
// CHECK-NEXT:    [[MAX:%.*]] = qnn.max_pool [[U]] {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
// CHECK-NEXT:    [[MAX_NOPAD:%.*]] = qnn.max_pool [[S]] {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xsi8>) -> tensor<1x8x4x4xsi8>
// CHECK-NEXT:    [[MAX_ASYM:%.*]] = qnn.max_pool [[U]] {kernel = array<i64: 2, 3>, strides = array<i64: 1, 1>, pads = array<i64: 0, 1, 1, 2>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x8x9xui8>
// CHECK-NEXT:    [[GLOBAL:%.*]] = qnn.sum_pool [[U]] {kernel = array<i64: 8, 8>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x1x1xsi32>
// CHECK-NEXT:    [[AVG:%.*]] = qnn.sum_pool [[S]] {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xsi8>) -> tensor<1x8x4x4xsi32>
// CHECK-NEXT:    func.return
// CHECK-NEXT:  }

func.func @pad_reshape(%x: tensor<1x4x8x8xui8>, %s: tensor<1x8x1x1xsi8>) {
  %padded = qnn.pad %x {pads = array<i64: 1, 2, 3, 4>, value = 0 : i64} : (tensor<1x4x8x8xui8>) -> tensor<1x4x12x14xui8>
  %spadded = qnn.pad %s {pads = array<i64: 1, 1, 1, 1>, value = -128 : i64} : (tensor<1x8x1x1xsi8>) -> tensor<1x8x3x3xsi8>
  %flat = qnn.reshape %s : (tensor<1x8x1x1xsi8>) -> tensor<1x8xsi8>
  %flat2 = qnn.reshape %x : (tensor<1x4x8x8xui8>) -> tensor<1x256xui8>
  func.return
}

// CHECK-LABEL: func.func @pad_reshape(
// CHECK-SAME:  [[X:%.*]]: tensor<1x4x8x8xui8>, [[S:%.*]]: tensor<1x8x1x1xsi8>) {
// CHECK-NEXT:    [[PADDED:%.*]] = qnn.pad [[X]] {pads = array<i64: 1, 2, 3, 4>, value = 0 : i64} : (tensor<1x4x8x8xui8>) -> tensor<1x4x12x14xui8>
// CHECK-NEXT:    [[SPADDED:%.*]] = qnn.pad [[S]] {pads = array<i64: 1, 1, 1, 1>, value = -128 : i64} : (tensor<1x8x1x1xsi8>) -> tensor<1x8x3x3xsi8>
// CHECK-NEXT:    [[FLAT:%.*]] = qnn.reshape [[S]] : (tensor<1x8x1x1xsi8>) -> tensor<1x8xsi8>
// CHECK-NEXT:    [[FLAT2:%.*]] = qnn.reshape [[X]] : (tensor<1x4x8x8xui8>) -> tensor<1x256xui8>
// CHECK-NEXT:    func.return
// CHECK-NEXT:  }

func.func @layers(%x: tensor<1x4x8x8xui8>) {
  %w = qnn.constant dense<1> : tensor<8x4x3x3xsi8>
  %b = qnn.constant dense<2> : tensor<8xsi32>
  %m = qnn.constant dense<3> : tensor<8xsi32>
  %a = qnn.constant dense<4> : tensor<8xsi32>
  %y = qnn.layer 0 (%x, %w, %b, %m, %a) : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<8xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x8x8xui8> {
  ^bb0(%ax: tensor<1x4x8x8xui8>, %aw: tensor<8x4x3x3xsi8>, %ab: tensor<8xsi32>, %am: tensor<8xsi32>, %aa: tensor<8xsi32>):
    %c = qnn.conv %ax, %aw, %ab {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<8xsi32>) -> tensor<1x8x8x8xsi32>
    %r = qnn.requant %c, %am, %aa {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x8x8xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x8x8xui8>
    qnn.yield %r : tensor<1x8x8x8xui8>
  }
  %z = qnn.layer 1 (%y) : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8> {
  ^bb0(%ay: tensor<1x8x8x8xui8>):
    %p = qnn.max_pool %ay {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
    qnn.yield %p : tensor<1x8x4x4xui8>
  }
  func.return
}

// CHECK-LABEL: func.func @layers(
// CHECK-SAME:  [[X:%.*]]: tensor<1x4x8x8xui8>) {
// CHECK-NEXT:    [[W:%.*]] = qnn.constant dense<1> : tensor<8x4x3x3xsi8>
// CHECK-NEXT:    [[B:%.*]] = qnn.constant dense<2> : tensor<8xsi32>
// CHECK-NEXT:    [[M:%.*]] = qnn.constant dense<3> : tensor<8xsi32>
// CHECK-NEXT:    [[A:%.*]] = qnn.constant dense<4> : tensor<8xsi32>
// CHECK-NEXT:    [[Y:%.*]] = qnn.layer 0 ([[X]], [[W]], [[B]], [[M]], [[A]]) : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<8xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x8x8xui8> {
// CHECK-NEXT:    ^bb0([[AX:%.*]]: tensor<1x4x8x8xui8>, [[AW:%.*]]: tensor<8x4x3x3xsi8>, [[AB:%.*]]: tensor<8xsi32>, [[AM:%.*]]: tensor<8xsi32>, [[AA:%.*]]: tensor<8xsi32>):
// CHECK-NEXT:      [[C:%.*]] = qnn.conv [[AX]], [[AW]], [[AB]] {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<8xsi32>) -> tensor<1x8x8x8xsi32>
// CHECK-NEXT:      [[R:%.*]] = qnn.requant [[C]], [[AM]], [[AA]] {scale = 1 : i64, divisor = 256 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x8x8xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x8x8xui8>
// CHECK-NEXT:      qnn.yield [[R]] : tensor<1x8x8x8xui8>
// CHECK-NEXT:    }
// CHECK-NEXT:    [[Z:%.*]] = qnn.layer 1 ([[Y]]) : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8> {
// CHECK-NEXT:    ^bb0([[AY:%.*]]: tensor<1x8x8x8xui8>):
// CHECK-NEXT:      [[P:%.*]] = qnn.max_pool [[AY]] {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x8x8x8xui8>) -> tensor<1x8x4x4xui8>
// CHECK-NEXT:      qnn.yield [[P]] : tensor<1x8x4x4xui8>
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return
// CHECK-NEXT:  }

// CHECK-NEXT: }
