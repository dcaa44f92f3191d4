// RUN: dory-opt %s | filecheck %s
// RUN: dory-opt %s | dory-opt | filecheck %s
// RUN: dory-opt %s --print-op-generic | dory-opt | filecheck %s

// The tile pass's decisions as typed attributes (dialects/tiling.py): the target on the module, the
// L2 plan on the network function, a tiling per layer. They print as `key = value` lists and parse back.

builtin.module attributes {tiling.target = #tiling.target<chip = "gap8", cores = 8, l1_budget = 1200, l2_budget = 400000, l3_size = 8388608, double_buffer = true>} {
  func.func @network() attributes {l2_plan = #tiling.l2_plan<peak = 1120, weights = "L2", buffers = [#tiling.l2_buffer<buffer = "layer0", offset = 0, bytes = 512, first = 0, last = 1>, #tiling.l2_buffer<buffer = "input", offset = 864, bytes = 256, first = 0, last = 0>]>, tiling = #tiling.layer<l1_tile = [1, 8, 8, 4], l1_tiles = [8, 1, 1, 1], l1_bytes = 1048, l2_tile = [8, 8], weights = "L3-stream", streamed = ["input"], loop_order = "input-stationary", stationary_slots = 2>} {
    func.return
  }
}

// CHECK:      builtin.module attributes {tiling.target = #tiling.target<chip = "gap8", cores = 8, l1_budget = 1200, l2_budget = 400000, l3_size = 8388608, double_buffer = true>}
// CHECK:      l2_plan = #tiling.l2_plan<peak = 1120, weights = "L2", buffers = [#tiling.l2_buffer<buffer = "layer0", offset = 0, bytes = 512, first = 0, last = 1>, #tiling.l2_buffer<buffer = "input", offset = 864, bytes = 256, first = 0, last = 0>]>
// CHECK-SAME: tiling = #tiling.layer<l1_tile = [1, 8, 8, 4], l1_tiles = [8, 1, 1, 1], l1_bytes = 1048, l2_tile = [8, 8], weights = "L3-stream", streamed = ["input"], loop_order = "input-stationary", stationary_slots = 2>
