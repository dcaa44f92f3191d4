// RUN: dory-opt %s -p 'bufferize-network,tile-layers' | filecheck %s --check-prefix=IS
// RUN: sed -e 's/"input-stationary", stationary_slots = 2/"weight-stationary", stationary_slots = 2/' %s | dory-opt -p 'bufferize-network,tile-layers' | filecheck %s --check-prefix=WS
// RUN: sed -e 's/"input-stationary", stationary_slots = 2/"weight-stationary", stationary_slots = 1/' %s | dory-opt -p 'bufferize-network,tile-layers' | filecheck %s --check-prefix=ONE

// tile-layers and the loop order, from a tiled network checked in here (one 3x3 conv 4->8 on 8x8, tiles of
// 4 channels x 4 rows: 2 x 2 tiles; l1_bytes: the model's footprint with every changing buffer in two slots).
// A block the previous tile holds is not copied again: the table gets a `fetch_<role>` column (copy or not)
// and a `slot_<role>` column (the slots alternate per copy, not per tile) for each such role.



builtin.module attributes {tiling.target = #tiling.target<chip = "gap8", cores = 8, l1_budget = 2000, l2_budget = 400000, l3_size = 8388608, double_buffer = true>} {
  func.func @network(%x: tensor<1x4x8x8xui8>) -> tensor<1x8x8x8xui8> attributes {l2_plan = #tiling.l2_plan<peak = 1120, weights = "L2", buffers = [#tiling.l2_buffer<buffer = "layer0", offset = 0, bytes = 512, first = 0, last = 1>, #tiling.l2_buffer<buffer = "weights of layer 0", offset = 512, bytes = 352, first = 0, last = 1>, #tiling.l2_buffer<buffer = "input", offset = 864, bytes = 256, first = 0, last = 0>]>} {
    %w = qnn.constant dense<1> : tensor<8x4x3x3xsi8>
    %k = qnn.constant dense<1> : tensor<8xsi32>
    %l = qnn.constant dense<0> : tensor<8xsi32>
    %y = qnn.layer 0 (%x, %w, %k, %l) {tiling = #tiling.layer<l1_tile = [4, 4, 8, 4], l1_tiles = [2, 2, 1, 1], l1_bytes = 1568, l2_tile = [8, 8], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x8x8xui8> {
    ^bb0(%0: tensor<1x4x8x8xui8>, %1: tensor<8x4x3x3xsi8>, %2: tensor<8xsi32>, %3: tensor<8xsi32>):
      %a = qnn.conv %0, %1 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x8x8xsi32>
      %y_1 = qnn.requant %a, %2, %3 {scale = 1 : i64, divisor = 64 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x8x8xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x8x8xui8>
      qnn.yield %y_1 : tensor<1x8x8x8xui8>
    }
    func.return %y : tensor<1x8x8x8xui8>
  }
}



// Input-stationary: rows outer, channel tiles inner. The input of a row tile is copied once for both
// channel tiles (fetch_in 1, 0, 1, 0 in slots 0, 0, 1, 1); weights and constants change on every tile.
// IS:      "memref.global"() <{sym_name = "layer0_tiles", type = memref<4x20xi32, "L2">, initial_value = dense<{{\[}}[0, 4, 0, 4, 0, 8, 0, 4, 0, 5, 0, 8, 1, 1, 0, 1, 1, 1, 1, 0], [4, 4, 0, 4, 0, 8, 0, 4, 0, 5, 0, 8, 1, 1, 0, 1, 1, 1, 0, 0], [0, 4, 4, 4, 0, 8, 0, 4, 3, 5, 0, 8, 0, 1, 1, 1, 1, 1, 1, 1], [4, 4, 4, 4, 0, 8, 0, 4, 3, 5, 0, 8, 0, 1, 1, 1, 1, 1, 0, 1]]>
// IS:      %l1_in = memref.view %l1[{{%.*}}][] : memref<1504xi8, "L1"> to memref<320xi8, "L1">
// IS:      [[FETCH:%.*]] = arith.cmpi ne, {{%.*}}, {{%.*}} : index
// IS-NEXT: {{%.*}} = scf.if [[FETCH]] -> (!dma.token) {
// IS:        %in_tile = memref.view %l1_in
// IS-NEXT:   dma.copy {{%.*}}, %in_tile
// IS:      } else {
// IS-NEXT:   dma.completed
// IS:      %weights_tile = memref.view %l1_weights
// IS-NEXT: dma.copy {{%.*}}, %weights_tile
// IS:      scf.for
// IS:        pulp.kernel "dory_conv2d"

// Weight-stationary: channel tiles outer, rows inner. The weights and per-channel constants of a channel
// tile are copied once for both row tiles (each fetch column 1, 0, 1, 0); the input changes on every tile.
// WS:      "memref.global"() <{sym_name = "layer0_tiles", type = memref<4x24xi32, "L2">, initial_value = dense<{{\[}}[0, 4, 0, 4, 0, 8, 0, 4, 0, 5, 0, 8, 1, 1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 0], [0, 4, 4, 4, 0, 8, 0, 4, 3, 5, 0, 8, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [4, 4, 0, 4, 0, 8, 0, 4, 0, 5, 0, 8, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1], [4, 4, 4, 4, 0, 8, 0, 4, 3, 5, 0, 8, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 1]]>
// WS:      %l1_weights = memref.view %l1[{{%.*}}][] : memref<1504xi8, "L1"> to memref<288xi8, "L1">
// WS:      dma.copy {{%.*}}, %in_tile
// WS:      scf.if
// WS:        dma.copy {{%.*}}, %weights_tile
// WS:      scf.for
// WS:        scf.if
// WS:          dma.copy {{%.*}}, %in_tile_1
// WS:          scf.if
// WS:            dma.copy {{%.*}}, %weights_tile_1
// WS:        pulp.kernel "dory_conv2d"

// Weight-stationary, the weights in one slot (144 B): not prefetched; copied at the tile that needs a new
// block (after the previous tile computed) and waited for with the prefetched inputs.
// ONE:      %l1_weights = memref.view %l1[{{%.*}}][] : memref<1360xi8, "L1"> to memref<144xi8, "L1">
// ONE:      scf.for
// ONE:        scf.if
// ONE:          dma.copy {{%.*}}, %in_tile_1
// ONE-NOT:      %weights_tile
// ONE:          scf.yield {{%[0-9]+}}, {{%[0-9]+}}, {{%[0-9]+}} : !dma.token, !dma.token, !dma.token
// ONE-NEXT:   } else {
// ONE:          dma.copy {{%.*}}, %weights_tile :
// ONE-NEXT:     scf.yield
// ONE:        dma.wait
// ONE-NEXT:   dma.wait
// ONE-NEXT:   dma.wait
// ONE-NEXT:   dma.wait
// ONE-NEXT:   pulp.barrier
// ONE:        pulp.kernel "dory_conv2d"
