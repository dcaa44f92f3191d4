// RUN: not dory-opt %s -p 'fuse,tile{l1-size=200}' 2>&1 | filecheck %s
// RUN: not dory-opt %s -p 'fuse,tile{l2-size=1000}' 2>&1 | filecheck %s --check-prefix=L2
// RUN: not dory-opt %s -p 'fuse,tile{l1-size=0}' 2>&1 | filecheck %s --check-prefix=OPTION

// A 3x3 conv over 256 channels: its smallest tile (1 channel, 1 pixel, a 1-channel
// reduction slice) needs 204 B of L1; in 1,000 B of L2 not even one row of its input
// and output slices fits.
func.func @network(%x: tensor<1x256x18x18xui8>) -> tensor<1x256x18x18xsi32> {
  %w = qnn.constant dense<1> : tensor<256x256x3x3xsi8>
  %acc = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x256x18x18xui8>, tensor<256x256x3x3xsi8>) -> tensor<1x256x18x18xsi32> loc("conv_7")
  func.return %acc : tensor<1x256x18x18xsi32>
}

// CHECK: error: layer 0 'conv_7' (conv 3x3, 256->256, 18x18): smallest L1 tiling needs 204 B (input 24, output 8, weights 24, partial sums 4, im2col 144) > budget 200 B
// L2: error: layer 0 'conv_7' (conv 3x3, 256->256, 18x18): smallest L2 working set needs 69,120 B (weights 4,608, input (in) 27,648, layer0 (out) 36,864) > budget 1,000 B
// OPTION: error: tile option l1-size must be positive, got 0

