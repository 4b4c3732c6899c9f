// The linear layer y[m,n] = x[m,k] · w[n,k]ᵀ (row-major, as weights are stored in Hugging Face
// checkpoints), bf16 or fp16 operands with fp32 accumulation: our GEMV for the few rows of a
// small decode batch, cuBLAS for everything larger.
#pragma once

#include <cublas_v2.h>

#include <memory>

#include "common/status.h"
#include "engine/dtype.h"

namespace specontext::cuda {

class Linear {
 public:
  static Result<std::unique_ptr<Linear>> Create(cudaStream_t stream);
  ~Linear();
  Linear(const Linear&) = delete;
  Linear& operator=(const Linear&) = delete;

  // dtype is kBF16 or kF16 for x, w and y alike; x is m rows of k, y m rows of n, contiguous.
  Status Forward(DType dtype, const void* x, const void* w, void* y, int m, int n, int k);
  // The same through cuBLAS whatever m is (benchmarks compare the two).
  Status Cublas(DType dtype, const void* x, const void* w, void* y, int m, int n, int k);

 private:
  Linear(cublasHandle_t handle, cudaStream_t stream) : handle_(handle), stream_(stream) {}
  cublasHandle_t handle_;
  cudaStream_t stream_;
};

}  // namespace specontext::cuda
