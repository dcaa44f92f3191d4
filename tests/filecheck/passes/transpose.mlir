// RUN: dory-opt %s --fuse | filecheck %s --check-prefix=FUSE
// RUN: dory-opt %s -p 'fuse,tile{l1-size=100}' | filecheck %s --check-prefix=TILE
// RUN: dory-opt %s -p 'fuse,tile{l1-size=30}' | filecheck %s --check-prefix=SMALL
// RUN: dory-opt %s -p 'fuse,tile{l1-size=30},bufferize-network,tile-layers' | filecheck %s --check-prefix=LOWER
// RUN: dory-opt %s -p 'fuse,tile{l1-size=30},lower-to-pulp' | dory-opt | filecheck %s --check-prefix=LOWER
// RUN: dory-opt %s -p 'fuse,tile{l1-size=30},lower-to-pulp' -t pulp-network-c | filecheck %s --check-prefix=C

// Rows [6, 12] seen as [6, 3, 4] (qnn.reshape {rows}: a view, no layer), transposed to [3, 6, 4]
// (the features stay the last axis: each output row is 4 contiguous bytes of the input) and then to
// [3, 4, 6] (the features move: each output row is 6 bytes 4 apart). fuse makes each transpose a layer
// of its own; tile gives it tiles of whole output rows, one strided copy each: a divisor of the rows
// along the output's second-to-last axis, or whole runs of them (transpose_tile_rows); tile-layers
// gathers a tile's rows from the L2 input through a memref.reinterpret_cast (the input in the output's
// order) into one L1 buffer and writes them back from it; the C copies with dory_dma_copy when the
// rows' bytes are contiguous, dory_dma_gather when the features lie at a stride.

func.func @network(%x: tensor<1x12x6x1xsi8>) -> tensor<1x6x12x1xsi8> {
  %h = qnn.reshape %x {rows} : (tensor<1x12x6x1xsi8>) -> tensor<1x4x18x1xsi8> loc("heads")
  %q = qnn.transpose %h {shape = array<i64: 6, 3, 4>, perm = array<i64: 1, 0, 2>} : (tensor<1x4x18x1xsi8>) -> tensor<1x4x18x1xsi8> loc("queries")
  %k = qnn.transpose %q {shape = array<i64: 3, 6, 4>, perm = array<i64: 0, 2, 1>} : (tensor<1x4x18x1xsi8>) -> tensor<1x6x12x1xsi8> loc("keys")
  func.return %k : tensor<1x6x12x1xsi8>
}

// FUSE:      %h = qnn.reshape %x {rows} : (tensor<1x12x6x1xsi8>) -> tensor<1x4x18x1xsi8>
// FUSE-NEXT: %q = qnn.layer 0 (%h) : (tensor<1x4x18x1xsi8>) -> tensor<1x4x18x1xsi8> {
// FUSE-NEXT: ^bb0(%0: tensor<1x4x18x1xsi8>):
// FUSE-NEXT:   %q_1 = qnn.transpose %0 {shape = array<i64: 6, 3, 4>, perm = array<i64: 1, 0, 2>}
// FUSE-NEXT:   qnn.yield %q_1 : tensor<1x4x18x1xsi8>
// FUSE:      %k = qnn.layer 1 (%q) : (tensor<1x4x18x1xsi8>) -> tensor<1x6x12x1xsi8> {

// Everything in one tile of 72 B; at 30 B, tiles of 6 (then 4) rows: the 18 (12) rows in 3 runs.
// TILE:  qnn.layer 0 (%h) {tiling = #tiling.layer<l1_tile = [4, 18, 1, 4], l1_tiles = [1, 1, 1, 1], l1_bytes = 72, l2_tile = [4, 18], weights = "none", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}
// TILE:  qnn.layer 1 (%q) {tiling = #tiling.layer<l1_tile = [6, 12, 1, 6], l1_tiles = [1, 1, 1, 1], l1_bytes = 72, l2_tile = [6, 12], weights = "none", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}
// SMALL: qnn.layer 0 (%h) {tiling = #tiling.layer<l1_tile = [4, 6, 1, 4], l1_tiles = [1, 3, 1, 1], l1_bytes = 24, l2_tile = [4, 18], weights = "none", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}
// SMALL: qnn.layer 1 (%q) {tiling = #tiling.layer<l1_tile = [6, 4, 1, 6], l1_tiles = [1, 3, 1, 1], l1_bytes = 24, l2_tile = [6, 12], weights = "none", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}

// The table's last column (18) is where a tile's first row starts in the input: rows of 4 contiguous
// bytes 12 apart (tile t at 4t), then rows of 6 bytes 4 apart (tile t at 24t).
// LOWER:      "memref.global"() <{sym_name = "layer0_tiles", type = memref<3x19xi32, "L2">, initial_value = dense<[[0, 4, 0, 6, 0, 1, 0, 4, 0, 6, 0, 1, 0, 0, 0, 0, 1, 1, 0], [0, 4, 6, 6, 0, 1, 0, 4, 6, 6, 0, 1, 0, 0, 0, 0, 1, 1, 4], [0, 4, 12, 6, 0, 1, 0, 4, 12, 6, 0, 1, 0, 0, 0, 0, 1, 1, 8]]>
// LOWER:      func.func private @layer0(%in: memref<18x1x4xsi8, "L2">, %out: memref<18x1x4xsi8, "L2">) attributes {pulp.cluster, pulp.layer = 0 : i64} {
// LOWER:        %l1 = memref.alloc() {alignment = 4 : i64} : memref<24xi8, "L1">
// LOWER:        %rows_tile = memref.view %l1[{{%.*}}][] : memref<24xi8, "L1"> to memref<1x6x4xsi8, "L1">
// LOWER:        scf.for
// LOWER:          [[SRC:%.*]] = memref.reinterpret_cast %in to offset: [{{%.*}}], sizes: [1, 6, 4], strides: [72, 12, 1] : memref<18x1x4xsi8, "L2"> to memref<1x6x4xsi8, strided<[72, 12, 1], offset: ?>, "L2">
// LOWER-NEXT:     [[IN:%.*]] = dma.copy [[SRC]], %rows_tile
// LOWER-NEXT:     dma.wait [[IN]]
// LOWER:          [[DST:%.*]] = memref.reinterpret_cast %out to offset: [{{%.*}}], sizes: [1, 6, 4], strides: [24, 4, 1]
// LOWER-NEXT:     [[OUT:%.*]] = dma.copy %rows_tile, [[DST]]
// LOWER-NEXT:     dma.wait [[OUT]]
// LOWER:      "memref.global"() <{sym_name = "layer1_tiles", type = memref<3x19xi32, "L2">, initial_value = dense<[[0, 6, 0, 4, 0, 1, 0, 6, 0, 4, 0, 1, 0, 0, 0, 0, 1, 1, 0], [0, 6, 4, 4, 0, 1, 0, 6, 4, 4, 0, 1, 0, 0, 0, 0, 1, 1, 24], [0, 6, 8, 4, 0, 1, 0, 6, 8, 4, 0, 1, 0, 0, 0, 0, 1, 1, 48]]>
// LOWER:        memref.reinterpret_cast %in to offset: [{{%.*}}], sizes: [1, 4, 6], strides: [4, 1, 4] : memref<18x1x4xsi8, "L2"> to memref<1x4x6xsi8, strided<[4, 1, 4], offset: ?>, "L2">

// C:      static void layer0_body(void *arg) {
// C:        if (pi_core_id() == 0) dory_dma_copy({{.*}}, rows_tile_{{[0-9]+}}, 1, 6, 4, 72, 12, sizeof(int8_t), PI_CL_DMA_DIR_EXT2LOC, {{.*}});
// C:        if (pi_core_id() == 0) dory_dma_copy({{.*}}, rows_tile_{{[0-9]+}}, 1, 6, 4, 24, 4, sizeof(int8_t), PI_CL_DMA_DIR_LOC2EXT, {{.*}});
// C:      static void layer1_body(void *arg) {
// C:        if (pi_core_id() == 0) dory_dma_gather({{.*}}, rows_tile_{{[0-9]+}}, 1, 4, 6, 4, 1, 4, sizeof(int8_t), PI_CL_DMA_DIR_EXT2LOC, {{.*}});
