// The device half of a LogitsSummary (engine/batch.h): per-row statistics of fp32 logits and a
// gather of chosen logits; the top tokens come from TopK (topk_kernels.h). CPU reference:
// SummarizeLogits (engine/sampler/logits_summary.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace specontext::cuda {

struct RowStats {
  float max_logit;     // over finite entries; −inf when there are none
  int32_t non_finite;  // NaN or +inf entries
  int32_t neg_inf;     // −inf entries
  int32_t unused;
  double sum;         // Σ exp(l − max_logit) over finite entries
  double sum_scaled;  // Σ exp((l − max_logit) / temperature)
};

// Device scratch ComputeRowStats needs for this shape.
size_t RowStatsWorkspaceBytes(int rows, int vocab);

// One row per `vocab` contiguous floats; temperatures[row] > 0. Chunks of a row are reduced by
// separate CTAs, each relative to its own maximum, and merged per row.
Status ComputeRowStats(const float* logits, int rows, int vocab, const float* temperatures,
                       RowStats* stats, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream);

// out[i] = logits[flat_index[i]] for i < count.
Status GatherLogits(const float* logits, const int32_t* flat_index, int count, float* out,
                    cudaStream_t stream);

}  // namespace specontext::cuda
