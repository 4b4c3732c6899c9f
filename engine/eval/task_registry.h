// Task names, and generating sized, rendered samples of them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/eval/eval_task.h"
#include "engine/eval/prompt_format.h"

namespace specontext::eval {

struct TaskInfo {
  std::string_view name;
  std::string_view description;
};

// Every task, in report order.
std::span<const TaskInfo> AllTasks();

// Sample `index` of `task` at `length` tokens (prompt plus the task's max_tokens, the prompt
// within LengthTolerance(length) below that). The sample depends only on (seed, task, length,
// index), not on which other tasks or lengths are generated with it.
Result<EvalTask> GenerateTask(const PromptFormat& format, std::string_view task, int length,
                              int index, uint64_t seed);

// Every (task, length, sample) combination, tasks outermost.
Result<std::vector<EvalTask>> GenerateTasks(const PromptFormat& format,
                                            std::span<const std::string> tasks,
                                            std::span<const int> lengths, int samples,
                                            uint64_t seed);

}  // namespace specontext::eval
