#include "engine/cuda/head_k_pool.h"

#include <string>

#include "engine/cuda/cuda_check.h"

namespace specontext::cuda {

Result<HeadKPool> HeadKPool::Create(int num_kv_heads, int head_dim, int block_tokens, DType dtype,
                                    int64_t capacity_positions, cudaStream_t stream) {
  if (num_kv_heads <= 0 || head_dim <= 0 || block_tokens <= 0 || capacity_positions <= 0) {
    return InvalidArgument("retrieval-head K cache: bad shape or capacity");
  }
  HeadKPool pool;
  pool.index_ = PrefixBlockIndex(block_tokens);
  pool.stream_ = stream;
  pool.block_bytes_ =
      static_cast<size_t>(num_kv_heads) * block_tokens * head_dim * DTypeSize(dtype);
  const int64_t blocks = (capacity_positions + block_tokens - 1) / block_tokens;
  auto storage = DeviceBuffer::Allocate(pool.block_bytes_ * blocks);
  if (!storage.ok()) {
    return storage.status().WithContext("retrieval-head K cache of " +
                                        std::to_string(capacity_positions) + " positions");
  }
  pool.storage_ = std::move(storage).value();
  pool.refs_.assign(blocks, 0);
  pool.cached_at_.assign(blocks, pool.cached_.end());
  pool.free_.reserve(blocks);
  // Handed out from the front, so a fresh pool fills its allocation in order.
  for (int64_t b = blocks - 1; b >= 0; --b) pool.free_.push_back(b);
  return pool;
}

int64_t HeadKPool::Take() {
  int64_t index = -1;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else if (!cached_.empty()) {
    index = cached_.front();
    cached_.pop_front();
    cached_at_[index] = cached_.end();
    index_.Erase(index);
  }
  if (index >= 0) refs_[index] = 1;
  return index;
}

void HeadKPool::Unref(int64_t index) {
  if (--refs_[index] > 0) return;
  if (index_.Holds(index)) {
    cached_at_[index] = cached_.insert(cached_.end(), index);
  } else {
    free_.push_back(index);
  }
}

Status HeadKPool::Unshare(Sequence& s) {
  const int64_t last = BlockIndex(s.blocks.back());
  if (refs_[last] == 1 && !index_.Holds(last)) return Status::Ok();
  const int64_t copy = Take();
  if (copy < 0) return ResourceExhausted("retrieval-head K cache: no block to copy a shared one");
  SPC_CUDA(
      cudaMemcpyAsync(Block(copy), Block(last), block_bytes_, cudaMemcpyDeviceToDevice, stream_));
  Unref(last);
  s.blocks.back() = Block(copy);
  return Status::Ok();
}

Status HeadKPool::Resize(uint64_t seq, int64_t length) {
  if (length < 0) return InvalidArgument("retrieval-head K cache: negative length");
  Sequence& s = sequences_[seq];
  const size_t want = static_cast<size_t>((length + block_tokens() - 1) / block_tokens());
  if (want > s.blocks.size() && want - s.blocks.size() > free_.size() + cached_.size()) {
    if (s.blocks.empty()) sequences_.erase(seq);
    return ResourceExhausted("retrieval-head K cache: no room for " + std::to_string(length) +
                             " positions of sequence " + std::to_string(seq) + " (" +
                             std::to_string(free_positions()) + " positions free)");
  }
  while (s.blocks.size() < want) s.blocks.push_back(Block(Take()));
  while (s.blocks.size() > want) {
    Unref(BlockIndex(s.blocks.back()));
    s.blocks.pop_back();
  }
  // Positions past `length` in the last block will be written again.
  if (length < s.length && length % block_tokens() != 0) SPC_RETURN_IF_ERROR(Unshare(s));
  s.length = length;
  return Status::Ok();
}

void HeadKPool::Release(uint64_t seq) {
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) return;
  for (void* block : it->second.blocks) Unref(BlockIndex(block));
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

int64_t HeadKPool::Adopt(uint64_t seq, std::span<const uint64_t> keys,
                         std::span<const int32_t> tokens) {
  if (Length(seq) > 0) return 0;
  Sequence& s = sequences_[seq];
  const size_t n = static_cast<size_t>(block_tokens());
  for (size_t b = 0; b < keys.size() && (b + 1) * n <= tokens.size(); ++b) {
    const int64_t index = index_.Find(keys[b], tokens.subspan(b * n, n));
    if (index < 0) break;
    if (refs_[index]++ == 0) {
      cached_.erase(cached_at_[index]);
      cached_at_[index] = cached_.end();
    }
    s.blocks.push_back(Block(index));
  }
  s.length = static_cast<int64_t>(s.blocks.size() * n);
  if (s.blocks.empty()) sequences_.erase(seq);
  return static_cast<int64_t>(s.blocks.size() * n);
}

bool HeadKPool::Publish(uint64_t seq, int64_t b, uint64_t key, std::span<const int32_t> tokens) {
  auto it = sequences_.find(seq);
  if (it == sequences_.end() || b < 0 || (b + 1) * block_tokens() > it->second.length) {
    return false;
  }
  return index_.Insert(key, tokens, BlockIndex(it->second.blocks[b]));
}

}  // namespace specontext::cuda
