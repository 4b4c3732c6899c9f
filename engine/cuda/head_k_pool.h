// The retrieval head's K cache on the GPU: one device allocation cut into blocks of
// [kv_heads][block_tokens][head_dim] (K after RoPE, no V), and a block list per sequence.
// Addressed by the kernels like a KV layer (PagedKv), since they read K only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/cuda/device_buffer.h"
#include "engine/dtype.h"

namespace specontext::cuda {

class HeadKPool {
 public:
  static Result<HeadKPool> Create(int num_kv_heads, int head_dim, int block_tokens, DType dtype,
                                  int64_t capacity_positions);

  int block_tokens() const { return block_tokens_; }
  int64_t free_positions() const { return static_cast<int64_t>(free_.size()) * block_tokens_; }
  // Blocks for positions [0, length): grows (all or nothing: kResourceExhausted when the pool
  // is short) or gives back the blocks past it.
  Status Resize(uint64_t seq, int64_t length);
  void Release(uint64_t seq);
  int64_t Length(uint64_t seq) const;
  // Device pointers of the sequence's blocks, in position order; empty for an unknown one.
  const std::vector<void*>& Blocks(uint64_t seq) const;

 private:
  struct Sequence {
    int64_t length = 0;
    std::vector<void*> blocks;
  };

  int block_tokens_ = 0;
  size_t block_bytes_ = 0;
  DeviceBuffer storage_;
  std::vector<void*> free_;
  std::unordered_map<uint64_t, Sequence> sequences_;
};

}  // namespace specontext::cuda
