#include "engine/cuda/slot_copy_kernels.h"

#include <algorithm>

#include "engine/cuda/cuda_check.h"

namespace specontext::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxCtas = 132;  // the staging is in HBM: one wave moves it in microseconds

__global__ void ScatterKernel(SlotScatterArgs a) {
  const int pieces = static_cast<int>(a.row_bytes / 16);  // 16-byte pieces of one row
  const int64_t total = int64_t{a.count} * 2 * pieces;
  const auto* payload = reinterpret_cast<const uint4*>(a.payload);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t copy = i / (2 * pieces);
    const int within = static_cast<int>(i % (2 * pieces));
    const bool value = within >= pieces;
    std::byte* row = a.dst[copy] + (value ? a.half_block_bytes : 0);
    reinterpret_cast<uint4*>(row)[within % pieces] = payload[i];
  }
}

}  // namespace

Status ScatterToSlots(const SlotScatterArgs& a, cudaStream_t stream) {
  if (a.count == 0) return Status::Ok();
  if (a.count < 0 || a.dst == nullptr || a.payload == nullptr || a.row_bytes == 0 ||
      a.row_bytes % 16 != 0) {
    return InvalidArgument("ScatterToSlots: needs copies, destinations and 16-byte rows");
  }
  const int64_t pieces = int64_t{a.count} * 2 * static_cast<int64_t>(a.row_bytes / 16);
  const int ctas =
      static_cast<int>(std::min<int64_t>(kMaxCtas, (pieces + kThreads - 1) / kThreads));
  ScatterKernel<<<ctas, kThreads, 0, stream>>>(a);
  SPC_CUDA(cudaGetLastError());
  return Status::Ok();
}

}  // namespace specontext::cuda
