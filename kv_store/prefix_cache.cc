#include "kv_store/prefix_cache.h"

#include <algorithm>

#include "common/token_chain_hash.h"

namespace specontext {

uint64_t PrefixCache::ChainHash(uint64_t parent, std::span<const int32_t> tokens) {
  return TokenChainHash(parent, tokens);  // never 0, which marks "no parent"
}

const PrefixEntry* PrefixCache::Lookup(uint64_t parent, std::span<const int32_t> tokens) {
  auto it = entries_.find(ChainHash(parent, tokens));
  if (it == entries_.end()) return nullptr;
  const PrefixEntry& e = it->second.entry;
  if (e.parent != parent ||
      !std::equal(e.tokens.begin(), e.tokens.end(), tokens.begin(), tokens.end())) {
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return &e;
}

bool PrefixCache::Insert(PrefixEntry entry) {
  const uint64_t hash = entry.hash;
  if (entries_.contains(hash)) return false;
  if (auto parent = entries_.find(entry.parent); parent != entries_.end()) {
    ++parent->second.children;
  }
  lru_.push_front(hash);
  entries_.emplace(hash, Slot{std::move(entry), 0, lru_.begin()});
  return true;
}

std::optional<PrefixEntry> PrefixCache::EvictLru(
    const std::function<bool(const PrefixEntry&)>& pick) {
  for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
    auto slot = entries_.find(*it);
    if (slot->second.children > 0 || !pick(slot->second.entry)) continue;
    PrefixEntry entry = std::move(slot->second.entry);
    if (auto parent = entries_.find(entry.parent); parent != entries_.end()) {
      --parent->second.children;
    }
    lru_.erase(slot->second.lru);
    entries_.erase(slot);
    ++stats_.evictions;
    return entry;
  }
  return std::nullopt;
}

void PrefixCache::CountQuery(int64_t query_tokens, int64_t hit_tokens) {
  stats_.query_tokens += query_tokens;
  stats_.hit_tokens += hit_tokens;
}

void PrefixCache::ForEach(const std::function<void(const PrefixEntry&)>& visit) const {
  for (const auto& [hash, slot] : entries_) visit(slot.entry);
}

void PrefixCache::ForEachMutable(const std::function<void(PrefixEntry&)>& visit) {
  for (auto& [hash, slot] : entries_) visit(slot.entry);
}

PrefixStats PrefixCache::stats() const {
  PrefixStats s = stats_;
  s.entries = static_cast<int64_t>(entries_.size());
  return s;
}

}  // namespace specontext
