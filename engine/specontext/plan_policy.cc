#include "engine/specontext/plan_policy.h"

#include <algorithm>

namespace specontext {

Status ValidatePlannerOptions(const SpecontextPlannerOptions& options) {
  if (options.server_mode == AttentionMode::kDefault) {
    return InvalidArgument("specontext planner: the server mode must be dense or specontext");
  }
  if (options.budget <= 0) return InvalidArgument("specontext planner: budget must be > 0");
  if (options.sink_tokens < 0 || options.recent_window < 1) {
    // Every list ends with the token's own position (batch validation), which the window keeps.
    return InvalidArgument(
        "specontext planner: sink_tokens must be >= 0 and recent_window >= 1 (the token's own "
        "position)");
  }
  if (!(options.fallback_mass_threshold >= 0.0 && options.fallback_mass_threshold <= 1.0)) {
    return InvalidArgument("specontext planner: fallback_mass_threshold must be in [0, 1]");
  }
  if (!(options.redo_probability >= 0.0 && options.redo_probability <= 1.0)) {
    return InvalidArgument("specontext planner: redo_probability must be in [0, 1]");
  }
  if (options.dense_layers < 0) {
    return InvalidArgument("specontext planner: dense_layers must be >= 0");
  }
  if (!(options.memory_decay >= 0.0 && options.memory_decay <= 1.0)) {
    return InvalidArgument("specontext planner: memory_decay must be in [0, 1]");
  }
  return Status::Ok();
}

Result<RowPolicy> ResolvePlanRow(const PlanRow& row, const SpecontextPlannerOptions& options) {
  const AttentionMode mode = row.mode == AttentionMode::kDefault ? options.server_mode : row.mode;
  if (mode == AttentionMode::kDense) return RowPolicy{};
  if (row.budget < 0) return InvalidArgument("specontext planner: negative budget");
  return RowPolicy{true, row.budget > 0 ? row.budget : options.budget};
}

int64_t SparseBudgetOf(AttentionMode mode, int64_t budget,
                       const SpecontextPlannerOptions& options) {
  const Result<RowPolicy> policy = ResolvePlanRow(PlanRow{.mode = mode, .budget = budget}, options);
  return policy.ok() && policy->sparse ? policy->budget : 0;
}

bool RedoDenseRow(double probability, double threshold, SpecontextCounters* counters) {
  if (!(probability < threshold)) return false;
  ++counters->redo_steps;
  return true;
}

bool AnySparse(std::span<const PlanRow> rows, const SpecontextPlannerOptions& options) {
  return std::any_of(rows.begin(), rows.end(), [&](const PlanRow& row) {
    const Result<RowPolicy> policy = ResolvePlanRow(row, options);
    return !policy.ok() || policy->sparse;
  });
}

Result<std::span<const int32_t>> MissingContext(const PlanRow& row, int64_t start_position,
                                                int64_t held, const std::string& what) {
  if (start_position < 0) return InvalidArgument(what + ": negative start_position");
  if (start_position <= held) return std::span<const int32_t>();
  if (static_cast<int64_t>(row.context.size()) < start_position) {
    return FailedPrecondition(what + ": the step starts at position " +
                              std::to_string(start_position) + " but the retrieval head holds " +
                              std::to_string(held) + " positions and the row's context only " +
                              std::to_string(row.context.size()));
  }
  return row.context.subspan(held, start_position - held);
}

}  // namespace specontext
