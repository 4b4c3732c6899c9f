#include "scheduler/store_sequence_kv.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/specontext/slot_map.h"

namespace specontext {

Result<std::unique_ptr<StoreSequenceKv>> StoreSequenceKv::Create(KvStore* store,
                                                                 KvPlacementOptions options) {
  SPC_ASSIGN_OR_RETURN(std::unique_ptr<KvPlacement> placement, KvPlacement::Create(store, options));
  return std::unique_ptr<StoreSequenceKv>(new StoreSequenceKv(store, std::move(placement)));
}

Result<int> StoreSequenceKv::Admit(uint64_t seq, std::span<const int32_t> tokens, int max_length,
                                   int64_t sparse_budget, std::string_view request_id) {
  return placement_->Admit(seq, tokens, max_length, sparse_budget, request_id);
}

Status StoreSequenceKv::Reserve(uint64_t seq, int total_tokens) {
  return placement_->Reserve(seq, total_tokens);
}

void StoreSequenceKv::CachePrefix(uint64_t seq, std::span<const int32_t> computed_tokens) {
  // A prefix that cannot be cached costs a future hit, never correctness.
  if (Status st = store_->CachePrefix(seq, computed_tokens); !st.ok()) {
    spdlog::debug("prefix not cached for sequence {}: {}", seq, st.ToString());
  }
}

void StoreSequenceKv::Release(uint64_t seq) {
  tables_.erase(seq);
  placement_->Release(seq);
}

Status StoreSequenceKv::BeginStep(uint64_t seq, int start, int count, SequenceStep* step) {
  // The step borrows the sequence's tables (EndStep takes them back), so a decode step costs
  // the blocks added since the last one, not a copy of every layer's table.
  StepTables& tables = tables_[seq];
  SPC_RETURN_IF_ERROR(store_->BeginStep(seq, start, count, &tables));
  step->block_table = std::move(tables.blocks);
  step->table_version = tables.version;
  const int layers = store_->layout().num_layers;
  step->host_layers.assign(layers, 0);
  for (int layer = 0; layer < layers; ++layer) {
    SPC_ASSIGN_OR_RETURN(const Tier tier, store_->LayerTier(seq, layer));
    step->host_layers[layer] = tier != Tier::kGpu;
  }
  LendSlots(seq, step);
  return Status::Ok();
}

void StoreSequenceKv::LendSlots(uint64_t seq, SequenceStep* step) {
  step->slot_blocks.clear();
  const bool offloaded =
      std::find(step->host_layers.begin(), step->host_layers.end(), 1) != step->host_layers.end();
  if (step->tokens.size() != 1 || step->sparse_positions.empty() || !offloaded) return;
  // Only what the placement counted, so the blocks it planned for other sequences stay free.
  const int32_t blocks = placement_->SlotBlocks(seq);
  const int block_tokens = store_->layout().block_tokens;
  if (blocks == 0 ||
      SlotCapacityForLists(step->sparse_positions, block_tokens) > blocks * block_tokens) {
    return;
  }
  step->slot_blocks.resize(step->host_layers.size());
  for (size_t layer = 0; layer < step->host_layers.size(); ++layer) {
    if (step->host_layers[layer] == 0) continue;
    // The placement counted these blocks; should the pool still be short, the backend finds
    // slots of its own for the layer (or attends it in place).
    if (Status st =
            store_->LendSlots(seq, static_cast<int>(layer), blocks, &step->slot_blocks[layer]);
        !st.ok()) {
      spdlog::debug("no slots lent to sequence {}: {}", seq, st.ToString());
    }
  }
}

Status StoreSequenceKv::EndStep(uint64_t seq, SequenceStep* step) {
  if (auto found = tables_.find(seq); found != tables_.end() && step != nullptr) {
    found->second.blocks = std::move(step->block_table);
  }
  const Status written = store_->EndStep(seq);
  const Status checked = placement_->EndStep(seq);
  return written.ok() ? checked : written;
}

int64_t StoreSequenceKv::CapacityTokens() const { return placement_->CapacityTokens(); }

}  // namespace specontext
