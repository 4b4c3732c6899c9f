#include "engine/specontext/specontext_planner.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "engine/specontext/plan_policy.h"
#include "engine/specontext/selector.h"

namespace specontext {

SpecontextPlanner::SpecontextPlanner(std::shared_ptr<const RetrievalHead> head,
                                     const SpecontextPlannerOptions& options)
    : head_(std::move(head)),
      options_(options),
      pool_(options.pool != nullptr ? *options.pool : cpu::ThreadPool::Shared()) {}

Result<std::unique_ptr<SpecontextPlanner>> SpecontextPlanner::Create(
    std::shared_ptr<const RetrievalHead> head, const SpecontextPlannerOptions& options) {
  if (head == nullptr) return InvalidArgument("specontext planner: no retrieval head");
  SPC_RETURN_IF_ERROR(ValidatePlannerOptions(options));
  return std::unique_ptr<SpecontextPlanner>(new SpecontextPlanner(std::move(head), options));
}

Status SpecontextPlanner::Plan(std::span<const PlanRow> rows, BatchStep* batch) {
  if (batch == nullptr || rows.size() != batch->sequences.size()) {
    return InvalidArgument("specontext planner: one plan row per batch sequence is required");
  }
  const auto start = std::chrono::steady_clock::now();
  batch->dense_layers = options_.dense_layers;
  Status status;
  for (size_t i = 0; i < rows.size() && status.ok(); ++i) {
    status = PlanSequence(rows[i], batch->sequences[i]);
  }
  counters_.retrieval_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return status;
}

Status SpecontextPlanner::PlanSequence(const PlanRow& row, SequenceStep& step) {
  step.sparse_positions.clear();
  SPC_ASSIGN_OR_RETURN(const RowPolicy policy, ResolvePlanRow(row, options_));
  if (!policy.sparse) return Status::Ok();
  const int64_t budget = policy.budget;
  const std::string what = "specontext planner: sequence " + std::to_string(row.seq_id);

  auto it = sequences_.find(row.seq_id);
  if (it == sequences_.end()) {
    it = sequences_
             .emplace(row.seq_id,
                      SequenceState{HeadKvCache(head_->num_kv_heads(), head_->head_dim()),
                                    FusedHistory(std::max(head_->fused_hidden_size(), 1))})
             .first;
  }
  SequenceState& state = it->second;
  if (step.start_position < state.cache.size()) {
    state.cache.Truncate(step.start_position);
    state.fused.Truncate(step.start_position);
    for (std::vector<float>& head : state.memory.weights) {
      head.resize(std::min<size_t>(head.size(), static_cast<size_t>(step.start_position)));
    }
  }
  // Positions before this step that the head has not projected: earlier prefill chunks, whose
  // hidden inputs arrived after their step, and prefixes adopted from the prefix cache.
  SPC_ASSIGN_OR_RETURN(const std::span<const int32_t> missing,
                       MissingContext(row, step.start_position, state.cache.size(), what));
  if (!missing.empty()) {
    std::vector<float> k(missing.size() * head_->num_kv_heads() * head_->head_dim());
    SPC_RETURN_IF_ERROR(
        Project(state, missing, state.cache.size(), nullptr, k.data()).WithContext(what));
    state.cache.Append(k.data(), static_cast<int>(missing.size()));
    state.fused.DropBefore(state.cache.size() - 1);
  }
  // A prefill chunk's own positions wait for their hidden inputs: the next step projects them.
  if (step.tokens.size() != 1) return Status::Ok();

  std::vector<float> k(static_cast<size_t>(head_->num_kv_heads()) * head_->head_dim());
  std::vector<float> q(static_cast<size_t>(head_->num_heads()) * head_->head_dim());
  SPC_RETURN_IF_ERROR(
      Project(state, step.tokens, step.start_position, q.data(), k.data()).WithContext(what));
  state.cache.Append(k.data(), 1);
  state.fused.DropBefore(step.start_position);

  ++counters_.decode_steps;
  if (state.cache.size() <= budget) {
    ++counters_.short_steps;
    return Status::Ok();
  }
  Selection selection;
  const SelectionOptions select{budget, options_.sink_tokens, options_.recent_window,
                                options_.memory_decay};
  SPC_RETURN_IF_ERROR(
      SelectPositions(q, head_->num_heads(), state.cache, select, pool_, &selection, &state.memory)
          .WithContext(what));
  counters_.selected_mass_sum += selection.selected_mass;
  if (selection.selected_mass < options_.fallback_mass_threshold) {
    ++counters_.fallback_steps;
    return Status::Ok();
  }
  ++counters_.sparse_steps;
  for (const auto& head : selection.positions) {
    counters_.positions_selected += static_cast<int64_t>(head.size());
  }
  step.sparse_positions = std::move(selection.positions);
  return Status::Ok();
}

Status SpecontextPlanner::Project(SequenceState& state, std::span<const int32_t> tokens,
                                  int64_t start, float* q, float* k) {
  const std::vector<float> hidden = head_->fused_hidden_size() > 0
                                        ? state.fused.InputsFor(start, tokens.size())
                                        : std::vector<float>();
  counters_.tokens_projected += static_cast<int64_t>(tokens.size());
  return head_->Project(tokens, static_cast<int32_t>(start), hidden, q, k, pool_);
}

void SpecontextPlanner::Release(uint64_t seq_id) { sequences_.erase(seq_id); }

std::vector<int> SpecontextPlanner::HiddenLayers(std::span<const PlanRow> rows) const {
  return AnySparse(rows, options_) ? head_->aux_layer_ids() : std::vector<int>();
}

Status SpecontextPlanner::ObserveHidden(uint64_t seq_id, int64_t start_position,
                                        std::span<const float> states) {
  auto it = sequences_.find(seq_id);
  if (it == sequences_.end() || head_->fused_hidden_size() == 0) return Status::Ok();
  if (states.empty() || states.size() % head_->fused_hidden_size() != 0) {
    return InvalidArgument("specontext planner: " + std::to_string(states.size()) +
                           " hidden values for sequence " + std::to_string(seq_id) +
                           " are not whole rows of " + std::to_string(head_->fused_hidden_size()));
  }
  it->second.fused.Observe(start_position, states);
  return Status::Ok();
}

int64_t SpecontextPlanner::CachedPositions(uint64_t seq_id) const {
  auto it = sequences_.find(seq_id);
  return it == sequences_.end() ? 0 : it->second.cache.size();
}

}  // namespace specontext
