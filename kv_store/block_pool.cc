#include "kv_store/block_pool.h"

#include <spdlog/spdlog.h>

namespace specontext {

Result<std::unique_ptr<BlockPool>> BlockPool::Create(Tier tier, size_t block_bytes,
                                                     int block_tokens, int32_t num_blocks,
                                                     const std::string& nvme_path,
                                                     bool emulated_gpu) {
  if (block_bytes == 0 || block_tokens <= 0 || num_blocks < 0) {
    return InvalidArgument("block pool for the " + std::string(TierName(tier)) +
                           " tier needs positive block size and a non-negative count");
  }
  std::unique_ptr<BlockPool> pool(new BlockPool());
  pool->tier_ = tier;
  pool->block_bytes_ = block_bytes;
  pool->block_tokens_ = block_tokens;
  if (num_blocks > 0) {
    if (tier == Tier::kNvme) {
      SPC_ASSIGN_OR_RETURN(pool->file_, NvmeFile::Create(nvme_path, block_bytes, num_blocks));
    } else {
      SPC_ASSIGN_OR_RETURN(pool->memory_,
                           TierMemory::Allocate(tier, block_bytes * num_blocks, emulated_gpu));
    }
  }
  pool->refs_.assign(num_blocks, 0);
  pool->tokens_.assign(num_blocks, 0);
  pool->free_.reserve(num_blocks);
  // Popped from the back, so blocks are handed out in ascending order.
  for (int32_t id = num_blocks - 1; id >= 0; --id) pool->free_.push_back(id);
  return pool;
}

PoolUsage BlockPool::Usage() const {
  PoolUsage usage;
  usage.total_blocks = total_blocks();
  usage.used_blocks = used_blocks();
  usage.free_blocks = free_blocks();
  usage.total_bytes = block_bytes_ * total_blocks();
  usage.used_bytes = block_bytes_ * used_blocks();
  usage.tokens = used_tokens_;
  return usage;
}

Result<int32_t> BlockPool::Allocate() {
  if (free_.empty()) {
    return ResourceExhausted("the " + std::string(TierName(tier_)) + " KV pool is full (" +
                             std::to_string(total_blocks()) + " blocks)");
  }
  const int32_t id = free_.back();
  free_.pop_back();
  refs_[id] = 1;
  tokens_[id] = 0;
  return id;
}

void BlockPool::Retain(int32_t id) {
  if (!IsAllocated(id)) return RecordMisuse("retain", id);
  ++refs_[id];
}

void BlockPool::Release(int32_t id) {
  if (!IsAllocated(id)) return RecordMisuse("release", id);
  if (--refs_[id] == 0) {
    used_tokens_ -= tokens_[id];
    tokens_[id] = 0;
    free_.push_back(id);
  }
}

void BlockPool::SetTokens(int32_t id, int tokens) {
  if (!IsAllocated(id) || tokens < 0 || tokens > block_tokens_) {
    return RecordMisuse("set tokens of", id);
  }
  used_tokens_ += tokens - tokens_[id];
  tokens_[id] = tokens;
}

void BlockPool::RecordMisuse(const char* what, int32_t id) {
  spdlog::error("kv_store: {} of unallocated {} block {}", what, TierName(tier_), id);
  if (first_misuse_.empty()) {
    first_misuse_ = std::string(what) + " of unallocated block " + std::to_string(id);
  }
}

Status BlockPool::CheckIntegrity() const {
  const std::string where = std::string(TierName(tier_)) + " pool: ";
  if (!first_misuse_.empty()) return Internal(where + first_misuse_);
  std::vector<bool> on_free_list(refs_.size(), false);
  for (int32_t id : free_) {
    if (!Valid(id) || on_free_list[id]) {
      return Internal(where + "free list holds block " + std::to_string(id) + " twice or invalid");
    }
    on_free_list[id] = true;
  }
  int64_t tokens = 0;
  for (int32_t id = 0; id < total_blocks(); ++id) {
    if (on_free_list[id] != (refs_[id] == 0) || refs_[id] < 0) {
      return Internal(where + "block " + std::to_string(id) + " has " + std::to_string(refs_[id]) +
                      " references but is " + (on_free_list[id] ? "" : "not ") +
                      "on the free list");
    }
    tokens += tokens_[id];
  }
  if (tokens != used_tokens_) {
    return Internal(where + "token count " + std::to_string(used_tokens_) + " but blocks hold " +
                    std::to_string(tokens));
  }
  return Status::Ok();
}

}  // namespace specontext
