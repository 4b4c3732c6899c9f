// Elastic loading's copy: newly selected KV positions of an offloaded layer, read from its host
// blocks (mapped pinned memory) and written into the layer's GPU slot blocks, on a copy stream
// while earlier layers compute. Slot blocks have the paged layout (paged_kv.h) and sit in the
// same block-table row as the sequence's own blocks, from entry `slot_block` on, so slot s of a
// KV head is addressed like position slot_block * block_tokens + s.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"
#include "engine/cuda/paged_kv.h"

namespace specontext::cuda {

struct SlotCopyJob {
  int32_t position = 0;  // source position in the sequence's blocks
  int32_t kv_head = 0;
  int32_t slot = 0;  // destination slot of that KV head
};

struct SlotCopyArgs {
  PagedKv kv;          // the layer's block tables, one row per decode row
  int rows = 0;        // decode rows (blockIdx.y)
  int slot_block = 0;  // first block-table entry of the slot blocks
  const SlotCopyJob* jobs = nullptr;
  const int2* ranges = nullptr;  // per row: {first job, job count} for this layer
};

// Copies K and V of every job; rows with a zero count copy nothing. Graph-capturable: the grid
// depends only on `rows`.
Status CopyToSlots(const SlotCopyArgs& args, cudaStream_t stream);

}  // namespace specontext::cuda
