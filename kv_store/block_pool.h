// A fixed number of equal-size KV blocks on one tier, carved from one contiguous allocation
// (or one preallocated file for NVMe), with a free list, reference counts (prefix-cached blocks
// are shared) and exact byte and token accounting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv_store/nvme_file.h"
#include "kv_store/tier.h"
#include "kv_store/tier_memory.h"

namespace specontext {

struct PoolUsage {
  int64_t total_blocks = 0;
  int64_t used_blocks = 0;
  int64_t free_blocks = 0;
  size_t total_bytes = 0;
  size_t used_bytes = 0;
  int64_t tokens = 0;  // positions actually written into used blocks
};

class BlockPool {
 public:
  // `nvme_path` names the backing file for the NVMe tier and is ignored otherwise;
  // `emulated_gpu` backs a GPU pool with host memory (see TierMemory::Allocate).
  static Result<std::unique_ptr<BlockPool>> Create(Tier tier, size_t block_bytes, int block_tokens,
                                                   int32_t num_blocks,
                                                   const std::string& nvme_path = "",
                                                   bool emulated_gpu = false);

  Tier tier() const { return tier_; }
  size_t block_bytes() const { return block_bytes_; }
  int block_tokens() const { return block_tokens_; }
  int32_t total_blocks() const { return static_cast<int32_t>(refs_.size()); }
  int32_t free_blocks() const { return static_cast<int32_t>(free_.size()); }
  int32_t used_blocks() const { return total_blocks() - free_blocks(); }
  PoolUsage Usage() const;

  // A block with one reference and no tokens; ResourceExhausted when the pool is full.
  Result<int32_t> Allocate();
  void Retain(int32_t id);
  // Drops one reference; at zero the block returns to the free list.
  void Release(int32_t id);
  int32_t refcount(int32_t id) const { return Valid(id) ? refs_[id] : 0; }
  bool IsAllocated(int32_t id) const { return refcount(id) > 0; }
  void SetTokens(int32_t id, int tokens);
  int tokens(int32_t id) const { return Valid(id) ? tokens_[id] : 0; }

  // The block's bytes on a memory tier; nullptr on NVMe (use file()).
  std::byte* data(int32_t id) const {
    return memory_.data() == nullptr ? nullptr : memory_.data() + id * block_bytes_;
  }
  NvmeFile* file() const { return file_.get(); }
  // Blocks the CPU can copy with memcpy (host memory, pinned memory, an emulated GPU pool).
  bool host_addressable() const { return memory_.host_addressable(); }

  // Free list, reference counts and counters agree; no misuse was ever recorded.
  Status CheckIntegrity() const;

 private:
  BlockPool() = default;
  bool Valid(int32_t id) const { return id >= 0 && id < total_blocks(); }
  void RecordMisuse(const char* what, int32_t id);

  Tier tier_ = Tier::kHost;
  size_t block_bytes_ = 0;
  int block_tokens_ = 0;
  TierMemory memory_;
  std::unique_ptr<NvmeFile> file_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> tokens_;
  std::vector<int32_t> free_;
  int64_t used_tokens_ = 0;
  // Retain/Release of a free or unknown block: a caller bug, surfaced by CheckIntegrity
  // instead of crashing the daemon.
  std::string first_misuse_;
};

}  // namespace specontext
