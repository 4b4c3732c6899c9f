// Linear-layer micro-benchmark at the Llama-3.1-8B projection shapes (bf16): our small-batch
// GEMV against cuBLAS for decode-sized row counts, as the weight bandwidth each reaches (weights
// dominate the bytes at these sizes). Weights rotate over copies larger than L2 together, so
// repeats read DRAM as a decode step does.
#include <cstdio>
#include <vector>

#include "engine/cuda/gemv_kernels.h"
#include "engine/cuda/linear.h"
#include "tests/gpu/bench_util.cuh"

namespace specontext::cuda {
namespace {

struct Shape {
  const char* name;
  int n, k;
};

int Main() {
  const std::vector<Shape> shapes = {{"qkv", 6144, 4096},
                                     {"o", 4096, 4096},
                                     {"gate_up", 28672, 4096},
                                     {"down", 4096, 14336},
                                     {"lm_head", 128256, 4096}};
  const std::vector<int> rows = {1, 2, 4, 8, 12, 16, 32};
  auto linear = Linear::Create(nullptr);
  if (!linear.ok()) {
    std::fprintf(stderr, "%s\n", linear.status().ToString().c_str());
    return 1;
  }
  std::printf("%-8s %6s %6s %3s %10s %8s %10s %8s %7s\n", "shape", "n", "k", "m", "gemv_us", "GB/s",
              "cublas_us", "GB/s", "ratio");
  for (const Shape& s : shapes) {
    const size_t weight_bytes = size_t(s.n) * s.k * 2;
    const int copies = static_cast<int>(std::max<size_t>(1, (size_t(512) << 20) / weight_bytes));
    DeviceBuffer w = Alloc(weight_bytes * copies);
    FillRandom<<<4096, 256>>>(w.as<__nv_bfloat16>(), weight_bytes * copies / 2, 5);
    const int max_rows = rows.back();
    DeviceBuffer x = Alloc(size_t(max_rows) * s.k * 2), y = Alloc(size_t(max_rows) * s.n * 2);
    FillRandom<<<64, 256>>>(x.as<__nv_bfloat16>(), size_t(max_rows) * s.k, 9);
    for (int m : rows) {
      Status failed;
      auto weights = [&](int i) { return w.as<char>() + size_t(i % copies) * weight_bytes; };
      float gemv_ms = 0;
      if (m <= kGemvMaxRows) {
        gemv_ms = MedianMs(
            [&](int i) {
              const Status st = SmallBatchGemv(DType::kBF16, x.data(), weights(i), y.data(), m, s.n,
                                               s.k, nullptr);
              if (!st.ok()) failed = st;
            },
            30);
      }
      const float cublas_ms = MedianMs(
          [&](int i) {
            const Status st =
                (*linear)->Cublas(DType::kBF16, x.data(), weights(i), y.data(), m, s.n, s.k);
            if (!st.ok()) failed = st;
          },
          30);
      if (!failed.ok()) {
        std::fprintf(stderr, "%s\n", failed.ToString().c_str());
        return 1;
      }
      const double bytes = weight_bytes + 2.0 * m * (s.k + s.n);
      if (gemv_ms > 0) {
        std::printf("%-8s %6d %6d %3d %10.1f %8.0f %10.1f %8.0f %7.2f\n", s.name, s.n, s.k, m,
                    gemv_ms * 1e3, bytes / gemv_ms / 1e6, cublas_ms * 1e3, bytes / cublas_ms / 1e6,
                    cublas_ms / gemv_ms);
      } else {
        std::printf("%-8s %6d %6d %3d %10s %8s %10.1f %8.0f %7s\n", s.name, s.n, s.k, m, "-", "-",
                    cublas_ms * 1e3, bytes / cublas_ms / 1e6, "-");
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace specontext::cuda

int main() {
  return specontext::cuda::GpuPresent("linear benchmark") ? specontext::cuda::Main() : 0;
}
