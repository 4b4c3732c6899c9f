#include "engine/cuda/linear.h"

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/gemv_kernels.h"

namespace specontext::cuda {
namespace {}  // namespace

Result<std::unique_ptr<Linear>> Linear::Create(cudaStream_t stream) {
  cublasHandle_t handle = nullptr;
  SPC_CUBLAS(cublasCreate(&handle));
  std::unique_ptr<Linear> linear(new Linear(handle, stream));
  SPC_CUBLAS(cublasSetStream(handle, stream));
  return linear;
}

Linear::~Linear() { cublasDestroy(handle_); }

Status Linear::Forward(DType dtype, const void* x, const void* w, void* y, int m, int n, int k) {
  // Up to kGemvMaxRows rows the GEMV beats cuBLAS on every Llama-3.1-8B projection (H100,
  // tests/gpu/linear_bench; docs/performance.md).
  if (GemvApplies(x, w, m, k)) {
    return SmallBatchGemv(dtype, x, w, y, m, n, k, stream_);
  }
  return Cublas(dtype, x, w, y, m, n, k);
}

Status Linear::Cublas(DType dtype, const void* x, const void* w, void* y, int m, int n, int k) {
  cudaDataType_t type;
  if (dtype == DType::kBF16) {
    type = CUDA_R_16BF;
  } else if (dtype == DType::kF16) {
    type = CUDA_R_16F;
  } else {
    return InvalidArgument("Linear supports BF16 and F16, not " + std::string(DTypeName(dtype)));
  }
  const float alpha = 1.0f;
  const float beta = 0.0f;
  // Column-major view: yᵀ[n,m] = (wᵀ)ᵀ[n,k] · xᵀ[k,m]; no transposed copies are made.
  SPC_CUBLAS(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, w, type, k, x, type,
                          k, &beta, y, type, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return Status::Ok();
}

}  // namespace specontext::cuda
