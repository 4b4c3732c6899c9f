// KvStore::CheckIntegrity: recounts every reference from first principles and compares.
#include <string>
#include <vector>

#include "kv_store/kv_store.h"

namespace specontext {
namespace {

// refs[tier][block]: references found by walking the store.
using RefCounts = std::vector<std::vector<int32_t>>;

}  // namespace

Status KvStore::CheckIntegrity() const {
  RefCounts refs(kNumTiers), table_refs(kNumTiers), cache_refs(kNumTiers);
  for (Tier tier : kAllTiers) {
    if (const BlockPool* p = pool(tier)) {
      SPC_RETURN_IF_ERROR(p->CheckIntegrity());
      for (RefCounts* counts : {&refs, &table_refs, &cache_refs}) {
        (*counts)[static_cast<int>(tier)].assign(p->total_blocks(), 0);
      }
    }
  }
  auto count = [&](Tier tier, int32_t id, RefCounts* also, const std::string& who) -> Status {
    const BlockPool* p = pool(tier);
    if (p == nullptr || id < 0 || id >= p->total_blocks() || !p->IsAllocated(id)) {
      return Internal(who + " points to " + std::string(TierName(tier)) + " block " +
                      std::to_string(id) + ", which is not allocated");
    }
    ++refs[static_cast<int>(tier)][id];
    if (also != nullptr) ++(*also)[static_cast<int>(tier)][id];
    return Status::Ok();
  };

  int64_t pending = 0, lent = 0;
  for (const auto& [seq, table] : sequences_) {
    const std::string name = "sequence " + std::to_string(seq);
    const size_t want = static_cast<size_t>(layout_.BlocksFor(table.length));
    if (static_cast<int>(table.layers.size()) != layout_.num_layers) {
      return Internal(name + " has " + std::to_string(table.layers.size()) + " layer tables");
    }
    for (size_t l = 0; l < table.layers.size(); ++l) {
      const LayerTable& layer = table.layers[l];
      const std::string who = name + " layer " + std::to_string(l);
      if (layer.blocks.size() != want || static_cast<size_t>(table.cached_blocks) > want) {
        return Internal(who + " holds " + std::to_string(layer.blocks.size()) + " blocks for " +
                        std::to_string(table.length) + " positions");
      }
      for (int32_t id : layer.blocks) SPC_RETURN_IF_ERROR(count(layer.tier, id, &table_refs, who));
      if (!layer.slots.empty() && layer.tier == Tier::kGpu) {
        return Internal(who + " is on the GPU but holds elastic slots");
      }
      for (int32_t id : layer.slots) {
        SPC_RETURN_IF_ERROR(count(Tier::kGpu, id, &table_refs, who + " (slots)"));
      }
      lent += static_cast<int64_t>(layer.slots.size());
      if (layer.pending) {
        ++pending;
        if (layer.pending->blocks.size() != want) {
          return Internal(who + " is moving " + std::to_string(layer.pending->blocks.size()) +
                          " blocks instead of " + std::to_string(want));
        }
        for (int32_t id : layer.pending->blocks) {
          SPC_RETURN_IF_ERROR(count(layer.pending->to, id, &table_refs, who + " (moving)"));
        }
      }
    }
    for (const StagedBlock& s : table.staged) {
      SPC_RETURN_IF_ERROR(count(Tier::kHost, s.host_id, nullptr, name + " (staged)"));
    }
  }
  if (lent != lent_slot_blocks_) {
    return Internal(std::to_string(lent_slot_blocks_) + " slot blocks counted but " +
                    std::to_string(lent) + " lent");
  }
  if (pending != pending_moves_) {
    return Internal(std::to_string(pending_moves_) + " moves counted but " +
                    std::to_string(pending) + " in flight");
  }

  Status cache_status;
  cache_.ForEach([&](const PrefixEntry& e) {
    if (!cache_status.ok()) return;
    if (static_cast<int>(e.blocks.size()) != layout_.num_layers) {
      cache_status = Internal("prefix entry with " + std::to_string(e.blocks.size()) + " layers");
      return;
    }
    for (const BlockRef& b : e.blocks) {
      cache_status = count(b.tier, b.id, &cache_refs, "prefix entry");
      if (!cache_status.ok()) return;
      if (pool(b.tier)->tokens(b.id) != layout_.block_tokens) {
        cache_status = Internal("prefix entry points to a block that is not full");
        return;
      }
    }
  });
  SPC_RETURN_IF_ERROR(cache_status);

  for (Tier tier : kAllTiers) {
    const BlockPool* p = pool(tier);
    if (p == nullptr) continue;
    const int t = static_cast<int>(tier);
    for (int32_t id = 0; id < p->total_blocks(); ++id) {
      const std::string block = std::string(TierName(tier)) + " block " + std::to_string(id);
      if (refs[t][id] != p->refcount(id)) {
        return Internal(block + " has reference count " + std::to_string(p->refcount(id)) +
                        " but " + std::to_string(refs[t][id]) + " references (leak or double use)");
      }
      if (table_refs[t][id] > 1 && cache_refs[t][id] == 0) {
        return Internal(block + " is owned by " + std::to_string(table_refs[t][id]) +
                        " tables without being a shared prefix block");
      }
    }
  }
  return Status::Ok();
}

}  // namespace specontext
