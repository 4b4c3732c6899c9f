// The retrieval head's K cache on the GPU: one device allocation cut into blocks of
// [kv_heads][block_tokens][head_dim] (K after RoPE, no V), and a block list per sequence.
// Addressed by the kernels like a KV layer (PagedKv), since they read K only.
//
// Full blocks can be published under a prefix key (engine/specontext/prefix_block_index.h) and
// adopted by later sequences with the same prefix: a block is then shared, counted by
// references. A published block nobody holds stays cached until its room is needed, the longest
// unused first; a sequence cut back into a shared block gets its own copy first.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/cuda/device_buffer.h"
#include "engine/dtype.h"
#include "engine/specontext/prefix_block_index.h"

namespace specontext::cuda {

class HeadKPool {
 public:
  // Copies for shared blocks are queued on `stream`.
  static Result<HeadKPool> Create(int num_kv_heads, int head_dim, int block_tokens, DType dtype,
                                  int64_t capacity_positions, cudaStream_t stream);

  int block_tokens() const { return index_.block_tokens(); }
  // Positions a sequence can still grow by: free blocks and cached ones nobody holds.
  int64_t free_positions() const {
    return static_cast<int64_t>(free_.size() + cached_.size()) * block_tokens();
  }
  // Blocks for positions [0, length): grows (all or nothing: kResourceExhausted when the pool
  // is short) or gives back the blocks past it.
  Status Resize(uint64_t seq, int64_t length);
  void Release(uint64_t seq);
  int64_t Length(uint64_t seq) const;
  // Device pointers of the sequence's blocks, in position order; empty for an unknown one.
  const std::vector<void*>& Blocks(uint64_t seq) const;
  // Where a block sits in the pool, in [0, capacity_blocks()).
  int64_t BlockIndex(const void* block) const {
    return (static_cast<const std::byte*>(block) - storage_.as<std::byte>()) /
           static_cast<int64_t>(block_bytes_);
  }

  // Gives `seq`, which holds no positions, the published blocks of keys[0], keys[1], ... up to
  // the first one not cached; `tokens` holds at least their positions. Returns the positions
  // adopted.
  int64_t Adopt(uint64_t seq, std::span<const uint64_t> keys, std::span<const int32_t> tokens);
  // Publishes block b of `seq` (full, its K final) under `key`, `tokens` being its own. False
  // when another block holds the key already.
  bool Publish(uint64_t seq, int64_t b, uint64_t key, std::span<const int32_t> tokens);

 private:
  struct Sequence {
    int64_t length = 0;
    std::vector<void*> blocks;
  };

  void* Block(int64_t index) const { return storage_.as<std::byte>() + index * block_bytes_; }
  // A block with one reference, or -1: a free one, else the longest unused cached one.
  int64_t Take();
  void Unref(int64_t index);
  // A block of its own for the sequence's last kept block when it is shared or published.
  Status Unshare(Sequence& s);

  size_t block_bytes_ = 0;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer storage_;
  std::vector<int32_t> refs_;  // per block
  std::vector<int64_t> free_;  // unreferenced, unpublished
  std::list<int64_t> cached_;  // unreferenced, published; front = longest unused
  std::vector<std::list<int64_t>::iterator> cached_at_;  // per block: cached_.end() if not there
  PrefixBlockIndex index_{1};
  std::unordered_map<uint64_t, Sequence> sequences_;
};

}  // namespace specontext::cuda
