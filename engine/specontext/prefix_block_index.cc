#include "engine/specontext/prefix_block_index.h"

#include <algorithm>

#include "common/token_chain_hash.h"

namespace specontext {

std::vector<uint64_t> PrefixBlockKeys(std::span<const int32_t> tokens, int block_tokens,
                                      std::vector<uint64_t> from) {
  const size_t n = static_cast<size_t>(block_tokens), blocks = tokens.size() / n;
  if (from.size() > blocks) from.resize(blocks);
  for (size_t b = from.size(); b < blocks; ++b) {
    from.push_back(TokenChainHash(b == 0 ? 0 : from.back(), tokens.subspan(b * n, n)));
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
