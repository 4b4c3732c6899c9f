// Elastic loading's last hop: K and V rows gathered on the host into a staging buffer arrive on
// the device in one copy, and this kernel writes each into its GPU slot. The slot blocks have
// the paged layout (paged_kv.h) and sit in the row's block table from entry `slot_block` on, so
// slot s of a KV head reads like position slot_block * block_tokens + s.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace specontext::cuda {

// One selected position to bring in: its KV head and the slot it takes.
struct SlotCopyJob {
  int32_t position = 0;  // in the sequence's blocks
  int32_t kv_head = 0;
  int32_t slot = 0;  // of that KV head
};

struct SlotScatterArgs {
  // Per copy: the slot's K row; its V row lies half_block_bytes further.
  std::byte* const* dst = nullptr;
  // Per copy: the K row then the V row, row_bytes each, packed.
  const std::byte* payload = nullptr;
  int count = 0;
  size_t row_bytes = 0;  // a multiple of 16
  size_t half_block_bytes = 0;
};

Status ScatterToSlots(const SlotScatterArgs& args, cudaStream_t stream);

}  // namespace specontext::cuda
