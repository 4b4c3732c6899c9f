// KvStore::LendSlots: the GPU blocks elastic loading copies selected positions into, taken from
// the GPU tier's pool so that one budget, the memory manager's, covers every byte of KV there.
#include <string>

#include "kv_store/kv_store.h"

namespace specontext {

Status KvStore::LendSlots(SequenceId seq, int layer_index, int32_t blocks, SlotBlocks* out) {
  *out = SlotBlocks{};
  SPC_ASSIGN_OR_RETURN(SequenceTable * table, Find(seq));
  const std::string what =
      "slots for layer " + std::to_string(layer_index) + " of sequence " + std::to_string(seq);
  if (layer_index < 0 || layer_index >= layout_.num_layers || blocks <= 0) {
    return InvalidArgument(what + ": no such layer, or " + std::to_string(blocks) + " blocks");
  }
  LayerTable& layer = table->layers[layer_index];
  if (layer.tier == Tier::kGpu) return FailedPrecondition(what + ": the layer is on the GPU");
  if (static_cast<int32_t>(layer.slots.size()) != blocks) {
    ReturnSlots(layer);
    if (!HasTier(Tier::kGpu)) return ResourceExhausted(what + ": no GPU tier");
    for (int32_t i = 0; i < blocks; ++i) {
      auto id = AllocateBlock(Tier::kGpu);
      if (!id.ok()) {
        ReturnSlots(layer);
        return ResourceExhausted(what + ": the GPU tier has no " + std::to_string(blocks) +
                                 " free blocks");
      }
      layer.slots.push_back(*id);
      ++lent_slot_blocks_;
    }
    layer.slot_lease = ++last_lease_;
  }
  out->lease = layer.slot_lease;
  for (int32_t id : layer.slots) out->blocks.push_back(pool(Tier::kGpu)->data(id));
  return Status::Ok();
}

void KvStore::ReturnSlots(LayerTable& layer) {
  if (layer.slots.empty()) return;
  ReleaseBlocks(Tier::kGpu, layer.slots);
  lent_slot_blocks_ -= static_cast<int64_t>(layer.slots.size());
  layer.slots.clear();
  layer.slot_lease = 0;
}

int32_t KvStore::LayerSlotBlocks(SequenceId seq, int layer) const {
  auto it = sequences_.find(seq);
  if (it == sequences_.end() || layer < 0 || layer >= static_cast<int>(it->second.layers.size())) {
    return 0;
  }
  return static_cast<int32_t>(it->second.layers[layer].slots.size());
}

int64_t KvStore::LentSlotBlocks() const { return lent_slot_blocks_; }

}  // namespace specontext
