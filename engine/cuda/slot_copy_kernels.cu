#include "engine/cuda/slot_copy_kernels.h"

#include <cuda_bf16.h>

#include <bit>

#include "engine/cuda/cuda_check.h"

namespace specontext::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kUnroll = 4;      // jobs in flight per lane group: PCIe reads wait microseconds
constexpr int kTotalCtas = 64;  // shared by the rows; leaves the SMs to the compute stream

struct Addressing {
  int block_shift;
  size_t half_block;  // elements of K (or V) in one block
};

template <int kHeadDim>
__global__ void SlotCopyKernel(SlotCopyArgs a, Addressing ad) {
  constexpr int kChunks = kHeadDim / 8;  // 16-byte pieces of one K (or V) row
  constexpr int kLanesPerJob = 2 * kChunks;
  constexpr int kJobsPerWarp = 32 / kLanesPerJob;
  const int row = blockIdx.y;
  const int2 range = a.ranges[row];
  const int lane = threadIdx.x & 31;
  const int sub = lane / kLanesPerJob, part = lane % kLanesPerJob;
  const size_t v_offset = part >= kChunks ? ad.half_block : 0;
  const int chunk = part % kChunks;
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int warps = (gridDim.x * blockDim.x) >> 5;
  const int mask = (1 << ad.block_shift) - 1;
  void* const* table = a.kv.block_table + static_cast<size_t>(row) * a.kv.max_blocks;
  const SlotCopyJob* jobs = a.jobs + range.x;
  auto element = [&](int pos, int head) {
    return v_offset + ((static_cast<size_t>(head) << ad.block_shift) + (pos & mask)) * kHeadDim +
           chunk * 8;
  };
  constexpr int kStep = kJobsPerWarp * kUnroll;
  for (int first = warp * kStep; first < range.y; first += warps * kStep) {
    uint4 data[kUnroll];
    uint4* dst[kUnroll];
    // Every load issues before any store, so a lane waits on PCIe once per kUnroll jobs.
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = first + u * kJobsPerWarp + sub;
      dst[u] = nullptr;
      if (j >= range.y) continue;
      const SlotCopyJob job = jobs[j];
      const auto* src = static_cast<const __nv_bfloat16*>(table[job.position >> ad.block_shift]);
      data[u] = *reinterpret_cast<const uint4*>(src + element(job.position, job.kv_head));
      const int slot_pos = (a.slot_block << ad.block_shift) + job.slot;
      auto* out = static_cast<__nv_bfloat16*>(table[slot_pos >> ad.block_shift]);
      dst[u] = reinterpret_cast<uint4*>(out + element(slot_pos, job.kv_head));
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (dst[u] != nullptr) *dst[u] = data[u];
    }
  }
}

}  // namespace

Status CopyToSlots(const SlotCopyArgs& a, cudaStream_t stream) {
  SPC_RETURN_IF_ERROR(a.kv.Validate("CopyToSlots"));
  if (a.rows <= 0 || a.jobs == nullptr || a.ranges == nullptr || a.slot_block <= 0 ||
      a.kv.dtype == DType::kF32) {
    return InvalidArgument("CopyToSlots: needs rows, jobs, ranges, a slot block and 16-bit KV");
  }
  const Addressing ad{
      .block_shift = std::countr_zero(static_cast<unsigned>(a.kv.block_tokens)),
      .half_block = static_cast<size_t>(a.kv.num_kv_heads) * a.kv.block_tokens * a.kv.head_dim};
  const dim3 grid((kTotalCtas + a.rows - 1) / a.rows, a.rows);
  switch (a.kv.head_dim) {
    case 64:
      SlotCopyKernel<64><<<grid, kThreads, 0, stream>>>(a, ad);
      break;
    case 128:
      SlotCopyKernel<128><<<grid, kThreads, 0, stream>>>(a, ad);
      break;
    default:
      return Unimplemented("CopyToSlots: head_dim 256");
  }
  SPC_CUDA(cudaGetLastError());
  return Status::Ok();
}

}  // namespace specontext::cuda
