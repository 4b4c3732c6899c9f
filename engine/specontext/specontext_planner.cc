#include "engine/specontext/specontext_planner.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <string>

#include "engine/specontext/plan_policy.h"
#include "engine/specontext/selector.h"

namespace specontext {

SpecontextPlanner::SpecontextPlanner(std::shared_ptr<const RetrievalHead> head,
                                     const SpecontextPlannerOptions& options)
    : head_(std::move(head)),
      options_(options),
      pool_(options.pool != nullptr ? *options.pool : cpu::ThreadPool::Shared()),
      prefix_store_(kPrefixStoreBlocks, head_->num_kv_heads() * head_->head_dim(),
                    head_->fused_hidden_size()) {}

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
  // A new sequence whose prompt prefix the prefix cache served goes last: the sequence that
  // computed that prefix publishes its head blocks when it projects them, often in this very
  // step, and the new one then adopts them instead of projecting from unknown hidden inputs.
  auto adopting = [&](size_t i) {
    return !sequences_.contains(rows[i].seq_id) &&
           batch->sequences[i].start_position >= kHeadPrefixBlockTokens;
  };
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_partition(order.begin(), order.end(), [&](size_t i) { return !adopting(i); });
  Status status;
  for (size_t i : order) {
    status = PlanSequence(rows[i], batch->sequences[i]);
    if (!status.ok()) break;
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
    // What is kept was exact if it was below the bound; blocks past the cut are offered again.
    if (state.exact_end >= step.start_position) state.exact_end = INT64_MAX;
    const int64_t kept_blocks = step.start_position / kHeadPrefixBlockTokens;
    state.blocks_published = std::min(state.blocks_published, kept_blocks);
    state.block_keys.resize(std::min<size_t>(state.block_keys.size(), kept_blocks));
  }
  // Positions before this step that the head has not projected: earlier prefill chunks, whose
  // hidden inputs arrived after their step, and prefixes adopted from the prefix cache.
  SPC_ASSIGN_OR_RETURN(std::span<const int32_t> missing,
                       MissingContext(row, step.start_position, state.cache.size(), what));
  if (!missing.empty() && state.cache.size() == 0) {
    Adopt(state, missing);
    missing = missing.subspan(state.cache.size());
  }
  if (!missing.empty()) {
    std::vector<float> k(missing.size() * head_->num_kv_heads() * head_->head_dim());
    SPC_RETURN_IF_ERROR(
        Project(state, missing, state.cache.size(), nullptr, k.data()).WithContext(what));
    state.cache.Append(k.data(), static_cast<int>(missing.size()));
    Publish(state, row.context);
    state.fused.DropBefore(state.cache.size() - 1);
  }
  // A prefill chunk's own positions wait for their hidden inputs: the next step projects them.
  if (step.tokens.size() != 1 || row.prompt_chunk) return Status::Ok();

  std::vector<float> k(static_cast<size_t>(head_->num_kv_heads()) * head_->head_dim());
  std::vector<float> q(static_cast<size_t>(head_->num_heads()) * head_->head_dim());
  SPC_RETURN_IF_ERROR(
      Project(state, step.tokens, step.start_position, q.data(), k.data()).WithContext(what));
  state.cache.Append(k.data(), 1);
  Publish(state, row.context);
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
  const int64_t count = static_cast<int64_t>(tokens.size());
  if (const int64_t unknown =
          head_->fused_hidden_size() > 0 ? state.fused.UnknownInputs(start, count) : 0;
      unknown > 0) {
    int64_t first_unknown = start;
    while (state.fused.KnowsAll(first_unknown, 1)) ++first_unknown;
    state.exact_end = std::min(state.exact_end, first_unknown);
    counters_.tokens_unknown_input += unknown;
  }
  const std::vector<float> hidden = head_->fused_hidden_size() > 0
                                        ? state.fused.InputsFor(start, tokens.size())
                                        : std::vector<float>();
  counters_.tokens_projected += static_cast<int64_t>(tokens.size());
  return head_->Project(tokens, static_cast<int32_t>(start), hidden, q, k, pool_);
}

void SpecontextPlanner::Adopt(SequenceState& state, std::span<const int32_t> context) {
  if (prefix_store_.capacity() == 0) return;
  state.block_keys = PrefixBlockKeys(context, kHeadPrefixBlockTokens);
  std::span<const float> tail;
  int64_t blocks = 0;
  for (; blocks < static_cast<int64_t>(state.block_keys.size()); ++blocks) {
    const auto block = prefix_store_.Find(
        state.block_keys[blocks],
        context.subspan(blocks * kHeadPrefixBlockTokens, kHeadPrefixBlockTokens));
    if (!block.has_value()) break;
    state.cache.Append(block->k.data(), kHeadPrefixBlockTokens);
    tail = block->tail_state;
  }
  const int64_t end = blocks * kHeadPrefixBlockTokens;
  // The next position's hidden input; a sequence that ran its prefix itself knows it already.
  if (end > 0 && !tail.empty() && state.fused.State(end - 1).empty()) {
    state.fused.Observe(end - 1, tail);
  }
  state.blocks_published = blocks;  // the store holds them
  counters_.tokens_adopted += end;
}

void SpecontextPlanner::Publish(SequenceState& state, std::span<const int32_t> context) {
  if (prefix_store_.capacity() == 0) return;
  const int64_t complete =
      std::min({state.cache.size(), state.exact_end, static_cast<int64_t>(context.size())}) /
      kHeadPrefixBlockTokens;
  if (state.blocks_published >= complete) return;
  if (static_cast<int64_t>(state.block_keys.size()) < complete) {
    state.block_keys = PrefixBlockKeys(context.first(complete * kHeadPrefixBlockTokens),
                                       kHeadPrefixBlockTokens, std::move(state.block_keys));
  }
  std::vector<float> k(static_cast<size_t>(kHeadPrefixBlockTokens) * head_->num_kv_heads() *
                       head_->head_dim());
  for (; state.blocks_published < complete; ++state.blocks_published) {
    const int64_t first = state.blocks_published * kHeadPrefixBlockTokens;
    const int64_t last = first + kHeadPrefixBlockTokens - 1;
    // A block a decode step completed waits for its last state, which that step produces.
    const std::span<const float> tail =
        head_->fused_hidden_size() > 0 ? state.fused.State(last) : std::span<const float>();
    if (head_->fused_hidden_size() > 0 && tail.empty()) return;
    state.cache.CopyRows(first, kHeadPrefixBlockTokens, k.data());
    prefix_store_.Put(state.block_keys[state.blocks_published],
                      context.subspan(first, kHeadPrefixBlockTokens), k, tail);
  }
}

void SpecontextPlanner::Release(uint64_t seq_id) { sequences_.erase(seq_id); }

bool SpecontextPlanner::RedoDense(double probability, double threshold) {
  return RedoDenseRow(probability, threshold, &counters_);
}

int64_t SpecontextPlanner::SparseBudget(AttentionMode mode, int64_t budget) const {
  return SparseBudgetOf(mode, budget, options_);
}

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
