// RUN: dory-opt %s --fuse | filecheck %s --check-prefix=FUSE
// RUN: dory-opt %s -p 'fuse,tile{l1-size=100}' | filecheck %s --check-prefix=TILE
// RUN: dory-opt %s -p 'fuse,tile{l1-size=100},bufferize-network,tile-layers' | filecheck %s --check-prefix=LOWER

// A MatMul of two activations (2 batch slices of [4, 8] × [8, 5]) requantized with one
// constant per batch slice ([2, 1]): fuse wraps both into a layer; tile gives it tiles whose
// rows divide a slice's 4 rows; tile-layers walks a table with the right operand's first row
// (column 18, `kr0`) and the batch slice (column 19, `bat`) of each tile, copies the block of
// the right operand and the slice's requant constants, and calls dory_matmul.

func.func @network(%a: tensor<1x8x8x1xsi8>, %b: tensor<1x5x16x1xui8>) -> tensor<1x5x8x1xui8> {
  %mul = qnn.constant dense<[[3], [5]]> : tensor<2x1xsi32>
  %add = qnn.constant dense<[[64], [-64]]> : tensor<2x1xsi32>
  %acc = qnn.matmul %a, %b {lhs_batch = array<i64: 2>, rhs_batch = array<i64: 2>} : (tensor<1x8x8x1xsi8>, tensor<1x5x16x1xui8>) -> tensor<1x5x8x1xsi32> loc("scores")
  %y = qnn.requant %acc, %mul, %add {scale = 1 : i64, divisor = 1024 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x5x8x1xsi32>, tensor<2x1xsi32>, tensor<2x1xsi32>) -> tensor<1x5x8x1xui8>
  func.return %y : tensor<1x5x8x1xui8>
}

// FUSE:      %y = qnn.layer 0 (%a, %b, %mul, %add) : (tensor<1x8x8x1xsi8>, tensor<1x5x16x1xui8>, tensor<2x1xsi32>, tensor<2x1xsi32>) -> tensor<1x5x8x1xui8> {
// FUSE-NEXT: ^bb0(%0: tensor<1x8x8x1xsi8>, %1: tensor<1x5x16x1xui8>, %2: tensor<2x1xsi32>, %3: tensor<2x1xsi32>):
// FUSE-NEXT:   %acc = qnn.matmul %0, %1 {lhs_batch = array<i64: 2>, rhs_batch = array<i64: 2>}
// FUSE-NEXT:   %y_1 = qnn.requant %acc, %2, %3 {{.*}} : (tensor<1x5x8x1xsi32>, tensor<2x1xsi32>, tensor<2x1xsi32>) -> tensor<1x5x8x1xui8>
// FUSE-NEXT:   qnn.yield %y_1 : tensor<1x5x8x1xui8>

// 2 rows × K 8 (×2 buffers) + 2×2 outputs (×2) + the 8×2 block of B (×2) + one mul and one add (×2): 88 B.
// TILE: qnn.layer 0 (%a, %b, %mul, %add) {tiling = #tiling.layer<l1_tile = [2, 2, 1, 8], l1_tiles = [3, 4, 1, 1], l1_bytes = 88, l2_tile = [5, 8], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}

// LOWER:      "memref.global"() <{sym_name = "layer0_tiles", type = memref<12x20xi32, "L2">
// LOWER:      func.func private @layer0(%in: memref<8x1x8xsi8, "L2">, %rhs: memref<16x1x5xui8, "L2">, %mul: memref<2x1xsi32, "L2">, %add: memref<2x1xsi32, "L2">, %out: memref<8x1x5xui8, "L2">)
// LOWER:        %l1 = memref.alloc() {alignment = 4 : i64} : memref<88xi8, "L1">
// The block of the right operand: rows kr0 .. kr0 + cin (column 18), columns co0 .. co0 + con.
// LOWER:        [[KR0:%.*]] = arith.constant 18 : index
// LOWER:        [[BAT:%.*]] = arith.constant 19 : index
// LOWER:        memref.subview %rhs[{{%.*}}, {{%.*}}, {{%.*}}] [{{%.*}}, {{%.*}}, {{%.*}}] [1, 1, 1] : memref<16x1x5xui8, "L2"> to memref<?x?x?xui8, strided<[5, 5, 1], offset: ?>, "L2">
// One requant constant of the tile's batch slice:
// LOWER:        memref.subview %mul[{{%.*}}, {{%.*}}] [{{%.*}}, {{%.*}}] [1, 1] : memref<2x1xsi32, "L2"> to memref<?x?xsi32, strided<[1, 1], offset: ?>, "L2">
// LOWER:        scf.for
// LOWER:          pulp.kernel "dory_matmul" (%in_tile_2, %rhs_tile_2, %mul_tile_2, %add_tile_2, %out_tile) [{{%.*}}, {{%.*}}] {roles = ["in", "rhs", "mul", "add", "out", "first", "last"], params = {{{.*}}mul_per_channel = 0 : i64, add_per_channel = 0 : i64}}
