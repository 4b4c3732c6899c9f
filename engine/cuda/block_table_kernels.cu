#include "engine/cuda/block_table_kernels.h"

#include "engine/cuda/cuda_check.h"

namespace specontext::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void ApplyRunsKernel(const TableRun* runs, void* const* values) {
  const TableRun run = runs[blockIdx.x];
  for (uint32_t i = threadIdx.x; i < run.count; i += blockDim.x) {
    run.dst[i] = values[run.first + i];
  }
}

__global__ void AssembleKernel(AssembleTablesArgs a) {
  const int row = blockIdx.x, layer = blockIdx.y;
  const RowTable src = a.rows[row];
  SlotRange slots{};
  if (a.slots != nullptr) slots = a.slots[static_cast<size_t>(layer) * a.num_rows + row];
  void* const* from = src.table + static_cast<size_t>(layer) * src.layer_stride;
  void** out = a.out + (static_cast<size_t>(layer) * a.num_rows + row) * a.stride;
  for (int i = threadIdx.x; i < a.stride; i += blockDim.x) {
    void* entry = nullptr;
    if (i < src.used) {
      entry = from[i];
    } else if (a.slot_block > 0 && i >= a.slot_block && i - a.slot_block < slots.count) {
      entry = slots.blocks[i - a.slot_block];
    }
    out[i] = entry;
  }
}

}  // namespace

Status ApplyTableRuns(const TableRun* runs, int num_runs, void* const* values,
                      cudaStream_t stream) {
  if (num_runs == 0) return Status::Ok();
  if (num_runs < 0 || runs == nullptr || values == nullptr) {
    return InvalidArgument("ApplyTableRuns: needs runs and values");
  }
  ApplyRunsKernel<<<num_runs, kThreads, 0, stream>>>(runs, values);
  SPC_CUDA(cudaGetLastError());
  return Status::Ok();
}

Status AssembleTables(const AssembleTablesArgs& a, cudaStream_t stream) {
  if (a.num_rows == 0) return Status::Ok();
  if (a.rows == nullptr || a.out == nullptr || a.layers <= 0 || a.num_rows < 0 || a.stride <= 0 ||
      a.slot_block < 0 || a.slot_block > a.stride) {
    return InvalidArgument("AssembleTables: bad shape");
  }
  AssembleKernel<<<dim3(a.num_rows, a.layers), kThreads, 0, stream>>>(a);
  SPC_CUDA(cudaGetLastError());
  return Status::Ok();
}

}  // namespace specontext::cuda
