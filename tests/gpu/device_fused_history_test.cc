// DeviceFusedHistory against the host FusedHistory it mirrors, through random sequences of the
// calls a planner makes (observations in order, recomputes, adopted prefixes, drops), checking
// every input it writes bit for bit (BF16 states, zeros where unknown).
#include "engine/cuda/device_fused_history.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/specontext/fused_history.h"

namespace specontext::cuda {
namespace {

TEST(DeviceFusedHistoryTest, MatchesTheHostHistory) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  constexpr int kWidth = 24;
  std::mt19937 rng(5);
  FusedHistory host(kWidth);
  DeviceFusedHistory device(kWidth);
  int64_t next = 0;  // the position the sequence would run next
  const auto state = [&](int64_t position, int j) {
    // Exactly representable in BF16, so the host reference converts without rounding.
    return static_cast<float>((position * 7 + j) % 251) - 125.0f;
  };
  for (int round = 0; round < 300; ++round) {
    const int op = std::uniform_int_distribution<int>(0, 9)(rng);
    if (op < 6) {  // a step: a prefill chunk or a decode row, sometimes after a recompute or gap
      int64_t start = next;
      if (op == 4 && next > 4) start = next - std::uniform_int_distribution<int64_t>(1, 4)(rng);
      if (op == 5) start = next + std::uniform_int_distribution<int64_t>(1, 3)(rng);
      const int64_t rows = op == 0 ? std::uniform_int_distribution<int64_t>(2, 300)(rng) : 1;
      std::vector<float> states(rows * kWidth);
      std::vector<uint16_t> bits(states.size());
      for (int64_t r = 0; r < rows; ++r) {
        for (int j = 0; j < kWidth; ++j) states[r * kWidth + j] = state(start + r, j);
      }
      std::transform(states.begin(), states.end(), bits.begin(), FloatToBf16);
      host.Observe(start, states);
      ASSERT_TRUE(device.Observe(start, bits.data(), rows, cudaMemcpyHostToDevice, nullptr).ok());
      next = start + rows;
    } else if (op == 6) {
      const int64_t end = next - std::uniform_int_distribution<int64_t>(0, 5)(rng);
      host.Truncate(end);
      device.Truncate(end);
    } else {
      const int64_t first = next - std::uniform_int_distribution<int64_t>(0, 3)(rng);
      host.DropBefore(first);
      ASSERT_TRUE(device.DropBefore(first, nullptr).ok());
    }
    // Every window the planner could ask for near the end.
    for (int64_t first = std::max<int64_t>(0, next - 310); first <= next + 1; first += 7) {
      const int64_t count = std::uniform_int_distribution<int64_t>(1, 320)(rng);
      const std::vector<float> want = host.InputsFor(first, count);
      ASSERT_EQ(device.Knows(first, count), !want.empty()) << "first " << first;
      auto dst = DeviceBuffer::Allocate(count * kWidth * 2);
      ASSERT_TRUE(dst.ok());
      ASSERT_TRUE(device.WriteInputs(first, count, dst->as<uint16_t>(), nullptr).ok());
      std::vector<uint16_t> got(count * kWidth);
      ASSERT_EQ(cudaMemcpy(got.data(), dst->data(), got.size() * 2, cudaMemcpyDeviceToHost),
                cudaSuccess);
      for (size_t i = 0; i < got.size(); ++i) {
        const float expected = want.empty() ? 0.0f : want[i];
        ASSERT_EQ(Bf16ToFloat(got[i]), expected)
            << "round " << round << ", first " << first << ", value " << i;
      }
    }
  }
}

}  // namespace
}  // namespace specontext::cuda
