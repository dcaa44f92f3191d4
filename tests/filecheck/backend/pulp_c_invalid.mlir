// RUN: not dory-opt %s -t pulp-network-c 2>&1 | filecheck %s
// RUN: not dory-opt %s --tile -t pulp-network-c 2>&1 | filecheck %s

// The C printer takes the lowered network only: one error line, no partial output.
// CHECK-NOT: #include
// CHECK: error: the C printer needs the lowered network (run --tile --lower-to-pulp)
// CHECK-NOT: Traceback

func.func @network(%x: tensor<1x4x4x4xui8>) -> tensor<1x4x2x2xui8> {
  %p = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x4x4x4xui8>) -> tensor<1x4x2x2xui8> loc("MaxPool_0")
  func.return %p : tensor<1x4x2x2xui8>
}
