// Which blocks hold one sequence's KV: one table per layer, each on a single tier, so the
// layers of one request can be placed independently (the memory manager demotes the last
// layers first).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "kv_store/copy_engine.h"
#include "kv_store/tier.h"

namespace specontext {

struct BlockRef {
  Tier tier = Tier::kHost;
  int32_t id = -1;
  bool operator==(const BlockRef&) const = default;
};

// A layer being copied to another tier: the old blocks stay authoritative until the copy
// completes, then the table switches over and the old blocks are released.
struct PendingMove {
  Tier to = Tier::kHost;
  std::vector<int32_t> blocks;
  CopyTicket ticket;
};

struct LayerTable {
  Tier tier = Tier::kGpu;
  std::vector<int32_t> blocks;  // blocks[i] holds positions [i*block_tokens, (i+1)*block_tokens)
  std::optional<PendingMove> pending;
  // GPU blocks lent for elastic loading's slots while the layer lives off the GPU
  // (KvStore::LendSlots), and the lease naming them.
  std::vector<int32_t> slots;
  uint64_t slot_lease = 0;
};

// A host copy of an NVMe block, made so a step can read and write it; written back when the
// step ends.
struct StagedBlock {
  int layer = 0;
  int32_t index = 0;  // position in the layer's table
  int32_t host_id = -1;
};

struct SequenceTable {
  int64_t length = 0;  // positions allocated and accounted
  // Changes whenever a block pointer a step was given changes (StepTables, KvStore::BeginStep).
  uint64_t version = 0;
  std::vector<LayerTable> layers;
  // Leading full blocks that have a prefix-cache entry (adopted on a hit or registered since),
  // and the chained hash of the last of them; such blocks are never written again.
  int32_t cached_blocks = 0;
  uint64_t chain_hash = 0;
  // Set between BeginStep and EndStep.
  bool in_step = false;
  int64_t step_start = 0;
  int64_t step_end = 0;
  std::vector<StagedBlock> staged;
};

}  // namespace specontext
