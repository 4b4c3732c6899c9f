// The memory manager in the serving path: which sequences the KV store admits, and on which
// tier each layer of each sequence lives while it grows. Admission asks MemoryManager::Admit;
// every reservation re-runs MemoryManager::Place over the live sequences and carries out its
// demotions (GPU -> host, last GPU layer first) and, when host memory runs short,
// MemoryManager::PlanSpill (host -> NVMe) over the sequences that are not in the coming step.
// Every decision is logged with the request id and its reason, counted, and reported to an
// observer for metrics. Runs on the engine thread only.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kv_store/kv_store.h"
#include "kv_store/memory_manager.h"

namespace specontext {

enum class MemoryDecision { kAdmit, kDefer, kReject, kDemote, kPromote, kSpill };
inline constexpr int kNumMemoryDecisions = 6;
// "admit", "defer", ...: the metric label.
std::string_view MemoryDecisionName(MemoryDecision decision);

struct KvTierSnapshot {
  std::array<PoolUsage, kNumTiers> usage;
  int64_t layers_offloaded = 0;  // (sequence, layer) tables off the GPU tier
  int64_t slot_bytes = 0;        // GPU-tier bytes lent as elastic slots (in usage's GPU bytes)
};

// Receives decisions and tier usage on the engine thread: must be quick and never block.
class PlacementObserver {
 public:
  virtual ~PlacementObserver() = default;
  // `count` decisions of one kind (a demotion of three layers is three).
  virtual void OnMemoryDecision(MemoryDecision /*decision*/, int64_t /*count*/) {}
  virtual void OnKvTiers(const KvTierSnapshot& /*snapshot*/) {}
};

struct KvPlacementOptions {
  PlacementObserver* observer = nullptr;  // must outlive the placement
  // Runs KvStore::CheckIntegrity after every step and fails the step on a violation.
  bool check_integrity_every_step = false;
};

class KvPlacement {
 public:
  static Result<std::unique_ptr<KvPlacement>> Create(KvStore* store, KvPlacementOptions options);

  // Registers `seq` with the layers the placement gives it now and returns the positions a
  // cached prefix covers. A sequence with a sparse budget B (0: dense) keeps GPU slots for
  // each offloaded layer once it is longer than B (StoreSequenceKv lends them), and the model
  // counts them. kResourceExhausted: wait, the admitted sequences need the room at
  // their maximum lengths. kOutOfRange: the tokens alone exceed every tier; never admissible.
  Result<int> Admit(uint64_t seq, std::span<const int32_t> tokens, int64_t max_length,
                    int64_t sparse_budget, std::string_view request_id);
  // Grows `seq` to `total_tokens` for the coming step, demoting and spilling layers as needed;
  // kResourceExhausted when it cannot (nothing is extended then).
  Status Reserve(uint64_t seq, int64_t total_tokens);
  // After the forward pass: records the step, checks integrity when asked, reports usage.
  Status EndStep(uint64_t seq);
  // Frees `seq` and promotes layers of the others into the room it leaves.
  void Release(uint64_t seq);
  // Blocks each offloaded layer of `seq` may borrow from the GPU tier as elastic slots at its
  // reserved length: those the model counted for it (0: none).
  int32_t SlotBlocks(uint64_t seq) const;
  // The longest sequence the tiers can hold alone: the NVMe tier does not count, because a
  // running sequence's NVMe layers are staged through host memory at every step.
  int64_t CapacityTokens() const;

  int64_t decisions(MemoryDecision decision) const {
    return decisions_[static_cast<int>(decision)];
  }
  KvTierSnapshot Snapshot() const;

 private:
  struct Placed {
    std::string request_id;
    int64_t max_length = 0;
    int64_t sparse_budget = 0;
    int64_t length = 0;      // positions reserved in the store
    int gpu_layers = 0;      // layers [0, gpu_layers) live on the GPU tier
    bool in_step = false;    // reserved for the step being formed; never spilled then
    int64_t last_step = -1;  // the step it last ran in
  };
  // One (sequence, layer) to move, with the blocks it occupies.
  struct Move {
    uint64_t seq = 0;
    int layer = 0;
    Tier to = Tier::kHost;
    int64_t blocks = 0;
    std::string reason;
  };

  KvPlacement(KvStore* store, MemoryManager manager, KvPlacementOptions options)
      : store_(store), manager_(std::move(manager)), options_(options) {}

  int64_t Blocks(int64_t length) const { return store_->layout().BlocksFor(length); }
  // Whole blocks: the model's bytes then equal the pools' blocks exactly.
  int64_t Rounded(int64_t length) const;
  RequestLoad Load(uint64_t seq, const Placed& p, int64_t length) const;
  // Positions each offloaded layer of a sequence keeps on the GPU as slots at `length`.
  int64_t Slots(int64_t sparse_budget, int64_t length) const;
  int64_t LayersOn(uint64_t seq, Tier tier) const;
  // Host blocks the step being formed stages its NVMe layers into.
  int64_t StagingBlocks() const;
  // Carries out moves, waits for them, and keeps gpu_layers in step with the store.
  Status Execute(const std::vector<Move>& moves, MemoryDecision decision);
  void Promote();
  void Decide(MemoryDecision decision, int64_t count);
  void Report();

  KvStore* store_;
  MemoryManager manager_;
  KvPlacementOptions options_;
  std::map<uint64_t, Placed> placed_;  // ordered, so decisions are reproducible
  std::set<uint64_t> deferred_;        // logged and counted once per waiting sequence
  int64_t step_ = 0;
  bool forming_step_ = false;
  std::array<int64_t, kNumMemoryDecisions> decisions_{};
};

}  // namespace specontext
