#include "engine/specontext/specontext_planner.h"

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
                      SequenceState{HeadKvCache(head_->num_kv_heads(), head_->head_dim()), {}})
             .first;
  }
  SequenceState& state = it->second;
  SPC_ASSIGN_OR_RETURN(const std::span<const int32_t> missing,
                       MissingContext(row, step.start_position, state.cache.size(), what));
  if (step.start_position < state.cache.size()) state.cache.Truncate(step.start_position);
  if (!missing.empty()) {
    std::vector<float> k(missing.size() * head_->num_kv_heads() * head_->head_dim());
    SPC_RETURN_IF_ERROR(head_
                            ->Project(missing, static_cast<int32_t>(state.cache.size()), {},
                                      nullptr, k.data(), pool_)
                            .WithContext(what));
    state.cache.Append(k.data(), static_cast<int>(missing.size()));
    counters_.tokens_projected += static_cast<int64_t>(missing.size());
  }
  const int rows = static_cast<int>(step.tokens.size());
  if (rows == 0) return Status::Ok();
  const bool decode = rows == 1;
  std::vector<float> k(static_cast<size_t>(rows) * head_->num_kv_heads() * head_->head_dim());
  std::vector<float> q(decode ? static_cast<size_t>(head_->num_heads()) * head_->head_dim() : 0);
  std::vector<float> fused;
  if (decode) fused.swap(state.fused_hidden);
  SPC_RETURN_IF_ERROR(head_
                          ->Project(step.tokens, step.start_position, fused,
                                    decode ? q.data() : nullptr, k.data(), pool_)
                          .WithContext(what));
  state.cache.Append(k.data(), rows);
  counters_.tokens_projected += rows;
  if (!decode) return Status::Ok();

  ++counters_.decode_steps;
  if (state.cache.size() <= budget) {
    ++counters_.short_steps;
    return Status::Ok();
  }
  Selection selection;
  const SelectionOptions select{budget, options_.sink_tokens, options_.recent_window};
  SPC_RETURN_IF_ERROR(SelectPositions(q, head_->num_heads(), state.cache, select, pool_, &selection)
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

void SpecontextPlanner::Release(uint64_t seq_id) { sequences_.erase(seq_id); }

Status SpecontextPlanner::SetFusedHidden(uint64_t seq_id, std::vector<float> fused) {
  const size_t expected = static_cast<size_t>(head_->fused_hidden_size());
  if (expected == 0) {
    return FailedPrecondition("specontext planner: the retrieval head has no hidden path");
  }
  if (fused.size() != expected) {
    return InvalidArgument("specontext planner: fused hidden state has " +
                           std::to_string(fused.size()) + " values, expected " +
                           std::to_string(expected));
  }
  auto it = sequences_.find(seq_id);
  if (it == sequences_.end()) {
    return NotFound("specontext planner: sequence " + std::to_string(seq_id) + " has no state");
  }
  it->second.fused_hidden = std::move(fused);
  return Status::Ok();
}

int64_t SpecontextPlanner::CachedPositions(uint64_t seq_id) const {
  auto it = sequences_.find(seq_id);
  return it == sequences_.end() ? 0 : it->second.cache.size();
}

}  // namespace specontext
