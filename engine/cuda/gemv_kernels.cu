#include "engine/cuda/gemv_kernels.h"
#include "engine/cuda/kernel_util.cuh"

namespace specontext::cuda {
namespace {

constexpr int kWarpsPerBlock = 16;  // each takes every 16th 32-wide slice of k
constexpr int kRowsPerBlock = 16;   // the M of one MMA
constexpr int kSliceK = 32;         // k per warp per slice: 4 lanes x 8 elements
// Slices a lane loads before it uses the first: enough bytes in flight per multiprocessor to
// cover DRAM latency at full bandwidth.
constexpr int kSlicesInFlight = 4;

// Weights are read exactly once: bypass L1 so the activation rows stay there.
__device__ __forceinline__ uint4 LoadOnce(const uint4* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

__device__ __forceinline__ uint4 Masked(uint4 v, uint32_t keep) {
  return uint4{v.x & keep, v.y & keep, v.z & keep, v.w & keep};
}

// One 32-wide slice of k: two MMA steps on weight rows g (lo) and g + 8 (hi).
template <typename T>
__device__ __forceinline__ void MmaSlice(float (&d)[4], const uint4& lo, const uint4& hi,
                                         const uint4& xv) {
  const uint32_t first[4] = {lo.x, hi.x, lo.y, hi.y}, second[4] = {lo.z, hi.z, lo.w, hi.w};
  Mma<T>(d, first, xv.x, xv.y);
  Mma<T>(d, second, xv.z, xv.w);
}

// One CTA computes 16 outputs (weight rows) for all m <= 8 * kTiles activation rows on tensor
// cores: A = 16 weight rows, B = 8 activation rows per tile, D in registers across the whole of
// k, so no lane shuffles partial sums. A dot product does not depend on the order of k, so each
// lane feeds the MMA the 16 bytes it loads as they are: lane (group g, quad q) holds elements
// 8q..8q+7 of a 32-wide slice of weight rows g and g + 8 and of activation row 8t + g of each
// tile t, and MMA step s takes elements 4s..4s+3 of each as the k columns 2q, 2q+1, 2q+8, 2q+9
// of its fragments -- the same mapping for A and B. The 16 warps split k and add up through
// shared memory at the end. A second tile reuses every weight fragment; its register cap keeps
// two CTAs per multiprocessor, so as many weight bytes stay in flight as with one tile (one
// tile is left to the compiler, which then uses 50 registers; a stated minimum makes it 78).
template <typename T, int kTiles>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, kTiles == 1 ? 0 : 2)
    GemvKernel(const uint16_t* __restrict__ x, const uint16_t* __restrict__ w, T* __restrict__ y,
               int m, int n, int k) {
  __shared__ float4 partial[kTiles][kWarpsPerBlock][32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int grp = lane / 4, quad = lane % 4;
  const int row0 = blockIdx.x * kRowsPerBlock;
  // Rows past n read row n - 1 and are not stored; lanes past m read activation row m - 1 into
  // columns of D that are not stored either, so no load needs a branch.
  const uint16_t* w_lo = w + static_cast<size_t>(min(row0 + grp, n - 1)) * k + quad * 8;
  const uint16_t* w_hi = w + static_cast<size_t>(min(row0 + grp + 8, n - 1)) * k + quad * 8;
  const uint16_t* x_row[kTiles];
  float d[kTiles][4];
#pragma unroll
  for (int t = 0; t < kTiles; ++t) {
    x_row[t] = x + static_cast<size_t>(min(t * 8 + grp, m - 1)) * k + quad * 8;
    d[t][0] = d[t][1] = d[t][2] = d[t][3] = 0.0f;
  }

  constexpr int kStride = kWarpsPerBlock * kSliceK;
  int base = warp * kSliceK;
  // Whole rounds: every lane's pieces of kSlicesInFlight slices lie inside k.
  for (; base + (kSlicesInFlight - 1) * kStride + kSliceK <= k; base += kSlicesInFlight * kStride) {
    uint4 lo[kSlicesInFlight], hi[kSlicesInFlight], xv[kTiles][kSlicesInFlight];
#pragma unroll
    for (int u = 0; u < kSlicesInFlight; ++u) {
      lo[u] = LoadOnce(reinterpret_cast<const uint4*>(w_lo + base + u * kStride));
      hi[u] = LoadOnce(reinterpret_cast<const uint4*>(w_hi + base + u * kStride));
#pragma unroll
      for (int t = 0; t < kTiles; ++t) {
        xv[t][u] = __ldg(reinterpret_cast<const uint4*>(x_row[t] + base + u * kStride));
      }
    }
#pragma unroll
    for (int u = 0; u < kSlicesInFlight; ++u) {
#pragma unroll
      for (int t = 0; t < kTiles; ++t) MmaSlice<T>(d[t], lo[u], hi[u], xv[t][u]);
    }
  }
  // The rest one slice at a time; k is a multiple of 8, so a lane's piece is all in or all out.
  // A piece past k reads the row's start and is masked to zero.
  for (; base < k; base += kStride) {
    const bool valid = base + quad * 8 < k;
    const int at = valid ? base : 0;
    const uint32_t keep = valid ? ~0u : 0u;
    const uint4 lo = Masked(LoadOnce(reinterpret_cast<const uint4*>(w_lo + at)), keep);
    const uint4 hi = Masked(LoadOnce(reinterpret_cast<const uint4*>(w_hi + at)), keep);
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      MmaSlice<T>(d[t], lo, hi, Masked(__ldg(reinterpret_cast<const uint4*>(x_row[t] + at)), keep));
    }
  }
#pragma unroll
  for (int t = 0; t < kTiles; ++t) {
    partial[t][warp][lane] = make_float4(d[t][0], d[t][1], d[t][2], d[t][3]);
  }
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (int t = 0; t < kTiles; ++t) {
    float out[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < kWarpsPerBlock; ++i) {
      const float4 p = partial[t][i][lane];
      out[0] += p.x, out[1] += p.y, out[2] += p.z, out[3] += p.w;
    }
    // D: (row g, columns 2q and 2q + 1) and (row g + 8, the same columns).
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = row0 + grp + (e / 2) * 8, col = t * 8 + quad * 2 + e % 2;
      if (row < n && col < m) y[static_cast<size_t>(col) * n + row] = FromFloat<T>(out[e]);
    }
  }
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
    using T = decltype(tag);
    const dim3 grid((n + kRowsPerBlock - 1) / kRowsPerBlock);
    const auto* xs = static_cast<const uint16_t*>(x);
    const auto* ws = static_cast<const uint16_t*>(w);
    // Up to 8 rows one tile; the second tile costs registers that 8 rows do not need.
    if (m <= 8) {
      GemvKernel<T, 1>
          <<<grid, kWarpsPerBlock * 32, 0, stream>>>(xs, ws, static_cast<T*>(y), m, n, k);
    } else {
      GemvKernel<T, 2>
          <<<grid, kWarpsPerBlock * 32, 0, stream>>>(xs, ws, static_cast<T*>(y), m, n, k);
    }
    return CheckLaunch("SmallBatchGemv");
  });
}

}  // namespace specontext::cuda
