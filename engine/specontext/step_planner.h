// The engine loop's hook for SpeContext: before each forward step a planner sees the batch and
// decides which KV positions every decode token attends to (SequenceStep::sparse_positions).
// Dense serving runs without a planner.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/batch.h"

namespace specontext {

enum class AttentionMode {
  kDefault,     // the server's mode
  kDense,       // every position, every step
  kSpecontext,  // the retrieval head's top-B positions per KV head
};

// "dense" or "specontext" as the APIs and flags spell them; nullopt for any other name.
inline std::optional<AttentionMode> AttentionModeNamed(std::string_view name) {
  if (name == "dense") return AttentionMode::kDense;
  if (name == "specontext") return AttentionMode::kSpecontext;
  return std::nullopt;
}

// Per row of the batch, in the same order as BatchStep::sequences.
struct PlanRow {
  uint64_t seq_id = 0;
  AttentionMode mode = AttentionMode::kDefault;
  int64_t budget = 0;  // B; 0 takes the server's budget
  // The sequence's tokens at positions [0, start_position): a step that starts beyond what the
  // head holds (a prompt prefix adopted from the prefix cache) projects the missing ones first.
  std::span<const int32_t> context;
  // The step's tokens are prompt tokens, however few (the scheduler may cut a one-token chunk):
  // planned as a prefill chunk, attending densely like the rest of the prompt.
  bool prompt_chunk = false;
};

// Cumulative since the planner was created. A "decode step" is one decode row (one token of one
// sequence) in specontext mode; each ends as exactly one of sparse, short (S ≤ B) or fallback.
struct SpecontextCounters {
  int64_t decode_steps = 0;
  int64_t sparse_steps = 0;
  int64_t short_steps = 0;
  int64_t fallback_steps = 0;
  int64_t positions_selected = 0;  // over sparse steps, summed over KV heads
  int64_t tokens_projected = 0;    // K rows appended to the head caches (prefill and decode)
  // K rows reused instead, from blocks an earlier sequence with the same prompt prefix computed
  // (engine/specontext/prefix_block_index.h); not in tokens_projected.
  int64_t tokens_adopted = 0;
  // K rows projected with zeros for a hidden input the head could not know (besides position
  // 0's): a prompt prefix the prefix cache served that no published head block covered. Such K
  // ranks positions differently from the K the sequence's own run would give.
  int64_t tokens_unknown_input = 0;
  // Sparse decode rows run again densely before sampling: the target's probability of its most
  // likely next token under the list fell below SpecontextPlannerOptions::redo_probability.
  int64_t redo_steps = 0;
  double selected_mass_sum = 0.0;  // over steps that ran selection (sparse and fallback)
  double retrieval_seconds = 0.0;  // wall time of projection and selection
};

// What changed between two readings of the counters.
inline SpecontextCounters operator-(const SpecontextCounters& a, const SpecontextCounters& b) {
  return {.decode_steps = a.decode_steps - b.decode_steps,
          .sparse_steps = a.sparse_steps - b.sparse_steps,
          .short_steps = a.short_steps - b.short_steps,
          .fallback_steps = a.fallback_steps - b.fallback_steps,
          .positions_selected = a.positions_selected - b.positions_selected,
          .tokens_projected = a.tokens_projected - b.tokens_projected,
          .tokens_adopted = a.tokens_adopted - b.tokens_adopted,
          .tokens_unknown_input = a.tokens_unknown_input - b.tokens_unknown_input,
          .redo_steps = a.redo_steps - b.redo_steps,
          .selected_mass_sum = a.selected_mass_sum - b.selected_mass_sum,
          .retrieval_seconds = a.retrieval_seconds - b.retrieval_seconds};
}

class StepPlanner {
 public:
  virtual ~StepPlanner() = default;
  // Sees every step, prefill chunks included (the head keeps a K cache of its own for every
  // position), and fills sparse_positions for the decode rows that run sparse. A row whose
  // start_position is below what the planner holds for that sequence (a recompute after
  // preemption) truncates its state first.
  // Every backend uses a row's lists as given (engine/batch_validation.h rejects the step
  // otherwise): one list per KV head, strictly ascending, inside the model's sliding window, and
  // ending with the token's own position (start_position), which therefore counts towards B.
  virtual Status Plan(std::span<const PlanRow> rows, BatchStep* batch) = 0;
  // The sequence finished or was preempted: drop its state.
  virtual void Release(uint64_t seq_id) = 0;

  // The target layers whose inputs the planner wants after a step of these rows
  // (BatchStep::capture_layers): empty when it reads none, or no row runs sparse.
  virtual std::vector<int> HiddenLayers(std::span<const PlanRow> /*rows*/) const { return {}; }
  // After a step: one sequence's captured states (StepOutput::hidden rows) for positions
  // [start_position, start_position + rows). A sequence the planner keeps no state for is
  // ignored.
  virtual Status ObserveHidden(uint64_t /*seq_id*/, int64_t /*start_position*/,
                               std::span<const float> /*states*/) {
    return Status::Ok();
  }
  // After a step the planner marked BatchStep::hidden_on_device: the states are still in the
  // runner's device memory, where the planner reads them itself.
  virtual Status ObserveStep(const BatchStep& /*batch*/) { return Status::Ok(); }
  // After a step, before sampling, for each decode row that attended sparsely: whether it runs
  // again densely, the target's probability of its most likely next token under the list being
  // `probability` (temperature 1) and the row's request asking for a re-run below `threshold`
  // (its own, or redo_probability()). A row it says yes to is counted (redo_steps).
  virtual bool RedoDense(double /*probability*/, double /*threshold*/) { return false; }
  // The server's threshold for requests that give none (0: never re-run).
  virtual double redo_probability() const { return 0.0; }
  // B for a request of this mode and budget (each as the request gives it: kDefault and 0 take
  // the server's), or 0 when it attends densely: what the KV placement keeps GPU slots for.
  virtual int64_t SparseBudget(AttentionMode /*mode*/, int64_t /*budget*/) const { return 0; }
  // Read between steps (the engine thread owns them while it runs); zeros for a planner that
  // keeps none.
  virtual SpecontextCounters counters() const { return {}; }
};

}  // namespace specontext
