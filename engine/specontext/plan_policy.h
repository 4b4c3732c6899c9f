// The policy both SpeContext planners (CPU and CUDA) apply to each row of a step, so they
// cannot drift apart: which rows run sparse and with what budget, the options they accept, and
// the rule that a sequence's head cache is fed by every one of its steps.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"
#include "engine/specontext/specontext_planner.h"
#include "engine/specontext/step_planner.h"

namespace specontext {

struct RowPolicy {
  bool sparse = false;  // the row keeps a head cache and may attend sparsely
  int64_t budget = 0;   // B for this row
};

Status ValidatePlannerOptions(const SpecontextPlannerOptions& options);
// The row's mode (kDefault takes the server's) and budget (0 takes the server's).
Result<RowPolicy> ResolvePlanRow(const PlanRow& row, const SpecontextPlannerOptions& options);
// StepPlanner::SparseBudget for both planners.
int64_t SparseBudgetOf(AttentionMode mode, int64_t budget, const SpecontextPlannerOptions& options);
// StepPlanner::RedoDense for both planners: below the threshold, counted.
bool RedoDenseRow(double probability, double threshold, SpecontextCounters* counters);
// Whether any row resolves to sparse mode (a row with a bad budget counts: Plan reports it).
bool AnySparse(std::span<const PlanRow> rows, const SpecontextPlannerOptions& options);
// The positions the head must project before the step's own tokens: [held, start_position)
// from the row's context (earlier prefill chunks, a prefix adopted from the prefix cache). A
// step below what the head holds (a recompute after preemption) needs none: the caller
// truncates to start_position.
Result<std::span<const int32_t>> MissingContext(const PlanRow& row, int64_t start_position,
                                                int64_t held, const std::string& what);

}  // namespace specontext
