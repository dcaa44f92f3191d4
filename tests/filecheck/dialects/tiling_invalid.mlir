// RUN: dory-opt %s --split-input-file --verify-diagnostics | filecheck %s

// The verifiers of the tiling attributes: what the tile pass could never have written is refused.

func.func @no_cores() attributes {t = #tiling.target<chip = "gap8", cores = 0, l1_budget = 1200, l2_budget = 400000, l3_size = 8388608, double_buffer = true>} {
  func.return
}

// CHECK: cores must be positive

// -----

func.func @tile_rank() attributes {t = #tiling.layer<l1_tile = [1, 8, 8], l1_tiles = [8, 1, 1, 1], l1_bytes = 1048, l2_tile = [8, 8], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>} {
  func.return
}

// CHECK: l1_tile needs 4 sizes

// -----

func.func @weights_place() attributes {t = #tiling.layer<l1_tile = [1, 8, 8, 4], l1_tiles = [8, 1, 1, 1], l1_bytes = 1048, l2_tile = [8, 8], weights = "L1", streamed = [], loop_order = "input-stationary", stationary_slots = 2>} {
  func.return
}

// CHECK: weights must be one of L2, L3, L3-stream, none

// -----

func.func @lifetime() attributes {t = #tiling.l2_buffer<buffer = "layer0", offset = 0, bytes = 512, first = 2, last = 1>} {
  func.return
}

// CHECK: L2 buffer 'layer0': alive from layer 2 to 1, which is no lifetime

// -----

func.func @past_peak() attributes {t = #tiling.l2_plan<peak = 600, weights = "L2", buffers = [#tiling.l2_buffer<buffer = "layer0", offset = 512, bytes = 512, first = 0, last = 1>]>} {
  func.return
}

// CHECK: L2 buffer 'layer0' ends at byte 1024, past the plan's peak 600
