// RUN: dory-opt %s -p 'fuse,tile{l1-size=4000}' | filecheck %s --check-prefix=TILE
// RUN: dory-opt %s -p 'fuse,tile{l1-size=4000},bufferize-network,tile-layers' | filecheck %s

// A GEMM on 6 rows (IR H = 6) whose requant constants vary over the rows: mul per row [6, 1],
// add per row and column [6, 8]. The tiler makes every tile one output row; the lowering copies
// that row's block of each constant into L1 per tile (double-buffered: a new block every tile), so
// the kernel sees a per-tensor mul and a per-channel add.

func.func @network(%x: tensor<1x16x6x1xsi8>) -> tensor<1x8x6x1xsi8> {
  %w = qnn.constant dense<1> : tensor<8x16x1x1xsi8>
  %m = qnn.constant dense<[[1], [2], [3], [4], [5], [6]]> : tensor<6x1xsi32>
  %a = qnn.constant dense<7> : tensor<6x8xsi32>
  %acc = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x16x6x1xsi8>, tensor<8x16x1x1xsi8>) -> tensor<1x8x6x1xsi32> loc("Gemm_0")
  %y = qnn.requant %acc, %m, %a {scale = 1 : i64, divisor = 16 : i64, min = -128 : i64, max = 127 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x6x1xsi32>, tensor<6x1xsi32>, tensor<6x8xsi32>) -> tensor<1x8x6x1xsi8>
  func.return %y : tensor<1x8x6x1xsi8>
}

// Tiles of co × ho × wo × ci = 8 × 1 × 1 × 16, six of them along the rows; 248 B = input 2·16,
// output 2·8, weights 128, mul 2·4 (one value a row), add 2·32 (8 values a row).
// TILE: tiling = #tiling.layer<l1_tile = [8, 1, 1, 16], l1_tiles = [1, 6, 1, 1], l1_bytes = 248,

// CHECK:      func.func private @layer0(%in: memref<6x1x16xsi8, "L2">, %weights: memref<8x1x1x16xsi8, "L2">, %mul: memref<6x1xsi32, "L2">, %add: memref<6x8xsi32, "L2">, %out: memref<6x1x8xsi8, "L2">)
// CHECK:        %l1 = memref.alloc() {alignment = 4 : i64} : memref<248xi8, "L1">
// CHECK:        %l1_mul = memref.view %l1[{{%.*}}][] : memref<248xi8, "L1"> to memref<8xi8, "L1">
// CHECK:        %l1_add = memref.view %l1[{{%.*}}][] : memref<248xi8, "L1"> to memref<64xi8, "L1">
// The first tile's row: mul[h0, 0] (1 × 1), add[h0, co0] (1 × con).
// CHECK:        memref.subview %mul{{\[}}[[H0:%.*]], {{%.*}}] {{\[}}[[ONE:%.*]], [[ONE]]] [1, 1] : memref<6x1xsi32, "L2"> to memref<?x?xsi32, strided<[1, 1], offset: ?>, "L2">
// CHECK:        memref.subview %add{{\[}}[[H0]], {{%.*}}] {{\[}}[[ONE]], {{%.*}}] [1, 1] : memref<6x8xsi32, "L2"> to memref<?x?xsi32, strided<[8, 1], offset: ?>, "L2">
// CHECK:        scf.for
// The next tile's rows, prefetched into the other slot while this tile computes:
// CHECK:          scf.if
// CHECK:            memref.subview %mul
// CHECK:            memref.subview %add
// CHECK:          pulp.kernel "dory_pointwise" ({{.*}}) {{.*}}mul_per_channel = 0 : i64, add_per_channel = 1 : i64
