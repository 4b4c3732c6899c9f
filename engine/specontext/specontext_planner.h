// The CPU SpeContext planner: a retrieval-head K cache per sequence, fed by every step (a prefill
// chunk's positions at the next step, once their hidden inputs exist), and for each decode row
// that runs sparse the top-B positions per KV head. Full blocks of K computed from known inputs
// outlive their sequence in a prefix store, so a prompt prefix the scheduler adopted from its
// prefix cache gets the K its first owner computed rather than one projected from zero inputs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/cpu/thread_pool.h"
#include "engine/specontext/fused_history.h"
#include "engine/specontext/head_kv_cache.h"
#include "engine/specontext/head_prefix_store.h"
#include "engine/specontext/retrieval_head.h"
#include "engine/specontext/selector.h"
#include "engine/specontext/step_planner.h"

namespace specontext {

struct SpecontextPlannerOptions {
  AttentionMode server_mode = AttentionMode::kSpecontext;  // what kDefault rows run
  int64_t budget = 2048;                                   // B for rows that give 0
  int64_t sink_tokens =
      4;  // always keep the first N positions (attention sinks: docs/specontext.md)
  // Always keep the last W positions; at least 1, the current token's own position, which every
  // sparse list must end with (engine/batch_validation.h).
  int64_t recent_window = 1;
  // A decode step whose selected attention mass (Selection::selected_mass) is below this runs
  // dense; 0 disables the fallback.
  double fallback_mass_threshold = 0.0;
  // A sparse decode row whose next-token probability under its list is below this runs again
  // densely before sampling (StepPlanner::RedoDense); 0 never. The steps a list breaks, copies
  // above all, are ones the target is unsure of (docs/specontext.md).
  double redo_probability = 0.0;
  // The first N target layers attend densely in sparse rows (BatchStep::dense_layers).
  int dense_layers = 0;
  // SelectionOptions::memory_decay: a position keeps this share of its last ranking weight.
  // 0.995 keeps a span the head found selected while it is copied: served at B = 2048 it lifts
  // every length from 4K to 32K (docs/specontext.md, "Selection memory, served").
  double memory_decay = 0.995;
  // An EAGLE-3 head reads the target's fused hidden states of the previous position (the input
  // it was trained with); false gives it zeros there. Applied when the head is loaded
  // (RetrievalHeadOptions::load_hidden_path).
  bool hidden_input = true;
  cpu::ThreadPool* pool = nullptr;  // nullptr: cpu::ThreadPool::Shared()
};

class SpecontextPlanner final : public StepPlanner {
 public:
  // Full head K blocks kept for sequences sharing a prompt prefix (HeadPrefixStore): 64K
  // positions. Each block costs (16 · num_kv_heads · head_dim + fused width) · 4 bytes of host
  // memory, taken as blocks are stored: 19 KiB for SmolLM2-135M's head (75 MiB when full),
  // 112 KiB for an 8B-sized one (8 × 128 K, 3 × 4096 states: 448 MiB when full).
  static constexpr int64_t kPrefixStoreBlocks = 4096;

  static Result<std::unique_ptr<SpecontextPlanner>> Create(
      std::shared_ptr<const RetrievalHead> head, const SpecontextPlannerOptions& options);

  // Rows running dense (by their mode or the server's) keep no state and cost nothing.
  Status Plan(std::span<const PlanRow> rows, BatchStep* batch) override;
  void Release(uint64_t seq_id) override;

  // A head with the hidden path (an EAGLE-3 draft loaded with it) reads the target's states of
  // the previous position; without them its hidden input is zero.
  std::vector<int> HiddenLayers(std::span<const PlanRow> rows) const override;
  Status ObserveHidden(uint64_t seq_id, int64_t start_position,
                       std::span<const float> states) override;

  SpecontextCounters counters() const override { return counters_; }
  bool RedoDense(double probability, double threshold) override;
  double redo_probability() const override { return options_.redo_probability; }
  int64_t SparseBudget(AttentionMode mode, int64_t budget) const override;
  // Positions the head caches for a sequence (0 when it has no state).
  int64_t CachedPositions(uint64_t seq_id) const;
  size_t tracked_sequences() const { return sequences_.size(); }

 private:
  struct SequenceState {
    HeadKvCache cache;
    FusedHistory fused;
    SelectionMemory memory;
    // Positions below this had every hidden input known when projected: their K is what any
    // sequence with the same prefix would compute, so their blocks may be stored.
    int64_t exact_end = INT64_MAX;
    std::vector<uint64_t> block_keys;  // chain keys of the leading full blocks hashed so far
    int64_t blocks_published = 0;      // leading blocks the store has been offered
  };

  SpecontextPlanner(std::shared_ptr<const RetrievalHead> head,
                    const SpecontextPlannerOptions& options);
  Status PlanSequence(const PlanRow& row, SequenceStep& step);
  // K (and q when non-null) for `tokens` at positions [start, ...), reading the observed states.
  Status Project(SequenceState& state, std::span<const int32_t> tokens, int64_t start, float* q,
                 float* k);
  // A sequence with an empty head cache takes the stored blocks of `context`'s leading full
  // blocks, and the state of the last one's last position.
  void Adopt(SequenceState& state, std::span<const int32_t> context);
  // Offers the store the sequence's blocks that became exact, complete and known (`context`
  // holds their tokens), before their last state is dropped.
  void Publish(SequenceState& state, std::span<const int32_t> context);

  std::shared_ptr<const RetrievalHead> head_;
  SpecontextPlannerOptions options_;
  cpu::ThreadPool& pool_;
  std::unordered_map<uint64_t, SequenceState> sequences_;
  HeadPrefixStore prefix_store_;  // outlives Release: later sequences adopt from it
  SpecontextCounters counters_;
};

}  // namespace specontext
