#include <algorithm>
#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>

#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/topk_kernels.h"

namespace specontext::cuda {
namespace {

constexpr int kThreads = 512;
// A chunk holds at least this many logits (and at least k); a row at most kMaxChunks chunks and
// kMaxCandidates candidates for the merge.
constexpr int kMinChunk = 2048;
constexpr int kMaxChunks = 64;
constexpr int kMaxCandidates = 16384;

// Order-preserving map of a float to an unsigned key (larger float, larger key); NaN -> 0.
__device__ __forceinline__ uint32_t SortKey(float v) {
  if (isnan(v)) return 0;
  const uint32_t bits = __float_as_uint(v);
  return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

// What one CTA selects from: n values, element i with token id ids[i] (a merge of chunk
// candidates) or base + i (a chunk of the row). Ties go to the lower position, which is the
// lower id in both cases: chunks are in id order and each chunk's candidates are sorted.
template <typename T>
struct Segment {
  const T* values;
  const int32_t* ids;
  int n;
  int base;
  __device__ float value(int i) const { return ToFloat(values[i]); }
  __device__ int32_t id(int i) const { return ids != nullptr ? ids[i] : base + i; }
};

// The largest key, lowest position on ties; each thread's strided scan meets its lowest
// position first.
template <typename T>
__device__ void SelectMax(const Segment<T>& s, float* value_out, int32_t* id_out) {
  __shared__ uint32_t best_key[kThreads / 32];
  __shared__ int best_pos[kThreads / 32];
  uint32_t key = 0;
  int pos = s.n;
  for (int i = threadIdx.x; i < s.n; i += blockDim.x) {
    const uint32_t k = SortKey(s.value(i));
    if (pos == s.n || k > key) key = k, pos = i;
  }
  auto better = [](uint32_t ka, int ia, uint32_t kb, int ib) {
    return ka > kb || (ka == kb && ia < ib);
  };
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const uint32_t k = __shfl_xor_sync(0xffffffffu, key, offset);
    const int i = __shfl_xor_sync(0xffffffffu, pos, offset);
    if (better(k, i, key, pos)) key = k, pos = i;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) best_key[warp] = key, best_pos[warp] = pos;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w) {
      if (better(best_key[w], best_pos[w], key, pos)) key = best_key[w], pos = best_pos[w];
    }
    *value_out = pos < s.n ? s.value(pos) : NAN;
    *id_out = pos < s.n ? s.id(pos) : -1;
  }
}

// The k largest: a radix select (four 8-bit passes) finds the k-th largest key, a block scan in
// position order collects every larger key and the lowest-positioned ties, and a block radix
// sort orders them. With fewer than k values the tail is NaN with id -1.
template <typename T>
__device__ void SelectTopK(const Segment<T>& s, int k, float* values_out, int32_t* ids_out) {
  using Scan = cub::BlockScan<int, kThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ int hist[256];
  __shared__ uint32_t prefix_s;
  __shared__ int remaining_s;
  __shared__ uint32_t cand_key[kMaxTopK];
  __shared__ int cand_pos[kMaxTopK];

  const int take = min(k, s.n);
  if (threadIdx.x == 0) prefix_s = 0, remaining_s = take;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    const uint32_t prefix = prefix_s;
    const uint32_t high_mask = shift == 24 ? 0u : ~0u << (shift + 8);
    // Logits crowd into a few digits (the first pass sees mostly one exponent), so lanes with
    // the same digit add once per warp instead of contending on one shared counter.
    for (int base = 0; base < s.n; base += blockDim.x) {
      const int i = base + threadIdx.x;
      const uint32_t key = i < s.n ? SortKey(s.value(i)) : 0;
      const int digit =
          i < s.n && (key & high_mask) == prefix ? static_cast<int>((key >> shift) & 0xff) : -1;
      const unsigned peers = __match_any_sync(0xffffffffu, digit);
      if (digit >= 0 && threadIdx.x % 32 == __ffs(peers) - 1) {
        atomicAdd(&hist[digit], __popc(peers));
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      // The digit holding the remaining-th largest key among those matching the prefix.
      int remaining = remaining_s, digit = 255;
      while (hist[digit] < remaining) remaining -= hist[digit--];
      prefix_s = prefix | (uint32_t(digit) << shift);
      remaining_s = remaining;
    }
    __syncthreads();
  }
  const uint32_t threshold = prefix_s;
  const int greater_total = take - remaining_s;  // keys above the threshold, all taken
  const int ties_wanted = remaining_s;           // the lowest-positioned ties fill the rest

  int greater_seen = 0, ties_seen = 0;
  for (int chunk = 0; chunk < s.n; chunk += blockDim.x) {
    const int i = chunk + threadIdx.x;
    const uint32_t key = i < s.n ? SortKey(s.value(i)) : 0;
    const bool greater = i < s.n && key > threshold;
    const bool tie = i < s.n && key == threshold;
    // Both counts in one scan: at most blockDim per chunk, so 16 bits each suffice.
    int packed = (greater ? 1 : 0) | (tie ? 1 << 16 : 0), total;
    Scan(scan_storage).ExclusiveSum(packed, packed, total);
    if (greater) {
      const int slot = greater_seen + (packed & 0xffff);
      cand_key[slot] = key, cand_pos[slot] = i;
    }
    if (tie) {
      const int rank = ties_seen + (packed >> 16);
      if (rank < ties_wanted)
        cand_key[greater_total + rank] = key, cand_pos[greater_total + rank] = i;
    }
    greater_seen += total & 0xffff;
    ties_seen += total >> 16;
    __syncthreads();  // scan_storage is reused by the next chunk
  }
  __syncthreads();
  // Order the candidates, larger key first and lower position on ties, by one block radix sort
  // of a 64-bit composite (a rank count per candidate costs k² reads of shared memory).
  constexpr int kItems = kMaxTopK / kThreads;
  using Sort = cub::BlockRadixSort<uint64_t, kThreads, kItems>;
  __shared__ typename Sort::TempStorage sort_storage;
  uint64_t items[kItems];
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const int c = threadIdx.x * kItems + j;
    items[j] = c < take ? (uint64_t{cand_key[c]} << 32) | (0xffffffffu - uint32_t(cand_pos[c])) : 0;
  }
  Sort(sort_storage).SortDescending(items);
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const int rank = threadIdx.x * kItems + j;
    if (rank >= k) continue;
    if (rank >= take) {
      values_out[rank] = NAN, ids_out[rank] = -1;
      continue;
    }
    const int pos = static_cast<int>(0xffffffffu - static_cast<uint32_t>(items[j]));
    values_out[rank] = s.value(pos);
    ids_out[rank] = s.id(pos);
  }
}

template <typename T>
__device__ void Select(const Segment<T>& s, int k, float* values_out, int32_t* ids_out) {
  if (k == 1) {
    SelectMax(s, values_out, ids_out);
  } else {
    SelectTopK(s, k, values_out, ids_out);
  }
}

// Grid (chunks, rows): chunk c of row r selects into out[r][c][k].
template <typename T>
__global__ void __launch_bounds__(kThreads)
    ChunkKernel(const T* logits, int vocab, int row_stride, int chunk_len, int k, float* values,
                int32_t* ids) {
  const int chunk = blockIdx.x, row = blockIdx.y, chunks = gridDim.x;
  const int begin = chunk * chunk_len;
  const Segment<T> s{logits + static_cast<size_t>(row) * row_stride + begin, nullptr,
                     min(chunk_len, vocab - begin), begin};
  const size_t out = (static_cast<size_t>(row) * chunks + chunk) * k;
  Select(s, k, values + out, ids + out);
}

// One CTA per row merges its chunks' chunks·k candidates.
__global__ void __launch_bounds__(kThreads)
    MergeKernel(const float* cand_values, const int32_t* cand_ids, int candidates, int k,
                float* values, int32_t* ids) {
  const size_t in = static_cast<size_t>(blockIdx.x) * candidates;
  const Segment<float> s{cand_values + in, cand_ids + in, candidates, 0};
  Select(s, k, values + static_cast<size_t>(blockIdx.x) * k,
         ids + static_cast<size_t>(blockIdx.x) * k);
}

int ChunksFor(int vocab, int k) {
  return std::max(1, std::min({kMaxChunks, vocab / std::max(k, kMinChunk), kMaxCandidates / k}));
}

template <typename T>
Status Launch(const void* logits, int rows, int vocab, int row_stride, int k, float* values,
              int32_t* indices, void* workspace, cudaStream_t stream) {
  const T* l = static_cast<const T*>(logits);
  const int chunks = ChunksFor(vocab, k);
  if (chunks == 1) {
    ChunkKernel<T>
        <<<dim3(1, rows), kThreads, 0, stream>>>(l, vocab, row_stride, vocab, k, values, indices);
    return CheckLaunch("TopK");
  }
  const int chunk_len = (vocab + chunks - 1) / chunks;
  auto* cand_values = static_cast<float*>(workspace);
  auto* cand_ids = reinterpret_cast<int32_t*>(cand_values + static_cast<size_t>(rows) * chunks * k);
  ChunkKernel<T><<<dim3(chunks, rows), kThreads, 0, stream>>>(l, vocab, row_stride, chunk_len, k,
                                                              cand_values, cand_ids);
  SPC_RETURN_IF_ERROR(CheckLaunch("TopK chunks"));
  MergeKernel<<<rows, kThreads, 0, stream>>>(cand_values, cand_ids, chunks * k, k, values, indices);
  return CheckLaunch("TopK merge");
}

}  // namespace

size_t TopKWorkspaceBytes(int rows, int vocab, int k) {
  if (rows <= 0 || vocab <= 0 || k < 1) return 0;
  const int chunks = ChunksFor(vocab, k);
  return chunks == 1 ? 0 : static_cast<size_t>(rows) * chunks * k * 8;
}

Status TopK(DType dtype, const void* logits, int rows, int vocab, int row_stride, int k,
            float* values, int32_t* indices, void* workspace, size_t workspace_bytes,
            cudaStream_t stream) {
  if (rows < 0 || vocab <= 0 || row_stride < vocab || k < 1 || k > vocab || k > kMaxTopK) {
    return InvalidArgument("TopK: bad shape rows " + std::to_string(rows) + ", vocab " +
                           std::to_string(vocab) + ", k " + std::to_string(k));
  }
  if (workspace_bytes < TopKWorkspaceBytes(rows, vocab, k)) {
    return InvalidArgument("TopK: workspace of " + std::to_string(workspace_bytes) +
                           " bytes, needs " + std::to_string(TopKWorkspaceBytes(rows, vocab, k)));
  }
  if (rows == 0) return Status::Ok();
  if (dtype == DType::kF32) {
    return Launch<float>(logits, rows, vocab, row_stride, k, values, indices, workspace, stream);
  }
  return DispatchHalfType(dtype, "TopK", [&](auto tag) {
    return Launch<decltype(tag)>(logits, rows, vocab, row_stride, k, values, indices, workspace,
                                 stream);
  });
}

}  // namespace specontext::cuda
