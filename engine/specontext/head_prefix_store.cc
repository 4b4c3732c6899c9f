#include "engine/specontext/head_prefix_store.h"

#include <algorithm>
#include <cassert>

namespace specontext {

HeadPrefixStore::HeadPrefixStore(int64_t capacity_blocks, int row_width, int state_width)
    : capacity_(std::max<int64_t>(capacity_blocks, 0)),
      row_floats_(static_cast<size_t>(kHeadPrefixBlockTokens) * row_width),
      state_floats_(static_cast<size_t>(state_width)) {}

bool HeadPrefixStore::Put(uint64_t key, std::span<const int32_t> tokens,
                          std::span<const float> k_rows, std::span<const float> tail_state) {
  assert(tokens.size() == kHeadPrefixBlockTokens && k_rows.size() == row_floats_ &&
         tail_state.size() == state_floats_);
  if (capacity_ == 0) return false;
  if (const int64_t held = index_.Find(key, tokens); held >= 0) {
    Touch(held);
    return true;
  }
  // A fresh slot while there is room, else the least recently used one.
  const bool fresh = size() < capacity_;
  const int64_t slot = fresh ? size() : lru_.back();
  if (!index_.Insert(key, tokens, slot)) return false;
  if (fresh) {
    k_.resize(k_.size() + row_floats_);
    states_.resize(states_.size() + state_floats_);
    where_.push_back(lru_.insert(lru_.begin(), slot));
  } else {
    Touch(slot);
  }
  std::ranges::copy(k_rows, k_.begin() + slot * row_floats_);
  std::ranges::copy(tail_state, states_.begin() + slot * state_floats_);
  return true;
}

std::optional<HeadPrefixStore::Block> HeadPrefixStore::Find(uint64_t key,
                                                            std::span<const int32_t> tokens) {
  const int64_t slot = index_.Find(key, tokens);
  if (slot < 0) return std::nullopt;
  Touch(slot);
  return Block{{k_.data() + slot * row_floats_, row_floats_},
               {states_.data() + slot * state_floats_, state_floats_}};
}

}  // namespace specontext
