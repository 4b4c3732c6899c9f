#include "engine/cuda/gemv_kernels.h"
#include "engine/cuda/kernel_util.cuh"

namespace specontext::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
// 16-byte weight loads each lane issues before it uses the first: enough bytes in flight per
// multiprocessor to cover DRAM latency at full bandwidth.
constexpr int kLoadsInFlight = 8;

// Weights are read exactly once: bypass L1 so the activation rows stay there.
__device__ __forceinline__ uint4 LoadOnce(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// One warp per output column n: its lanes stride over w[n] in 16-byte pieces, each piece
// multiplied by the same piece of every row of x.
template <typename T, int M>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    GemvKernel(const uint4* __restrict__ x, const uint4* __restrict__ w, T* __restrict__ y, int n,
               int chunks) {
  const int lane = threadIdx.x % 32;
  const int col = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  if (col >= n) return;
  const uint4* wrow = w + static_cast<size_t>(col) * chunks;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  for (int base = lane; base < chunks; base += 32 * kLoadsInFlight) {
    uint4 wv[kLoadsInFlight];
#pragma unroll
    for (int u = 0; u < kLoadsInFlight; ++u) {
      const int c = base + 32 * u;
      wv[u] = c < chunks ? LoadOnce(wrow + c) : uint4{0, 0, 0, 0};
    }
#pragma unroll
    for (int u = 0; u < kLoadsInFlight; ++u) {
      const int c = base + 32 * u;
      if (c >= chunks) continue;
      float wf[8];
      Unpack8<T>(wv[u], wf);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float xf[8];
        Unpack8<T>(__ldg(x + static_cast<size_t>(m) * chunks + c), xf);
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[m] = fmaf(wf[i], xf[i], acc[m]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float sum = WarpSum(acc[m]);
    if (lane == m) y[static_cast<size_t>(m) * n + col] = FromFloat<T>(sum);
  }
}

template <typename T, int M>
void Launch(const void* x, const void* w, void* y, int n, int k, cudaStream_t stream) {
  const dim3 grid((n + kWarpsPerBlock - 1) / kWarpsPerBlock);
  GemvKernel<T, M><<<grid, kWarpsPerBlock * 32, 0, stream>>>(
      static_cast<const uint4*>(x), static_cast<const uint4*>(w), static_cast<T*>(y), n, k / 8);
}

template <typename T, int M = 1>
void LaunchRows(int m, const void* x, const void* w, void* y, int n, int k, cudaStream_t stream) {
  if constexpr (M < kGemvMaxRows) {
    if (m != M) return LaunchRows<T, M + 1>(m, x, w, y, n, k, stream);
  }
  Launch<T, M>(x, w, y, n, k, stream);
}

}  // namespace

bool GemvApplies(const void* x, const void* w, int m, int k) {
  return m >= 1 && m <= kGemvMaxRows && k > 0 && k % 8 == 0 && Aligned16({x, w});
}

Status SmallBatchGemv(DType dtype, const void* x, const void* w, void* y, int m, int n, int k,
                      cudaStream_t stream) {
  if (!GemvApplies(x, w, m, k) || n <= 0) {
    return InvalidArgument("SmallBatchGemv: needs 1 to " + std::to_string(kGemvMaxRows) +
                           " rows, k a multiple of 8 and 16-byte aligned x and w");
  }
  return DispatchHalfType(dtype, "SmallBatchGemv", [&](auto tag) -> Status {
    LaunchRows<decltype(tag)>(m, x, w, y, n, k, stream);
    return CheckLaunch("SmallBatchGemv");
  });
}

}  // namespace specontext::cuda
