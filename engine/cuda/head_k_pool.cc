#include "engine/cuda/head_k_pool.h"

#include <string>

namespace specontext::cuda {

Result<HeadKPool> HeadKPool::Create(int num_kv_heads, int head_dim, int block_tokens, DType dtype,
                                    int64_t capacity_positions) {
  if (num_kv_heads <= 0 || head_dim <= 0 || block_tokens <= 0 || capacity_positions <= 0) {
    return InvalidArgument("retrieval-head K cache: bad shape or capacity");
  }
  HeadKPool pool;
  pool.block_tokens_ = block_tokens;
  pool.block_bytes_ =
      static_cast<size_t>(num_kv_heads) * block_tokens * head_dim * DTypeSize(dtype);
  const int64_t blocks = (capacity_positions + block_tokens - 1) / block_tokens;
  auto storage = DeviceBuffer::Allocate(pool.block_bytes_ * blocks);
  if (!storage.ok()) {
    return storage.status().WithContext("retrieval-head K cache of " +
                                        std::to_string(capacity_positions) + " positions");
  }
  pool.storage_ = std::move(storage).value();
  pool.free_.reserve(blocks);
  // Handed out from the front, so a fresh pool fills its allocation in order.
  for (int64_t b = blocks - 1; b >= 0; --b) {
    pool.free_.push_back(pool.storage_.as<std::byte>() + b * pool.block_bytes_);
  }
  return pool;
}

Status HeadKPool::Resize(uint64_t seq, int64_t length) {
  if (length < 0) return InvalidArgument("retrieval-head K cache: negative length");
  Sequence& s = sequences_[seq];
  const size_t want = static_cast<size_t>((length + block_tokens_ - 1) / block_tokens_);
  if (want > s.blocks.size() && want - s.blocks.size() > free_.size()) {
    if (s.blocks.empty()) sequences_.erase(seq);
    return ResourceExhausted("retrieval-head K cache: no room for " + std::to_string(length) +
                             " positions of sequence " + std::to_string(seq) + " (" +
                             std::to_string(free_positions()) + " positions free)");
  }
  while (s.blocks.size() < want) {
    s.blocks.push_back(free_.back());
    free_.pop_back();
  }
  while (s.blocks.size() > want) {
    free_.push_back(s.blocks.back());
    s.blocks.pop_back();
  }
  s.length = length;
  return Status::Ok();
}

void HeadKPool::Release(uint64_t seq) {
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) return;
  free_.insert(free_.end(), it->second.blocks.begin(), it->second.blocks.end());
  sequences_.erase(it);
}

int64_t HeadKPool::Length(uint64_t seq) const {
  auto it = sequences_.find(seq);
  return it == sequences_.end() ? 0 : it->second.length;
}

const std::vector<void*>& HeadKPool::Blocks(uint64_t seq) const {
  static const std::vector<void*> kNone;
  auto it = sequences_.find(seq);
  return it == sequences_.end() ? kNone : it->second.blocks;
}

}  // namespace specontext::cuda
