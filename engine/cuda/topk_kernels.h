// Greedy argmax and top-k over rows of logits on the GPU, so only k values and indices per row
// travel to the host instead of the whole vocabulary.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "engine/dtype.h"

namespace specontext::cuda {

constexpr int kMaxTopK = 1024;

// Device scratch TopK needs for this shape (0 when a row is small enough for one pass).
size_t TopKWorkspaceBytes(int rows, int vocab, int k);

// For each of `rows` rows of `vocab` logits (F32, BF16 or F16; rows `row_stride` elements
// apart): the k largest values (as float) and their indices, largest first, ties to the lower
// index. NaN ranks below every number. values and indices are device arrays [rows][k];
// 1 <= k <= min(vocab, kMaxTopK). k == 1 is the greedy argmax. A row is cut into chunks that
// many CTAs select from at once, and one CTA per row merges the chunks' candidates.
Status TopK(DType dtype, const void* logits, int rows, int vocab, int row_stride, int k,
            float* values, int32_t* indices, void* workspace, size_t workspace_bytes,
            cudaStream_t stream);

}  // namespace specontext::cuda
