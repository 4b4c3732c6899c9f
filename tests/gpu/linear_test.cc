// The linear layer on random inputs against the CPU reference, through each of its paths:
// Forward (which picks), cuBLAS, and the small-batch GEMV at every row count it takes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/cpu/matmul.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/gemv_kernels.h"
#include "engine/cuda/linear.h"
#include "engine/device.h"

namespace specontext {
namespace {

enum class Path { kForward, kCublas, kGemv };

class LinearTest : public ::testing::TestWithParam<std::tuple<int, int, int, DType, Path>> {
 protected:
  void SetUp() override {
    if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  }
};

uint16_t Encode(DType dtype, float v) {
  return dtype == DType::kBF16 ? FloatToBf16(v) : FloatToHalf(v);
}
float Decode(DType dtype, uint16_t v) {
  return dtype == DType::kBF16 ? Bf16ToFloat(v) : HalfToFloat(v);
}

TEST_P(LinearTest, MatchesCpuReferenceOnRandomInputs) {
  const auto [m, n, k, dtype, path] = GetParam();
  std::mt19937 rng(1234 + m * 7 + n * 13 + k);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<uint16_t> x(size_t(m) * k), w(size_t(n) * k);
  std::vector<float> xf(x.size()), wf(w.size());
  for (size_t i = 0; i < x.size(); ++i) xf[i] = Decode(dtype, x[i] = Encode(dtype, dist(rng)));
  for (size_t i = 0; i < w.size(); ++i) wf[i] = Decode(dtype, w[i] = Encode(dtype, dist(rng)));

  auto dx = cuda::DeviceBuffer::Allocate(x.size() * 2);
  auto dw = cuda::DeviceBuffer::Allocate(w.size() * 2);
  auto dy = cuda::DeviceBuffer::Allocate(size_t(m) * n * 2);
  ASSERT_TRUE(dx.ok() && dw.ok() && dy.ok());
  ASSERT_EQ(cudaMemcpy(dx->data(), x.data(), x.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dw->data(), w.data(), w.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  // Poison the output so an unwritten element cannot pass.
  ASSERT_EQ(cudaMemset(dy->data(), 0xff, size_t(m) * n * 2), cudaSuccess);

  auto linear = cuda::Linear::Create(nullptr);
  ASSERT_TRUE(linear.ok()) << linear.status().ToString();
  Status st;
  if (path == Path::kForward) {
    st = (*linear)->Forward(dtype, dx->data(), dw->data(), dy->data(), m, n, k);
  } else if (path == Path::kCublas) {
    st = (*linear)->Cublas(dtype, dx->data(), dw->data(), dy->data(), m, n, k);
  } else {
    st = cuda::SmallBatchGemv(dtype, dx->data(), dw->data(), dy->data(), m, n, k, nullptr);
  }
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::vector<uint16_t> y(size_t(m) * n);
  ASSERT_EQ(cudaMemcpy(y.data(), dy->data(), y.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);

  std::vector<float> ref(y.size());
  cpu::MatmulNT(xf.data(), wf.data(), ref.data(), m, n, k);
  double err = 0, norm = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double got = Decode(dtype, y[i]);
    ASSERT_FALSE(std::isnan(got)) << "element " << i << " not written";
    err += (got - ref[i]) * (got - ref[i]);
    norm += double(ref[i]) * ref[i];
  }
  // Output rounding to bf16 (8 mantissa bits) bounds the relative error near 2^-9.
  const double tolerance = dtype == DType::kBF16 ? 1e-2 : 2e-3;
  EXPECT_LT(std::sqrt(err / norm), tolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LinearTest,
    ::testing::Values(std::make_tuple(64, 256, 512, DType::kBF16, Path::kForward),
                      std::make_tuple(37, 129, 200, DType::kBF16, Path::kForward),
                      std::make_tuple(1, 4096, 4096, DType::kBF16, Path::kForward),
                      std::make_tuple(3, 1000, 2048, DType::kBF16, Path::kForward),
                      std::make_tuple(2, 77, 36, DType::kBF16, Path::kForward),
                      std::make_tuple(1, 300, 4096, DType::kBF16, Path::kCublas),
                      std::make_tuple(128, 384, 576, DType::kF16, Path::kForward)));

// Every row count the GEMV takes, a k that leaves a partial round of loads and a partial last
// slice (k / 8 = 1801 pieces), and an n that is not a multiple of the 16 rows a block computes.
INSTANTIATE_TEST_SUITE_P(GemvRows, LinearTest,
                         ::testing::Combine(::testing::Range(1, cuda::kGemvMaxRows + 1),
                                            ::testing::Values(1001), ::testing::Values(14408),
                                            ::testing::Values(DType::kBF16, DType::kF16),
                                            ::testing::Values(Path::kGemv)));

TEST(SmallBatchGemvTest, RefusesWhatItCannotTake) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  auto buf = cuda::DeviceBuffer::Allocate(1 << 16);
  ASSERT_TRUE(buf.ok());
  void* p = buf->data();
  EXPECT_FALSE(
      cuda::SmallBatchGemv(DType::kBF16, p, p, p, cuda::kGemvMaxRows + 1, 8, 64, nullptr).ok());
  EXPECT_FALSE(cuda::SmallBatchGemv(DType::kBF16, p, p, p, 1, 8, 60, nullptr).ok());
  EXPECT_FALSE(
      cuda::SmallBatchGemv(DType::kBF16, static_cast<char*>(p) + 2, p, p, 1, 8, 64, nullptr).ok());
  EXPECT_FALSE(cuda::SmallBatchGemv(DType::kF32, p, p, p, 1, 8, 64, nullptr).ok());
}

}  // namespace
}  // namespace specontext
