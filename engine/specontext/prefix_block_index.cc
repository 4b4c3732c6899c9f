#include "engine/specontext/prefix_block_index.h"

#include <algorithm>

#include "common/split_mix.h"

namespace specontext {

std::vector<uint64_t> PrefixBlockKeys(std::span<const int32_t> tokens, int block_tokens,
                                      std::vector<uint64_t> from) {
  const size_t blocks = tokens.size() / static_cast<size_t>(block_tokens);
  if (from.size() > blocks) from.resize(blocks);
  uint64_t key = from.empty() ? SplitMix64(static_cast<uint64_t>(block_tokens)) : from.back();
  for (size_t b = from.size(); b < blocks; ++b) {
    for (int i = 0; i < block_tokens; ++i) {
      key = SplitMix64(key ^ static_cast<uint32_t>(tokens[b * block_tokens + i]));
    }
    from.push_back(key);
  }
  return from;
}

int64_t PrefixBlockIndex::Find(uint64_t key, std::span<const int32_t> tokens) const {
  auto it = slots_.find(key);
  if (it == slots_.end() || !std::ranges::equal(it->second.tokens, tokens)) return -1;
  return it->second.slot;
}

bool PrefixBlockIndex::Insert(uint64_t key, std::span<const int32_t> tokens, int64_t slot) {
  if (slots_.contains(key)) return false;
  Erase(slot);
  slots_.emplace(key, Entry{slot, std::vector<int32_t>(tokens.begin(), tokens.end())});
  keys_[slot] = key;
  return true;
}

void PrefixBlockIndex::Erase(int64_t slot) {
  auto it = keys_.find(slot);
  if (it == keys_.end()) return;
  slots_.erase(it->second);
  keys_.erase(it);
}

}  // namespace specontext
