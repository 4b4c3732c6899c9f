#include <cub/block/block_reduce.cuh>

#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/logits_summary_kernels.h"

namespace specontext::cuda {
namespace {

constexpr int kThreads = 512;

// One CTA per row: the maximum and the counts in one pass, the two sums in a second (the row
// is then in L2). Terms are float exponentials summed in double, as the host reference does.
__global__ void __launch_bounds__(kThreads)
    RowStatsKernel(const float* logits, int vocab, const float* temperatures, RowStats* stats) {
  using MaxReduce = cub::BlockReduce<float, kThreads>;
  using IntReduce = cub::BlockReduce<int2, kThreads>;
  using SumReduce = cub::BlockReduce<double2, kThreads>;
  __shared__ union {
    typename MaxReduce::TempStorage max;
    typename IntReduce::TempStorage ints;
    typename SumReduce::TempStorage sums;
  } storage;
  __shared__ float max_s;
  const float* row = logits + static_cast<size_t>(blockIdx.x) * vocab;

  float local_max = -INFINITY;
  int2 counts{0, 0};
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const float l = row[i];
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
  const float inv_t = 1.0f / temperatures[blockIdx.x];
  double2 sums{0.0, 0.0};
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const float l = row[i];
    if (!(l < INFINITY) || l == -INFINITY) continue;
    sums.x += expf(l - max_logit);
    sums.y += expf((l - max_logit) * inv_t);
  }
  const double2 total = SumReduce(storage.sums).Reduce(sums, [](double2 a, double2 b) {
    return double2{a.x + b.x, a.y + b.y};
  });
  if (threadIdx.x == 0) {
    stats[blockIdx.x] = RowStats{max_logit, total_counts.x, total_counts.y, 0, total.x, total.y};
  }
}

__global__ void GatherKernel(const float* logits, const int32_t* flat_index, int count,
                             float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) out[i] = logits[flat_index[i]];
}

}  // namespace

Status ComputeRowStats(const float* logits, int rows, int vocab, const float* temperatures,
                       RowStats* stats, cudaStream_t stream) {
  if (rows < 0 || vocab <= 0) return InvalidArgument("ComputeRowStats: bad shape");
  if (rows == 0) return Status::Ok();
  RowStatsKernel<<<rows, kThreads, 0, stream>>>(logits, vocab, temperatures, stats);
  return CheckLaunch("ComputeRowStats");
}

Status GatherLogits(const float* logits, const int32_t* flat_index, int count, float* out,
                    cudaStream_t stream) {
  if (count < 0) return InvalidArgument("GatherLogits: negative count");
  if (count == 0) return Status::Ok();
  GatherKernel<<<(count + 255) / 256, 256, 0, stream>>>(logits, flat_index, count, out);
  return CheckLaunch("GatherLogits");
}

}  // namespace specontext::cuda
