// Runs generated tasks through the engine's InferenceService, greedily, a few at a time, and
// scores each answer. The engine batches the concurrent requests as it does for any client.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "common/status.h"
#include "engine/eval/eval_task.h"
#include "engine/tokenizer/tokenizer.h"
#include "scheduler/request.h"

namespace specontext::eval {

struct RunOptions {
  int concurrency = 2;  // requests in flight at once
  // Called after each task, from the worker that ran it (calls are serialized).
  std::function<void(const EvalTask&, const TaskOutcome&, size_t done)> on_done;
};

// Runs one task: greedy, up to its max_tokens, stopping at the first line break for one-line
// answers.
Result<TaskOutcome> RunTask(InferenceService& engine, const Tokenizer& tokenizer,
                            const EvalTask& task);

// Outcomes in the order of `tasks`. The first failure stops the run and is returned.
Result<std::vector<TaskOutcome>> RunTasks(InferenceService& engine, const Tokenizer& tokenizer,
                                          std::span<const EvalTask> tasks,
                                          const RunOptions& options);

}  // namespace specontext::eval
