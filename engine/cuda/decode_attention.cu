#include <algorithm>
#include <type_traits>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/decode_attention.h"
#include "engine/cuda/kernel_util.cuh"

namespace specontext::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMinChunk = 64;
constexpr int kMaxChunk = 1024;
constexpr float kLog2e = 1.4426950408889634f;

struct DecodeParams {
  DecodeAttentionArgs a;
  void* const* block_table;
  int max_blocks;
  int num_kv_heads;
  int block_shift;  // log2(block_tokens)
  int group;        // query heads per KV head
  int head_subgroups;
  int chunk;
  float* ws_out;  // [batch][num_q_heads][splits][head_dim], normalised per split
  float* ws_lse;  // [batch][num_q_heads][splits], log2 domain
};

// A row is sparse when it has an index list (a count of at least zero), dense otherwise.
__device__ __forceinline__ bool SparseRow(const DecodeAttentionArgs& a, int b, int kv_head,
                                          int num_kv_heads) {
  return a.indices != nullptr && a.index_counts[b * num_kv_heads + kv_head] >= 0;
}

__device__ __forceinline__ int AttendLength(const DecodeAttentionArgs& a, int b, int kv_head,
                                            int num_kv_heads) {
  return SparseRow(a, b, kv_head, num_kv_heads) ? a.index_counts[b * num_kv_heads + kv_head]
                                                : a.seq_lens[b];
}

// Independent 16-byte loads per lane in flight; fewer where q and the accumulators of eight
// heads already take most registers.
template <int kHeads>
constexpr int LoadsPerLane() {
  return kHeads >= 8 ? 4 : 8;
}

// v[u]: this lane's partial dot product of key u, summed over kLanes lanes. Each halving step
// trades half of the keys with the partner lane, so the lanes end up with one full sum each in
// v[0] (of key ReducedKey(lane)) after kKeys - 1 + log2(kLanes / kKeys) shuffles, instead of
// kKeys · log2(kLanes) for a butterfly per key.
template <int kLanes, int kKeys>
__device__ __forceinline__ void TransposeSum(float (&v)[kKeys], int lane_in_key) {
  static_assert(kKeys <= kLanes && (kKeys & (kKeys - 1)) == 0);
  int count = kKeys;
#pragma unroll
  for (int offset = kLanes / 2; offset > 0; offset >>= 1) {
    if (count > 1) {
      const int half = count / 2;
      const bool upper = lane_in_key & offset;
#pragma unroll
      for (int j = 0; j < half; ++j) {
        const float send = upper ? v[j] : v[j + half];
        const float keep = upper ? v[j + half] : v[j];
        v[j] = keep + __shfl_xor_sync(0xffffffffu, send, offset);
      }
      count = half;
    } else {
      v[0] += __shfl_xor_sync(0xffffffffu, v[0], offset);
    }
  }
}

// The key whose sum TransposeSum leaves in a lane: upper lanes keep the upper half each step.
template <int kLanes, int kKeys>
__device__ __forceinline__ int ReducedKey(int lane_in_key) {
  int key = 0;
  int half = kKeys / 2;
#pragma unroll
  for (int offset = kLanes / 2; half > 0; offset >>= 1, half /= 2) {
    if (lane_in_key & offset) key += half;
  }
  return key;
}

// Grid: (splits, num_kv_heads x head_subgroups, batch). A key's head_dim elements are read by
// kLanesPerKey lanes, 8 each; a warp covers kKeysPerWarp keys at a time. With kPrefetchV the
// first round of V loads goes out with the first round of K.
template <typename T, int kHeadDim, int kHeads, bool kPrefetchV>
__global__ void __launch_bounds__(kWarps * 32) DecodeSplitKernel(DecodeParams p) {
  constexpr int kUnroll = LoadsPerLane<kHeads>();
  constexpr int kLanesPerKey = kHeadDim / 8;
  constexpr int kKeysPerWarp = 32 / kLanesPerKey;
  constexpr int kKeyGroups = kWarps * kKeysPerWarp;
  // Key addresses [chunk], then scores [kHeads][chunk], later [kWarps][kHeads][kHeadDim].
  extern __shared__ uint4 smem_raw[];
  const T** key_addr = reinterpret_cast<const T**>(smem_raw);
  float* smem = reinterpret_cast<float*>(key_addr + p.chunk);
  __shared__ float row_max[kHeads], row_sum[kHeads];

  const DecodeAttentionArgs& a = p.a;
  const int split = blockIdx.x, b = blockIdx.z;
  const int kv_head = blockIdx.y / p.head_subgroups;
  const int head0 = kv_head * p.group + (blockIdx.y % p.head_subgroups) * kHeads;
  const int heads = min(kHeads, kv_head * p.group + p.group - head0);
  const int len = AttendLength(a, b, kv_head, p.num_kv_heads);
  const int start = split * p.chunk;
  const int n = min(len, start + p.chunk) - start;
  const bool direct = gridDim.x == 1;
  if (n <= 0 && !direct) return;  // the combine ignores splits past the end

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int sub = lane % kLanesPerKey;  // which 8 elements of the key
  const int key_in_warp = lane / kLanesPerKey;
  const T* qbase = static_cast<const T*>(a.q) + static_cast<size_t>(b) * a.q_stride;

  // q pre-scaled so scores are in the log2 domain.
  float q[kHeads][8];
#pragma unroll
  for (int g = 0; g < kHeads; ++g) {
    if (g < heads) {
      LoadN<T, 8>(qbase + (head0 + g) * kHeadDim + sub * 8, q[g]);
#pragma unroll
      for (int j = 0; j < 8; ++j) q[g][j] *= a.scale * kLog2e;
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) q[g][j] = 0.0f;
    }
  }

  // Elastic rows read the lists that name their GPU slot copies (elastic_kv.h).
  const int32_t* lists = a.slot_rows != nullptr && a.slot_rows[b] != 0 ? a.slot_indices : a.indices;
  const int32_t* idx =
      SparseRow(a, b, kv_head, p.num_kv_heads)
          ? lists + static_cast<size_t>(b * p.num_kv_heads + kv_head) * a.index_stride
          : nullptr;
  void* const* table = p.block_table + static_cast<size_t>(b) * p.max_blocks;
  const int block_mask = (1 << p.block_shift) - 1;
  const size_t half_block = static_cast<size_t>(p.num_kv_heads) << p.block_shift;
  // Resolve every key's address once, with all index and block-table loads independent, so
  // the K and V passes below wait on one load per key instead of a chain of three.
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const int pos = idx != nullptr ? idx[start + i] : start + i;
    key_addr[i] = static_cast<const T*>(table[pos >> p.block_shift]) +
                  ((static_cast<size_t>(kv_head) << p.block_shift) + (pos & block_mask)) * kHeadDim;
  }
  __syncthreads();
  // This lane's 8 elements of key i (0-based within the split); V is half a block on.
  auto key_ptr = [&](int i) { return key_addr[i] + sub * 8; };
  uint4 v_first[kPrefetchV ? kUnroll : 1];
  if constexpr (kPrefetchV) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = warp * kKeysPerWarp + u * kKeyGroups + key_in_warp;
      v_first[u] = i < n ? __ldg(reinterpret_cast<const uint4*>(key_ptr(i) + half_block * kHeadDim))
                         : uint4{0, 0, 0, 0};
    }
  }

  float* scores = smem;
  // Every lane of a warp runs the same trip count, so the shuffles below see the full warp.
  for (int base = warp * kKeysPerWarp; base < n; base += kKeyGroups * kUnroll) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = base + u * kKeyGroups + key_in_warp;
      raw[u] = i < n ? __ldg(reinterpret_cast<const uint4*>(key_ptr(i))) : uint4{0, 0, 0, 0};
    }
    float part[kHeads][kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float k[8];
      Unpack8<T>(raw[u], k);
#pragma unroll
      for (int g = 0; g < kHeads; ++g) {
        part[g][u] = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j) part[g][u] += q[g][j] * k[j];
      }
    }
#pragma unroll
    for (int g = 0; g < kHeads; ++g) TransposeSum<kLanesPerKey, kUnroll>(part[g], sub);
    const int i = base + ReducedKey<kLanesPerKey, kUnroll>(sub) * kKeyGroups + key_in_warp;
    if (sub % (kLanesPerKey / kUnroll) == 0 && i < n) {
#pragma unroll
      for (int g = 0; g < kHeads; ++g) scores[g * p.chunk + i] = part[g][0];
    }
  }
  __syncthreads();

  // Softmax statistics: warp w takes heads w, w + kWarps, ...
  for (int g = warp; g < kHeads; g += kWarps) {
    float m = -INFINITY;
    for (int i = lane; i < n; i += 32) m = fmaxf(m, scores[g * p.chunk + i]);
    m = WarpMax(m);
    float l = 0.0f;
    for (int i = lane; i < n; i += 32) {
      const float e = exp2f(scores[g * p.chunk + i] - m);
      scores[g * p.chunk + i] = e;
      l += e;
    }
    l = WarpSum(l);
    if (lane == 0) row_max[g] = m, row_sum[g] = l;
  }
  __syncthreads();

  float acc[kHeads][8];
#pragma unroll
  for (int g = 0; g < kHeads; ++g) {
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[g][j] = 0.0f;
  }
  for (int base = warp * kKeysPerWarp; base < n; base += kKeyGroups * kUnroll) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = base + u * kKeyGroups + key_in_warp;
      if (kPrefetchV && base == warp * kKeysPerWarp) {
        raw[u] = v_first[kPrefetchV ? u : 0];
      } else {
        raw[u] = i < n ? __ldg(reinterpret_cast<const uint4*>(key_ptr(i) + half_block * kHeadDim))
                       : uint4{0, 0, 0, 0};
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = base + u * kKeyGroups + key_in_warp;
      if (i >= n) continue;
      float v[8];
      Unpack8<T>(raw[u], v);
#pragma unroll
      for (int g = 0; g < kHeads; ++g) {
        const float w = scores[g * p.chunk + i];
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[g][j] += w * v[j];
      }
    }
  }
  // Sum the keys-in-warp partials, then the warps' through shared memory.
#pragma unroll
  for (int g = 0; g < kHeads; ++g) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int offset = kLanesPerKey; offset < 32; offset <<= 1) {
        acc[g][j] += __shfl_xor_sync(0xffffffffu, acc[g][j], offset);
      }
    }
  }
  __syncthreads();  // scores are dead; their space takes the warps' partial outputs
  float* partial = smem;
  if (key_in_warp == 0) {
#pragma unroll
    for (int g = 0; g < kHeads; ++g) {
#pragma unroll
      for (int j = 0; j < 8; ++j) partial[(warp * kHeads + g) * kHeadDim + sub * 8 + j] = acc[g][j];
    }
  }
  __syncthreads();

  const int num_q_heads = a.num_q_heads;
  for (int e = threadIdx.x; e < heads * kHeadDim; e += blockDim.x) {
    const int g = e / kHeadDim, d = e % kHeadDim;
    float o = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) o += partial[(w * kHeads + g) * kHeadDim + d];
    const float l = row_sum[g];
    o = l > 0.0f ? o / l : 0.0f;
    const int head = head0 + g;
    if (direct) {
      static_cast<T*>(a.out)[static_cast<size_t>(b) * a.out_stride + head * kHeadDim + d] =
          FromFloat<T>(o);
    } else {
      const size_t row = (static_cast<size_t>(b) * num_q_heads + head) * gridDim.x + split;
      p.ws_out[row * kHeadDim + d] = o;
      if (d == 0) p.ws_lse[row] = row_max[g] + log2f(l);
    }
  }
}

constexpr int kCombineThreads = 256;  // at most

// Grid: (num_q_heads, batch). Weighs each split's normalised output by its share of the total
// softmax mass. A split's row is read by kHeadDim / 4 threads, 16 bytes each, and the block's
// groups of them (up to one per split) take different splits, so the splits' loads are in
// flight at once rather than one split after another.
template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kCombineThreads) DecodeCombineKernel(DecodeParams p, int splits) {
  constexpr int kRowThreads = kHeadDim / 4;
  constexpr int kGroups = kCombineThreads / kRowThreads;
  __shared__ float4 part_out[kGroups][kRowThreads];
  __shared__ float part_total[kGroups];
  const DecodeAttentionArgs& a = p.a;
  const int head = blockIdx.x, b = blockIdx.y;
  const int len = AttendLength(a, b, head / p.group, p.num_kv_heads);
  const int used = min(splits, (len + p.chunk - 1) / p.chunk);
  const size_t row0 = (static_cast<size_t>(b) * a.num_q_heads + head) * splits;
  // Every thread finds the maximum itself: the loads are independent cache hits, cheaper than
  // a block reduction's barriers.
  float m = -INFINITY;
#pragma unroll 8
  for (int s = 0; s < used; ++s) m = fmaxf(m, p.ws_lse[row0 + s]);
  const int groups = blockDim.x / kRowThreads;
  const int group = threadIdx.x / kRowThreads, t = threadIdx.x % kRowThreads;
  float4 o{0.0f, 0.0f, 0.0f, 0.0f};
  float total = 0.0f;
#pragma unroll 4
  for (int s = group; s < used; s += groups) {
    const float w = exp2f(p.ws_lse[row0 + s] - m);
    const float4 v = reinterpret_cast<const float4*>(p.ws_out + (row0 + s) * kHeadDim)[t];
    o.x += w * v.x, o.y += w * v.y, o.z += w * v.z, o.w += w * v.w;
    total += w;
  }
  part_out[group][t] = o;
  if (t == 0) part_total[group] = total;
  __syncthreads();
  if (group != 0) return;
  total = 0.0f;
  o = float4{0.0f, 0.0f, 0.0f, 0.0f};
  for (int g = 0; g < groups; ++g) {
    const float4 v = part_out[g][t];
    o.x += v.x, o.y += v.y, o.z += v.z, o.w += v.w;
    total += part_total[g];
  }
  const float inv = total > 0.0f ? 1.0f / total : 0.0f;
  T* dst = static_cast<T*>(a.out) + static_cast<size_t>(b) * a.out_stride + head * kHeadDim + 4 * t;
  dst[0] = FromFloat<T>(o.x * inv), dst[1] = FromFloat<T>(o.y * inv);
  dst[2] = FromFloat<T>(o.z * inv), dst[3] = FromFloat<T>(o.w * inv);
}

size_t SplitSmemBytes(const DecodeAttentionPlan& plan, int head_dim) {
  return sizeof(void*) * plan.chunk +
         sizeof(float) * std::max<size_t>(size_t(plan.heads_per_cta) * plan.chunk,
                                          size_t(kWarps) * plan.heads_per_cta * head_dim);
}

using SplitKernelFn = void (*)(DecodeParams);

template <typename T, int kHeadDim, int kHeads>
SplitKernelFn SplitKernelFor(bool prefetch_v) {
  return prefetch_v ? DecodeSplitKernel<T, kHeadDim, kHeads, true>
                    : DecodeSplitKernel<T, kHeadDim, kHeads, false>;
}

template <typename T, int kHeadDim>
SplitKernelFn SplitKernelFor(int heads_per_cta, bool prefetch_v) {
  switch (heads_per_cta) {
    case 1:
      return SplitKernelFor<T, kHeadDim, 1>(prefetch_v);
    case 2:
      return SplitKernelFor<T, kHeadDim, 2>(prefetch_v);
    case 4:
      return SplitKernelFor<T, kHeadDim, 4>(prefetch_v);
    default:
      return SplitKernelFor<T, kHeadDim, 8>(prefetch_v);
  }
}

// Calls fn(T{}, std::integral_constant<int, head_dim>{}) for the element type and head_dim.
template <typename Fn>
Status DispatchKv(const PagedKv& kv, const char* what, Fn&& fn) {
  return DispatchHalfType(kv.dtype, what, [&](auto tag) -> Status {
    switch (kv.head_dim) {
      case 64:
        return fn(tag, std::integral_constant<int, 64>{});
      case 128:
        return fn(tag, std::integral_constant<int, 128>{});
      default:
        return fn(tag, std::integral_constant<int, 256>{});
    }
  });
}

template <typename T, int kHeadDim>
Status Launch(const DecodeParams& p, const DecodeAttentionPlan& plan, int batch,
              cudaStream_t stream) {
  const dim3 grid(plan.splits, p.num_kv_heads * plan.head_subgroups, batch);
  SplitKernelFor<T, kHeadDim>(
      plan.heads_per_cta,
      plan.prefetch_v)<<<grid, kWarps * 32, SplitSmemBytes(plan, kHeadDim), stream>>>(p);
  SPC_RETURN_IF_ERROR(CheckLaunch("DecodeAttention"));
  if (plan.splits > 1) {
    constexpr int kRowThreads = kHeadDim / 4;
    const int threads = kRowThreads * std::min(plan.splits, kCombineThreads / kRowThreads);
    DecodeCombineKernel<T, kHeadDim>
        <<<dim3(p.a.num_q_heads, batch), threads, 0, stream>>>(p, plan.splits);
    SPC_RETURN_IF_ERROR(CheckLaunch("DecodeAttention combine"));
  }
  return Status::Ok();
}

}  // namespace

Result<DecodeAttentionPlan> PlanDecodeAttention(const PagedKv& kv, int batch, int num_q_heads,
                                                int max_len) {
  SPC_RETURN_IF_ERROR(kv.Validate("PlanDecodeAttention"));
  if (batch <= 0 || max_len < 0 || num_q_heads <= 0 || num_q_heads % kv.num_kv_heads != 0) {
    return InvalidArgument("PlanDecodeAttention: bad batch " + std::to_string(batch) +
                           ", max_len " + std::to_string(max_len) + " or " +
                           std::to_string(num_q_heads) + " query heads for " +
                           std::to_string(kv.num_kv_heads) + " KV heads");
  }
  int device = 0, sms = 0;
  SPC_CUDA(cudaGetDevice(&device));
  SPC_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));

  DecodeAttentionPlan plan;
  const int group = num_q_heads / kv.num_kv_heads;
  plan.heads_per_cta = 1;
  while (plan.heads_per_cta < std::min(group, 8)) plan.heads_per_cta *= 2;
  plan.head_subgroups = (group + plan.heads_per_cta - 1) / plan.heads_per_cta;
  // Enough CTAs for several per multiprocessor; each split at least kMinChunk keys so the
  // combine stays cheap, at most kMaxChunk so the scores fit in shared memory. A batch of 32
  // or more loses less to wave quantisation with eight per multiprocessor; smaller batches
  // read faster with four (measured: engine/cuda/README.md).
  const long ctas_per_split = long(batch) * kv.num_kv_heads * plan.head_subgroups;
  const long per_sm = batch >= 32 ? 8 : 4;
  const long want_splits = std::max<long>(1, (per_sm * sms + ctas_per_split - 1) / ctas_per_split);
  long chunk = (std::max(max_len, 1) + want_splits - 1) / want_splits;
  chunk = std::clamp<long>((chunk + kMinChunk - 1) / kMinChunk * kMinChunk, kMinChunk, kMaxChunk);
  plan.chunk = static_cast<int>(chunk);
  plan.splits = static_cast<int>(std::max<long>(1, (max_len + chunk - 1) / chunk));
  int prefetch_ctas_per_sm = 0;
  SPC_RETURN_IF_ERROR(DispatchKv(kv, "PlanDecodeAttention", [&](auto tag, auto dim) -> Status {
    SPC_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &prefetch_ctas_per_sm, SplitKernelFor<decltype(tag), dim.value>(plan.heads_per_cta, true),
        kWarps * 32, SplitSmemBytes(plan, dim.value)));
    return Status::Ok();
  }));
  plan.prefetch_v = ctas_per_split * plan.splits <= long(prefetch_ctas_per_sm) * sms;
  if (plan.splits > 1) {
    plan.workspace_bytes =
        sizeof(float) * size_t(batch) * num_q_heads * plan.splits * (kv.head_dim + 1);
  }
  if (plan.splits > 65535) return InvalidArgument("PlanDecodeAttention: max_len too long");
  return plan;
}

Status DecodeAttention(const DecodeAttentionArgs& args, const PagedKv& kv,
                       const DecodeAttentionPlan& plan, void* workspace, cudaStream_t stream) {
  SPC_RETURN_IF_ERROR(kv.Validate("DecodeAttention"));
  if (args.batch <= 0 || args.num_q_heads % kv.num_kv_heads != 0 || plan.chunk <= 0 ||
      args.seq_lens == nullptr || (args.indices != nullptr && args.index_counts == nullptr) ||
      (args.slot_rows != nullptr && (args.indices == nullptr || args.slot_indices == nullptr))) {
    return InvalidArgument("DecodeAttention: needs a batch, lengths or indices, and a plan");
  }
  if (plan.splits > 1 && workspace == nullptr) {
    return InvalidArgument("DecodeAttention: this plan needs a workspace");
  }
  DecodeParams p{args,
                 kv.block_table,
                 kv.max_blocks,
                 kv.num_kv_heads,
                 0,
                 args.num_q_heads / kv.num_kv_heads,
                 plan.head_subgroups,
                 plan.chunk,
                 nullptr,
                 nullptr};
  while ((1 << p.block_shift) < kv.block_tokens) ++p.block_shift;
  if (plan.splits > 1) {
    p.ws_out = static_cast<float*>(workspace);
    p.ws_lse = p.ws_out + size_t(args.batch) * args.num_q_heads * plan.splits * kv.head_dim;
  }
  return DispatchKv(kv, "DecodeAttention", [&](auto tag, auto dim) -> Status {
    return Launch<decltype(tag), dim.value>(p, plan, args.batch, stream);
  });
}

}  // namespace specontext::cuda
