// The haystack every retrieval task hides its needles in, and the sizing that makes a prompt hit a
// requested token count with the model's own tokenizer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/eval/eval_task.h"
#include "engine/eval/prompt_format.h"

namespace specontext::eval {

// Plain, digit-free sentences ("The river is calm. Here we go."): repetitive enough that a small
// model is not distracted by them, varied enough that the text is not one repeated line.
// Sentence i is a pure function of (seed, i).
class FillerText {
 public:
  explicit FillerText(uint64_t seed) : seed_(seed) {}
  std::string Sentence(uint64_t index) const;

 private:
  uint64_t seed_;
};

// A needle to place at a relative depth of the haystack (0: before the first unit, 1: after the
// last).
struct Insertion {
  double depth = 0.0;
  std::string text;
};

// `units` haystack units joined by `separator`, each insertion placed at its depth.
std::string JoinWithInsertions(const std::function<std::string(uint64_t)>& unit, int units,
                               std::vector<Insertion> insertions, std::string_view separator);

// Builds a family's task text for a haystack of `units` units.
using TaskBuilder = std::function<Result<TaskText>(int units)>;

struct SizedTask {
  TaskText text;
  RenderedPrompt prompt;
  int units = 0;
};

// The largest haystack whose rendered prompt has at most `max_prompt_tokens` tokens (prompt
// length grows with units; one unit is the sizing step). Fails when even an empty haystack is too
// long.
Result<SizedTask> SizeToTokens(const PromptFormat& format, int max_prompt_tokens,
                               const TaskBuilder& build);

// How far below the requested length a sized task may fall: one haystack unit is at most a few
// dozen tokens, and sizing never overshoots.
inline int LengthTolerance(int length) { return std::max(80, length / 32); }

}  // namespace specontext::eval
