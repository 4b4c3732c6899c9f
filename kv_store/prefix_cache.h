// Full KV blocks indexed by the chained hash of their tokens, so requests that share a prompt
// prefix share its blocks. One entry covers one block of positions across ALL layers (one
// block id per layer, each on the tier where that layer was computed), because a prefix hit
// must skip the same positions in every layer. The cache holds one reference on each of those
// blocks; an entry is evictable once no sequence references any of them.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "kv_store/block_table.h"

namespace specontext {

struct PrefixEntry {
  uint64_t hash = 0;
  uint64_t parent = 0;
  std::vector<int32_t> tokens;
  std::vector<BlockRef> blocks;  // one per layer
};

struct PrefixStats {
  int64_t query_tokens = 0;  // prompt tokens looked up (vllm:prefix_cache_queries)
  int64_t hit_tokens = 0;    // of those, served from the cache (vllm:prefix_cache_hits)
  int64_t entries = 0;
  int64_t evictions = 0;
};

class PrefixCache {
 public:
  // The first block's parent is 0. Collisions are harmless: lookups compare tokens too.
  static uint64_t ChainHash(uint64_t parent, std::span<const int32_t> tokens);

  // The entry continuing `parent` with exactly `tokens`, marked most recently used.
  const PrefixEntry* Lookup(uint64_t parent, std::span<const int32_t> tokens);
  // False (and nothing stored) when the hash is already present.
  bool Insert(PrefixEntry entry);
  // Removes and returns the least recently used entry accepted by `pick` among those no other
  // entry continues: evicting leaves only means no entry is left unreachable.
  std::optional<PrefixEntry> EvictLru(const std::function<bool(const PrefixEntry&)>& pick);
  void CountQuery(int64_t query_tokens, int64_t hit_tokens);

  void ForEach(const std::function<void(const PrefixEntry&)>& visit) const;
  // For the store, when a layer's blocks move to another tier: the entries' references follow.
  void ForEachMutable(const std::function<void(PrefixEntry&)>& visit);
  PrefixStats stats() const;

 private:
  struct Slot {
    PrefixEntry entry;
    int32_t children = 0;
    std::list<uint64_t>::iterator lru;
  };
  std::unordered_map<uint64_t, Slot> entries_;
  std::list<uint64_t> lru_;  // front: most recently used
  PrefixStats stats_;
};

}  // namespace specontext
