#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/rope_kv_kernels.h"

namespace specontext::cuda {
namespace {

constexpr int kWarps = 4;

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kWarps * 32)
    RopeKvKernel(RopeKvArgs a, void* const* block_table, int max_blocks, int num_kv_heads,
                 int block_tokens) {
  // Lane l owns the rotation pairs (l + 32 j, l + 32 j + kHeadDim / 2).
  constexpr int kPairs = kHeadDim / 64;
  constexpr int kHalf = kHeadDim / 2;
  const int token = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int pos = a.positions[token];
  const int seq = a.token_seq[token];

  float cos_v[kPairs], sin_v[kPairs];
#pragma unroll
  for (int j = 0; j < kPairs; ++j) {
    // Full-precision sincosf: angles reach 1e5 radians at long positions.
    sincosf(static_cast<float>(pos) * a.inv_freq[lane + 32 * j], &sin_v[j], &cos_v[j]);
    cos_v[j] *= a.rope_scale;
    sin_v[j] *= a.rope_scale;
  }

  T* block = nullptr;
  if (pos >= 0 && pos / block_tokens < max_blocks) {
    block =
        static_cast<T*>(block_table[static_cast<size_t>(seq) * max_blocks + pos / block_tokens]);
  }
  const size_t half_block = static_cast<size_t>(num_kv_heads) * block_tokens * kHeadDim;
  const int slot = pos % block_tokens;

  // A warp per head (q heads, k heads, then v heads), blockIdx.y picking the group of kWarps:
  // a decode step of a few tokens would otherwise wait on one CTA's serial walk over them.
  const int heads = a.num_q_heads + 2 * num_kv_heads;
  for (int head = blockIdx.y * kWarps + warp; head < heads; head += kWarps * gridDim.y) {
    float x[kPairs], y[kPairs];
    if (head >= a.num_q_heads + num_kv_heads) {
      const int kv_head = head - a.num_q_heads - num_kv_heads;
      const T* src =
          static_cast<const T*>(a.v) + static_cast<size_t>(token) * a.v_stride + kv_head * kHeadDim;
      if (block == nullptr || a.v == nullptr) continue;
      T* dst = block + half_block + (static_cast<size_t>(kv_head) * block_tokens + slot) * kHeadDim;
#pragma unroll
      for (int j = 0; j < kPairs; ++j) {
        dst[lane + 32 * j] = src[lane + 32 * j];
        dst[lane + 32 * j + kHalf] = src[lane + 32 * j + kHalf];
      }
      continue;
    }
    const bool is_q = head < a.num_q_heads;
    const int kv_head = head - a.num_q_heads;
    T* p =
        is_q ? static_cast<T*>(a.q) + static_cast<size_t>(token) * a.q_stride + head * kHeadDim
             : static_cast<T*>(a.k) + static_cast<size_t>(token) * a.k_stride + kv_head * kHeadDim;
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      x[j] = ToFloat(p[lane + 32 * j]);
      y[j] = ToFloat(p[lane + 32 * j + kHalf]);
    }
    const T* norm_w = static_cast<const T*>(is_q ? a.q_norm_weight : a.k_norm_weight);
    if (norm_w != nullptr) {
      float sumsq = 0.0f;
#pragma unroll
      for (int j = 0; j < kPairs; ++j) sumsq += x[j] * x[j] + y[j] * y[j];
      const float rstd = rsqrtf(WarpSum(sumsq) / kHeadDim + a.norm_eps);
#pragma unroll
      for (int j = 0; j < kPairs; ++j) {
        x[j] *= rstd * ToFloat(norm_w[lane + 32 * j]);
        y[j] *= rstd * ToFloat(norm_w[lane + 32 * j + kHalf]);
      }
    }
    T* kv_dst = (!is_q && block != nullptr)
                    ? block + (static_cast<size_t>(kv_head) * block_tokens + slot) * kHeadDim
                    : nullptr;
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const T rx = FromFloat<T>(x[j] * cos_v[j] - y[j] * sin_v[j]);
      const T ry = FromFloat<T>(y[j] * cos_v[j] + x[j] * sin_v[j]);
      p[lane + 32 * j] = rx;
      p[lane + 32 * j + kHalf] = ry;
      if (kv_dst != nullptr) {
        kv_dst[lane + 32 * j] = rx;
        kv_dst[lane + 32 * j + kHalf] = ry;
      }
    }
  }
}

template <typename T, int kHeadDim>
Status Launch(const RopeKvArgs& args, const PagedKv& kv, cudaStream_t stream) {
  const int heads = args.num_q_heads + 2 * kv.num_kv_heads;
  const dim3 grid(args.num_tokens, (heads + kWarps - 1) / kWarps);
  RopeKvKernel<T, kHeadDim><<<grid, kWarps * 32, 0, stream>>>(args, kv.block_table, kv.max_blocks,
                                                              kv.num_kv_heads, kv.block_tokens);
  return CheckLaunch("RopeAndWriteKv");
}

}  // namespace

Status RopeAndWriteKv(const RopeKvArgs& args, const PagedKv& kv, cudaStream_t stream) {
  SPC_RETURN_IF_ERROR(kv.Validate("RopeAndWriteKv"));
  if (args.num_tokens < 0 || args.num_q_heads <= 0 || args.inv_freq == nullptr ||
      args.positions == nullptr || args.token_seq == nullptr) {
    return InvalidArgument("RopeAndWriteKv: needs q heads, positions, token_seq and inv_freq");
  }
  if (args.num_tokens == 0) return Status::Ok();
  return DispatchHalfType(kv.dtype, "RopeAndWriteKv", [&](auto tag) -> Status {
    using T = decltype(tag);
    switch (kv.head_dim) {
      case 64:
        return Launch<T, 64>(args, kv, stream);
      case 128:
        return Launch<T, 128>(args, kv, stream);
      default:
        return Launch<T, 256>(args, kv, stream);
    }
  });
}

}  // namespace specontext::cuda
