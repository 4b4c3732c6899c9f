#include "scheduler/kv_placement.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/specontext/slot_map.h"

namespace specontext {

std::string_view MemoryDecisionName(MemoryDecision decision) {
  switch (decision) {
    case MemoryDecision::kAdmit:
      return "admit";
    case MemoryDecision::kDefer:
      return "defer";
    case MemoryDecision::kReject:
      return "reject";
    case MemoryDecision::kDemote:
      return "demote";
    case MemoryDecision::kPromote:
      return "promote";
    case MemoryDecision::kSpill:
      return "spill";
  }
  return "unknown";
}

Result<std::unique_ptr<KvPlacement>> KvPlacement::Create(KvStore* store,
                                                         KvPlacementOptions options) {
  const KvLayout& layout = store->layout();
  MemoryModelConfig config;
  config.num_layers = layout.num_layers;
  config.kv_heads = layout.num_kv_heads;
  config.head_dim = layout.head_dim;
  config.bytes_per_element = static_cast<int>(layout.ElementBytes());
  // The pools are the KV room already: weights and activations were set aside when they were
  // sized, so the model's fixed part is zero here.
  config.activation_factor = 1.0;
  config.gpu_bytes = static_cast<double>(store->Usage(Tier::kGpu).total_bytes);
  config.host_bytes = static_cast<double>(store->Usage(Tier::kHost).total_bytes);
  config.nvme_bytes = static_cast<double>(store->Usage(Tier::kNvme).total_bytes);
  auto manager = MemoryManager::Create(config);
  if (!manager.ok()) return manager.status().WithContext("KV placement");
  return std::unique_ptr<KvPlacement>(new KvPlacement(store, std::move(manager).value(), options));
}

int64_t KvPlacement::Rounded(int64_t length) const {
  return Blocks(length) * store_->layout().block_tokens;
}

RequestLoad KvPlacement::Load(uint64_t seq, const Placed& p, int64_t length) const {
  RequestLoad load{seq, Rounded(length), Rounded(p.max_length), p.gpu_layers, true};
  load.slots = Slots(p.sparse_budget, length);
  load.max_slots = Slots(p.sparse_budget, p.max_length);
  return load;
}

int64_t KvPlacement::Slots(int64_t sparse_budget, int64_t length) const {
  // Up to B positions a row attends densely, in place; past it the lists hold B (the token's
  // own position among them, read from its host block).
  if (sparse_budget <= 0 || length <= sparse_budget) return 0;
  const int64_t slots =
      SlotCapacity(static_cast<int>(sparse_budget - 1), store_->layout().block_tokens);
  // A GPU tier that cannot hold one sequence's slots (or none at all) lends none: its rows
  // read their offloaded layers in place, as dense rows do.
  const double bytes =
      manager_.UnitBytes() * static_cast<double>(slots) * store_->layout().num_layers;
  return bytes <= manager_.config().gpu_bytes ? slots : 0;
}

int32_t KvPlacement::SlotBlocks(uint64_t seq) const {
  auto it = placed_.find(seq);
  if (it == placed_.end()) return 0;
  return static_cast<int32_t>(Slots(it->second.sparse_budget, it->second.length) /
                              store_->layout().block_tokens);
}

int64_t KvPlacement::LayersOn(uint64_t seq, Tier tier) const {
  int64_t count = 0;
  for (int layer = 0; layer < store_->layout().num_layers; ++layer) {
    auto on = store_->LayerTier(seq, layer);
    count += on.ok() && *on == tier;
  }
  return count;
}

int64_t KvPlacement::StagingBlocks() const {
  int64_t blocks = 0;
  for (const auto& [key, p] : placed_) {
    if (p.in_step) blocks += LayersOn(key, Tier::kNvme) * Blocks(p.length);
  }
  return blocks;
}

int64_t KvPlacement::CapacityTokens() const {
  // A running sequence's layers sit on the GPU or in host memory during a step (NVMe layers
  // are staged there), so the longest one has b blocks per layer with
  // floor(gpu / b) + floor(host / b) >= L.
  const int64_t gpu = store_->Usage(Tier::kGpu).total_blocks;
  const int64_t host = store_->Usage(Tier::kHost).total_blocks;
  const int layers = store_->layout().num_layers;
  for (int64_t b = (gpu + host) / layers; b > 0; --b) {
    if (gpu / b + host / b >= layers) return b * store_->layout().block_tokens;
  }
  return 0;
}

Result<int> KvPlacement::Admit(uint64_t seq, std::span<const int32_t> tokens, int64_t max_length,
                               int64_t sparse_budget, std::string_view request_id) {
  const int64_t length = static_cast<int64_t>(tokens.size());
  const int layers = store_->layout().num_layers;
  if (const int64_t capacity = CapacityTokens(); length + 1 > capacity) {
    Decide(MemoryDecision::kReject, 1);
    const std::string why = fmt::format(
        "request {} needs {} KV positions, more than the {} one sequence can hold "
        "on every tier together",
        request_id, length + 1, capacity);
    spdlog::warn("memory: reject: {}", why);
    return OutOfRange(why);
  }
  std::vector<RequestLoad> loads;
  for (const auto& [key, p] : placed_) loads.push_back(Load(key, p, p.length));
  Placed placed{.request_id = std::string(request_id),
                .max_length = std::max(max_length, length + 1),
                .sparse_budget = sparse_budget,
                .gpu_layers = layers};
  const RequestLoad candidate = Load(seq, placed, length);
  const AdmissionDecision decision = manager_.Admit(loads, candidate);
  if (!decision.admit && !placed_.empty()) {
    if (deferred_.insert(seq).second) {
      Decide(MemoryDecision::kDefer, 1);
      spdlog::info("memory: defer request {}: {}", request_id, decision.reason);
    }
    return ResourceExhausted(decision.reason);
  }
  // Its layers start where the placement of the whole batch would put them.
  loads.push_back(candidate);
  const PlacementPlan plan = manager_.Place(loads);
  const int gpu_layers = plan.feasible ? plan.gpu_layers.back() : 0;
  std::vector<Tier> tiers(layers, Tier::kHost);
  std::fill_n(tiers.begin(), gpu_layers, Tier::kGpu);
  SPC_ASSIGN_OR_RETURN(const int64_t cached, store_->AddSequence(seq, tiers, tokens));
  deferred_.erase(seq);
  placed.length = cached;
  placed.gpu_layers = gpu_layers;
  placed.last_step = step_;
  placed_[seq] = std::move(placed);
  Decide(MemoryDecision::kAdmit, 1);
  spdlog::info("memory: admit request {} with {} of {} layers on the GPU tier: {}", request_id,
               gpu_layers, layers,
               decision.admit ? decision.reason
                              : "alone, although its maximum length exceeds the model (" +
                                    decision.reason + "); it fails if it outgrows every tier");
  return static_cast<int>(cached);
}

Status KvPlacement::Reserve(uint64_t seq, int64_t total_tokens) {
  auto it = placed_.find(seq);
  if (it == placed_.end()) return NotFound("sequence " + std::to_string(seq) + " is not placed");
  Placed& self = it->second;
  if (!forming_step_) {
    forming_step_ = true;
    ++step_;
  }
  const int64_t length = std::max(total_tokens, self.length);
  const int64_t grow = Blocks(length) - Blocks(self.length);
  const size_t block_bytes = store_->layout().BlockBytes();

  // 1. Where every layer should be with this sequence at its new length.
  std::vector<RequestLoad> loads;
  for (const auto& [key, p] : placed_)
    loads.push_back(Load(key, p, key == seq ? length : p.length));
  const PlacementPlan plan = manager_.Place(loads);
  if (!plan.feasible) {
    return ResourceExhausted("request " + self.request_id + ": " + plan.reason);
  }
  std::vector<Move> demotions;
  int64_t host_need = 0;
  int self_gpu = self.gpu_layers;
  // Promotions wait until room frees up (Release); growing only ever demotes.
  for (const LayerMove& m : plan.moves) {
    if (m.to != Tier::kHost) continue;
    const int64_t blocks = Blocks(placed_.at(m.key).length);
    demotions.push_back(Move{m.key, m.layer, Tier::kHost, blocks, m.reason});
    host_need += blocks;
    if (m.key == seq) self_gpu = std::min(self_gpu, m.layer);
  }
  const int layers = store_->layout().num_layers;
  const int64_t self_nvme = LayersOn(seq, Tier::kNvme);
  const int64_t self_host = layers - self_gpu - self_nvme;
  host_need += self_host * grow;
  // NVMe layers of every sequence in the step are staged into host blocks at BeginStep.
  host_need += StagingBlocks() + (self.in_step ? self_nvme * grow : self_nvme * Blocks(length));

  // 2. Host short: spill layers of sequences outside this step to NVMe.
  std::vector<Move> spills;
  int64_t nvme_need = self_nvme * grow;
  store_->ReclaimPrefixBlocks(Tier::kHost, host_need);
  if (const int64_t free = store_->Usage(Tier::kHost).free_blocks; free < host_need) {
    std::vector<HostLayer> candidates;
    for (const auto& [key, p] : placed_) {
      if (key == seq || p.in_step) continue;
      for (int layer = p.gpu_layers; layer < layers; ++layer) {
        auto tier = store_->LayerTier(key, layer);
        if (!tier.ok() || *tier != Tier::kHost) continue;
        candidates.push_back(HostLayer{key, layer,
                                       static_cast<double>(Blocks(p.length) * block_bytes),
                                       p.last_step >= step_ - 1, p.last_step});
      }
    }
    const SpillPlan spill = manager_.PlanSpill(
        std::move(candidates), static_cast<double>((host_need - free) * block_bytes));
    if (!spill.enough || !store_->HasTier(Tier::kNvme)) {
      return ResourceExhausted(fmt::format("request {}: host KV tier short by {} blocks; {}",
                                           self.request_id, host_need - free, spill.reason));
    }
    for (const LayerMove& m : spill.moves) {
      const int64_t blocks = Blocks(placed_.at(m.key).length);
      spills.push_back(Move{m.key, m.layer, Tier::kNvme, blocks, m.reason});
      nvme_need += blocks;
    }
  }
  if (nvme_need > 0 && store_->Usage(Tier::kNvme).free_blocks < nvme_need) {
    return ResourceExhausted(
        fmt::format("request {}: the NVMe KV tier lacks {} blocks", self.request_id, nvme_need));
  }

  // 3. Carry it out: spills free host blocks for the demotions, which free GPU blocks.
  SPC_RETURN_IF_ERROR(Execute(spills, MemoryDecision::kSpill));
  SPC_RETURN_IF_ERROR(Execute(demotions, MemoryDecision::kDemote));
  if (store_->HasTier(Tier::kGpu)) store_->ReclaimPrefixBlocks(Tier::kGpu, self.gpu_layers * grow);
  SPC_RETURN_IF_ERROR(store_->Extend(seq, length));
  self.length = length;
  self.in_step = true;
  return Status::Ok();
}

Status KvPlacement::Execute(const std::vector<Move>& moves, MemoryDecision decision) {
  Status first;
  std::map<uint64_t, std::vector<int>> moved;
  for (const Move& m : moves) {
    auto ticket = store_->MoveLayer(m.seq, m.layer, m.to);
    if (!ticket.ok()) {
      if (first.ok()) first = ticket.status();
      continue;
    }
    moved[m.seq].push_back(m.layer);
  }
  int64_t done = 0;
  for (auto& [key, layer_list] : moved) {
    // Waiting here keeps the accounting exact: the blocks the moves free are free on return.
    if (Status st = store_->FinishMoves(key); !st.ok() && first.ok()) first = st;
    Placed& p = placed_.at(key);
    int gpu = 0;
    while (gpu < store_->layout().num_layers) {
      auto tier = store_->LayerTier(key, gpu);
      if (!tier.ok() || *tier != Tier::kGpu) break;
      ++gpu;
    }
    p.gpu_layers = gpu;
    done += static_cast<int64_t>(layer_list.size());
    const auto reason = std::find_if(moves.begin(), moves.end(), [&](const Move& m) {
                          return m.seq == key;
                        })->reason;
    spdlog::info("memory: {} request {} layers [{}] to the {} tier ({} blocks each): {}",
                 MemoryDecisionName(decision), p.request_id, fmt::join(layer_list, ","),
                 TierName(moves.front().to), Blocks(p.length), reason);
  }
  if (done > 0) Decide(decision, done);
  return first.ok() ? first : first.WithContext("KV placement");
}

Status KvPlacement::EndStep(uint64_t seq) {
  forming_step_ = false;
  std::string request_id = std::to_string(seq);
  if (auto it = placed_.find(seq); it != placed_.end()) {
    it->second.in_step = false;
    it->second.last_step = step_;
    request_id = it->second.request_id;
  }
  if (options_.check_integrity_every_step) {
    SPC_RETURN_IF_ERROR(
        store_->CheckIntegrity().WithContext("KV store after a step of request " + request_id));
  }
  if (std::none_of(placed_.begin(), placed_.end(),
                   [](const auto& entry) { return entry.second.in_step; })) {
    Report();
  }
  return Status::Ok();
}

void KvPlacement::Release(uint64_t seq) {
  if (Status st = store_->FreeSequence(seq); !st.ok()) {
    spdlog::error("freeing KV of sequence {}: {}", seq, st.ToString());
  }
  placed_.erase(seq);
  deferred_.erase(seq);
  // While a step is being formed the room belongs to the sequence that asked for it (the
  // scheduler preempts to make it); promoting into it would take it away again.
  if (!forming_step_) Promote();
  Report();
}

void KvPlacement::Promote() {
  if (placed_.empty()) return;
  const int layers = store_->layout().num_layers;
  std::vector<RequestLoad> loads;
  for (const auto& [key, p] : placed_) loads.push_back(Load(key, p, p.length));
  const PlacementPlan plan = manager_.Place(loads);
  // Host -> GPU where the placement now has room, in layer order so [0, gpu_layers) stays
  // on the GPU; a layer on NVMe ends the run for its sequence.
  std::vector<Move> up;
  int64_t gpu_free = store_->Usage(Tier::kGpu).free_blocks;
  std::set<uint64_t> stopped;
  for (const LayerMove& m : plan.moves) {
    if (m.to != Tier::kGpu || stopped.contains(m.key)) continue;
    const int64_t blocks = Blocks(placed_.at(m.key).length);
    auto tier = store_->LayerTier(m.key, m.layer);
    // The layer's slots go back to the pool before its blocks are taken (KvStore::MoveLayer).
    const int64_t slots = store_->LayerSlotBlocks(m.key, m.layer);
    if (!tier.ok() || *tier != Tier::kHost || blocks > gpu_free + slots) {
      stopped.insert(m.key);
      continue;
    }
    gpu_free += slots - blocks;
    up.push_back(Move{m.key, m.layer, Tier::kGpu, blocks, m.reason});
  }
  if (Status st = Execute(up, MemoryDecision::kPromote); !st.ok()) {
    spdlog::warn("memory: promotion to the GPU tier: {}", st.ToString());
  }
  // NVMe -> host while host memory stays at most three quarters full, leaving the rest for
  // growth and for staging; beyond that the copy would likely be spilled again.
  const PoolUsage host = store_->Usage(Tier::kHost);
  int64_t host_used = host.used_blocks + StagingBlocks();
  std::vector<Move> back;
  for (const auto& [key, p] : placed_) {
    for (int layer = p.gpu_layers; layer < layers; ++layer) {
      auto tier = store_->LayerTier(key, layer);
      const int64_t blocks = Blocks(p.length);
      if (!tier.ok() || *tier != Tier::kNvme || 4 * (host_used + blocks) > 3 * host.total_blocks) {
        continue;
      }
      host_used += blocks;
      back.push_back(Move{key, layer, Tier::kHost, blocks, "host memory freed up"});
    }
  }
  if (Status st = Execute(back, MemoryDecision::kPromote); !st.ok()) {
    spdlog::warn("memory: promotion to the host tier: {}", st.ToString());
  }
}

KvTierSnapshot KvPlacement::Snapshot() const {
  KvTierSnapshot snapshot;
  for (Tier tier : kAllTiers) snapshot.usage[static_cast<int>(tier)] = store_->Usage(tier);
  snapshot.slot_bytes =
      store_->LentSlotBlocks() * static_cast<int64_t>(store_->layout().BlockBytes());
  for (const auto& [key, p] : placed_) {
    snapshot.layers_offloaded += store_->layout().num_layers - p.gpu_layers;
  }
  return snapshot;
}

void KvPlacement::Decide(MemoryDecision decision, int64_t count) {
  decisions_[static_cast<int>(decision)] += count;
  if (options_.observer != nullptr) options_.observer->OnMemoryDecision(decision, count);
}

void KvPlacement::Report() {
  if (options_.observer != nullptr) options_.observer->OnKvTiers(Snapshot());
}

}  // namespace specontext
