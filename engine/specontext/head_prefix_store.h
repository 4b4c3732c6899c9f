// The CPU planner's store of retrieval-head K blocks for prompt prefixes, so that a sequence
// whose prefix the scheduler adopted from its prefix cache takes the K its first owner computed
// from the target's states instead of projecting it again with zero hidden inputs
// (engine/specontext/prefix_block_index.h says why the K of a full block depends on its prefix
// only). Each block also keeps the fused state of its last position: the hidden input of the
// position after it. Bounded; the least recently used block makes room.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <vector>

#include "engine/specontext/prefix_block_index.h"

namespace specontext {

// Positions per stored block.
inline constexpr int kHeadPrefixBlockTokens = 16;

class HeadPrefixStore {
 public:
  struct Block {
    std::span<const float> k;           // [kHeadPrefixBlockTokens][row_width], as Append takes
    std::span<const float> tail_state;  // [state_width]; empty when state_width is 0
  };

  // `row_width`: num_kv_heads · head_dim; `state_width`: the fused state's width, 0 for a head
  // without the hidden path. A capacity of 0 stores nothing. Memory grows with the blocks held.
  HeadPrefixStore(int64_t capacity_blocks, int row_width, int state_width);

  int64_t capacity() const { return capacity_; }
  int64_t size() const { return static_cast<int64_t>(lru_.size()); }

  // Stores the block whose chain key is `key` and own tokens are `tokens`, evicting the least
  // recently used one when full; a block already held is only marked used. False when nothing
  // is held under the key afterwards (capacity 0, another block's key).
  bool Put(uint64_t key, std::span<const int32_t> tokens, std::span<const float> k_rows,
           std::span<const float> tail_state);
  // The block, marked most recently used, or nullopt. Its spans stay valid until the next Put.
  std::optional<Block> Find(uint64_t key, std::span<const int32_t> tokens);

 private:
  void Touch(int64_t slot) { lru_.splice(lru_.begin(), lru_, where_[slot]); }

  int64_t capacity_;
  size_t row_floats_, state_floats_;  // per block
  PrefixBlockIndex index_{kHeadPrefixBlockTokens};
  std::vector<float> k_;                             // [slots][kHeadPrefixBlockTokens · row_width]
  std::vector<float> states_;                        // [slots][state_width]
  std::list<int64_t> lru_;                           // slots, most recently used first
  std::vector<std::list<int64_t>::iterator> where_;  // per slot, its place in lru_
};

}  // namespace specontext
