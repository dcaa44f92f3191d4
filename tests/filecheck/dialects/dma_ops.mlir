// RUN: dory-opt %s | dory-opt | filecheck %s
// RUN: dory-opt %s --print-op-generic | dory-opt | filecheck %s

// L2 -> L1 of a strided 3-D block, L1 -> L2 back, L3 -> L2 of a 1-D block, and a copy
// whose sizes are only known at run time (a ragged border tile).
func.func @copies(%l2: memref<8x16x32xui8, "L2">, %l1: memref<4x16x32xui8, "L1">, %l3: memref<1024xsi8, "L3">,
                  %w: memref<256xsi8, "L2">, %row: index, %rows: index) {
  %s = memref.subview %l2[%row, 0, 0] [4, 16, 32] [1, 1, 1] : memref<8x16x32xui8, "L2"> to memref<4x16x32xui8, strided<[512, 32, 1], offset: ?>, "L2">
  %in = dma.copy %s, %l1 : memref<4x16x32xui8, strided<[512, 32, 1], offset: ?>, "L2"> to memref<4x16x32xui8, "L1">
  dma.wait %in
  %out = dma.copy %l1, %s : memref<4x16x32xui8, "L1"> to memref<4x16x32xui8, strided<[512, 32, 1], offset: ?>, "L2">
  %slice = memref.subview %l3[256] [256] [1] : memref<1024xsi8, "L3"> to memref<256xsi8, strided<[1], offset: 256>, "L3">
  %weights = dma.copy %slice, %w : memref<256xsi8, strided<[1], offset: 256>, "L3"> to memref<256xsi8, "L2">
  dma.wait %weights
  dma.wait %out
  %ragged = memref.subview %l2[%row, 0, 0] [%rows, 16, 32] [1, 1, 1] : memref<8x16x32xui8, "L2"> to memref<?x16x32xui8, strided<[512, 32, 1], offset: ?>, "L2">
  %tile = memref.subview %l1[0, 0, 0] [%rows, 16, 32] [1, 1, 1] : memref<4x16x32xui8, "L1"> to memref<?x16x32xui8, strided<[512, 32, 1]>, "L1">
  %t = dma.copy %ragged, %tile : memref<?x16x32xui8, strided<[512, 32, 1], offset: ?>, "L2"> to memref<?x16x32xui8, strided<[512, 32, 1]>, "L1">
  dma.wait %t
  func.return
}

// CHECK:      [[IN:%.*]] = dma.copy %s, %l1 : memref<4x16x32xui8, strided<[512, 32, 1], offset: ?>, "L2"> to memref<4x16x32xui8, "L1">
// CHECK-NEXT: dma.wait [[IN]]
// CHECK-NEXT: [[OUT:%.*]] = dma.copy %l1, %s : memref<4x16x32xui8, "L1"> to memref<4x16x32xui8, strided<[512, 32, 1], offset: ?>, "L2">
// CHECK:      [[W:%.*]] = dma.copy %slice, %w : memref<256xsi8, strided<[1], offset: 256>, "L3"> to memref<256xsi8, "L2">
// CHECK-NEXT: dma.wait [[W]]
// CHECK-NEXT: dma.wait [[OUT]]
// CHECK:      [[T:%.*]] = dma.copy %ragged, %tile : memref<?x16x32xui8, strided<[512, 32, 1], offset: ?>, "L2"> to memref<?x16x32xui8, strided<[512, 32, 1]>, "L1">
// CHECK-NEXT: dma.wait [[T]]
