// RUN: dory-opt %s --split-input-file --verify-diagnostics | filecheck %s

func.func @l3_to_l1(%a: memref<16xui8, "L3">, %b: memref<16xui8, "L1">) {
  %t = dma.copy %a, %b : memref<16xui8, "L3"> to memref<16xui8, "L1">
  func.return
}

// CHECK: no transfer from L3 to L1 (only L3 <-> L2 and L2 <-> L1)

// -----

func.func @same_level(%a: memref<16xui8, "L2">, %b: memref<16xui8, "L2">) {
  %t = dma.copy %a, %b : memref<16xui8, "L2"> to memref<16xui8, "L2">
  func.return
}

// CHECK: no transfer from L2 to L2 (only L3 <-> L2 and L2 <-> L1)

// -----

func.func @shapes(%a: memref<4x16xui8, "L2">, %b: memref<4x8xui8, "L1">) {
  %t = dma.copy %a, %b : memref<4x16xui8, "L2"> to memref<4x8xui8, "L1">
  func.return
}

// CHECK: shapes differ: [4, 16] and [4, 8]

// -----

func.func @elements(%a: memref<16xui8, "L2">, %b: memref<16xsi8, "L1">) {
  %t = dma.copy %a, %b : memref<16xui8, "L2"> to memref<16xsi8, "L1">
  func.return
}

// CHECK: element types differ: ui8 and si8

// -----

func.func @rank(%a: memref<2x2x2x2xui8, "L2">, %b: memref<2x2x2x2xui8, "L1">) {
  %t = dma.copy %a, %b : memref<2x2x2x2xui8, "L2"> to memref<2x2x2x2xui8, "L1">
  func.return
}

// CHECK: copies are 1-D, 2-D or 3-D, got rank 4

// -----

func.func @no_level(%a: memref<16xui8>, %b: memref<16xui8, "L1">) {
  %t = dma.copy %a, %b : memref<16xui8> to memref<16xui8, "L1">
  func.return
}

// CHECK: memref must be in memory space "L1", "L2" or "L3", got memref<16xui8>
