// How large the GPU KV tier is when serving: the flag when given, else a share of the device's
// free memory on a GPU, else none (the CPU backend, which emulates a tier only when asked).
#include <gtest/gtest.h>

#include "server/serving_model.h"

namespace specontext::server {
namespace {

constexpr size_t kGib = size_t{1} << 30;

TEST(KvGpuTierTest, AnExplicitSizeWinsOnEveryBackend) {
  ServingModelOptions options;
  options.kv_gpu_gib = 3.5;
  EXPECT_DOUBLE_EQ(KvGpuTierGib(options, true, 70 * kGib), 3.5);
  EXPECT_DOUBLE_EQ(KvGpuTierGib(options, false, 0), 3.5);
}

TEST(KvGpuTierTest, UnsetOnAGpuTakesTheFractionOfFreeMemory) {
  ServingModelOptions options;
  EXPECT_DOUBLE_EQ(options.kv_gpu_gib, 0.0);
  EXPECT_DOUBLE_EQ(KvGpuTierGib(options, true, 40 * kGib), 0.85 * 40);
  options.kv_gpu_fraction = 0.5;
  EXPECT_DOUBLE_EQ(KvGpuTierGib(options, true, 40 * kGib), 20.0);
  // An absurd fraction is clamped rather than asking for more than the device has.
  options.kv_gpu_fraction = 7.0;
  EXPECT_DOUBLE_EQ(KvGpuTierGib(options, true, 40 * kGib), 40.0);
  options.kv_gpu_fraction = -1.0;
  EXPECT_DOUBLE_EQ(KvGpuTierGib(options, true, 40 * kGib), 0.0);
}

TEST(KvGpuTierTest, UnsetWithoutAGpuMeansNoTier) {
  ServingModelOptions options;
  EXPECT_DOUBLE_EQ(KvGpuTierGib(options, false, 40 * kGib), 0.0);
  EXPECT_DOUBLE_EQ(KvGpuTierGib(options, true, 0), 0.0);  // the driver reported nothing free
}

}  // namespace
}  // namespace specontext::server
