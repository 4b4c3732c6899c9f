// The linear layer y[m,n] = x[m,k] · w[n,k]ᵀ for a handful of rows, as decode steps of small
// batches run it: every weight is read once, straight into tensor-core fragments, with the few
// activation rows served from L1; the cost hardly grows with m up to kGemvMaxRows. cuBLAS
// reaches 2.5-2.8 TB/s on these shapes and adds split-K reduction kernels.
#pragma once

#include <cuda_runtime_api.h>

#include "common/status.h"
#include "engine/dtype.h"

namespace specontext::cuda {

// The most rows SmallBatchGemv takes.
constexpr int kGemvMaxRows = 16;

// True when SmallBatchGemv takes this call: 1 <= m <= kGemvMaxRows, k a multiple of 8 and
// x and w 16-byte aligned.
bool GemvApplies(const void* x, const void* w, int m, int k);

// x: m rows of k, w: n rows of k, y: m rows of n, all contiguous, BF16 or F16; fp32
// accumulation. Launches on `stream`.
Status SmallBatchGemv(DType dtype, const void* x, const void* w, void* y, int m, int n, int k,
                      cudaStream_t stream);

}  // namespace specontext::cuda
