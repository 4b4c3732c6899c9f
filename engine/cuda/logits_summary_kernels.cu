#include <algorithm>
#include <cub/block/block_reduce.cuh>

#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/logits_summary_kernels.h"

namespace specontext::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMinChunk = 4096;
constexpr int kMaxChunks = 64;

int ChunksFor(int vocab) { return std::clamp(vocab / kMinChunk, 1, kMaxChunks); }

// Grid (chunks, rows): the chunk's maximum and counts in one pass, then its two sums relative
// to that maximum (the chunk is in L2 by then). Float exponentials, summed in double.
__global__ void __launch_bounds__(kThreads)
    ChunkStatsKernel(const float* logits, int vocab, int chunk_len, const float* temperatures,
                     RowStats* partial) {
  using MaxReduce = cub::BlockReduce<float, kThreads>;
  using IntReduce = cub::BlockReduce<int2, kThreads>;
  using SumReduce = cub::BlockReduce<double2, kThreads>;
  __shared__ union {
    typename MaxReduce::TempStorage max;
    typename IntReduce::TempStorage ints;
    typename SumReduce::TempStorage sums;
  } storage;
  __shared__ float max_s;
  const int chunk = blockIdx.x, row = blockIdx.y;
  const int begin = chunk * chunk_len, end = min(vocab, begin + chunk_len);
  const float* r = logits + static_cast<size_t>(row) * vocab;

  float local_max = -INFINITY;
  int2 counts{0, 0};
  for (int i = begin + threadIdx.x; i < end; i += kThreads) {
    const float l = r[i];
    if (!(l < INFINITY)) {
      ++counts.x;
    } else if (l == -INFINITY) {
      ++counts.y;
    } else {
      local_max = fmaxf(local_max, l);
    }
  }
  const float block_max =
      MaxReduce(storage.max).Reduce(local_max, [](float a, float b) { return fmaxf(a, b); });
  if (threadIdx.x == 0) max_s = block_max;
  __syncthreads();
  const int2 total_counts = IntReduce(storage.ints).Reduce(counts, [](int2 a, int2 b) {
    return int2{a.x + b.x, a.y + b.y};
  });
  __syncthreads();

  const float max_logit = max_s;
  const float inv_t = 1.0f / temperatures[row];
  double2 sums{0.0, 0.0};
  for (int i = begin + threadIdx.x; i < end; i += kThreads) {
    const float l = r[i];
    if (!(l < INFINITY) || l == -INFINITY) continue;
    sums.x += expf(l - max_logit);
    sums.y += expf((l - max_logit) * inv_t);
  }
  const double2 total = SumReduce(storage.sums).Reduce(sums, [](double2 a, double2 b) {
    return double2{a.x + b.x, a.y + b.y};
  });
  if (threadIdx.x == 0) {
    partial[static_cast<size_t>(row) * gridDim.x + chunk] =
        RowStats{max_logit, total_counts.x, total_counts.y, 0, total.x, total.y};
  }
}

// One warp per row rescales each chunk's sums to the row's maximum.
__global__ void MergeStatsKernel(const RowStats* partial, int chunks, const float* temperatures,
                                 RowStats* stats) {
  const int row = blockIdx.x, lane = threadIdx.x;
  const RowStats* p = partial + static_cast<size_t>(row) * chunks;
  float max_logit = -INFINITY;
  for (int c = lane; c < chunks; c += 32) max_logit = fmaxf(max_logit, p[c].max_logit);
  max_logit = WarpMax(max_logit);
  const double inv_t = 1.0 / temperatures[row];
  double sum = 0.0, sum_scaled = 0.0;
  int non_finite = 0, neg_inf = 0;
  for (int c = lane; c < chunks; c += 32) {
    non_finite += p[c].non_finite;
    neg_inf += p[c].neg_inf;
    if (p[c].max_logit == -INFINITY) continue;  // nothing finite in the chunk
    const double shift = static_cast<double>(p[c].max_logit) - max_logit;
    sum += p[c].sum * exp(shift);
    sum_scaled += p[c].sum_scaled * exp(shift * inv_t);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    sum_scaled += __shfl_xor_sync(0xffffffffu, sum_scaled, offset);
    non_finite += __shfl_xor_sync(0xffffffffu, non_finite, offset);
    neg_inf += __shfl_xor_sync(0xffffffffu, neg_inf, offset);
  }
  if (lane == 0) stats[row] = RowStats{max_logit, non_finite, neg_inf, 0, sum, sum_scaled};
}

__global__ void GatherKernel(const float* logits, const int32_t* flat_index, int count,
                             float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) out[i] = logits[flat_index[i]];
}

}  // namespace

size_t RowStatsWorkspaceBytes(int rows, int vocab) {
  if (rows <= 0 || vocab <= 0) return 0;
  return static_cast<size_t>(rows) * ChunksFor(vocab) * sizeof(RowStats);
}

Status ComputeRowStats(const float* logits, int rows, int vocab, const float* temperatures,
                       RowStats* stats, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream) {
  if (rows < 0 || vocab <= 0) return InvalidArgument("ComputeRowStats: bad shape");
  if (workspace_bytes < RowStatsWorkspaceBytes(rows, vocab)) {
    return InvalidArgument("ComputeRowStats: workspace too small");
  }
  if (rows == 0) return Status::Ok();
  const int chunks = ChunksFor(vocab);
  const int chunk_len = (vocab + chunks - 1) / chunks;
  auto* partial = static_cast<RowStats*>(workspace);
  ChunkStatsKernel<<<dim3(chunks, rows), kThreads, 0, stream>>>(logits, vocab, chunk_len,
                                                                temperatures, partial);
  SPC_RETURN_IF_ERROR(CheckLaunch("ComputeRowStats chunks"));
  MergeStatsKernel<<<rows, 32, 0, stream>>>(partial, chunks, temperatures, stats);
  return CheckLaunch("ComputeRowStats merge");
}

Status GatherLogits(const float* logits, const int32_t* flat_index, int count, float* out,
                    cudaStream_t stream) {
  if (count < 0) return InvalidArgument("GatherLogits: negative count");
  if (count == 0) return Status::Ok();
  GatherKernel<<<(count + 255) / 256, 256, 0, stream>>>(logits, flat_index, count, out);
  return CheckLaunch("GatherLogits");
}

}  // namespace specontext::cuda
