#include <algorithm>
#include <string>
#include <vector>

#include "engine/eval/task_families.h"

namespace specontext::eval {

namespace {

constexpr int kChainLength = 5;

std::string VariableName(EvalRng& rng) {
  std::string name;
  for (int i = 0; i < 5; ++i) name.push_back(static_cast<char>('A' + rng.Below(26)));
  return name;
}

}  // namespace

TaskBuilder VariableTrackingTask(EvalRng& rng) {
  std::vector<std::string> names;
  while (static_cast<int>(names.size()) < kChainLength) {
    std::string name = VariableName(rng);
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  const std::string value = rng.Digits(5);
  // Depths sorted so that every assignment comes after the one it copies.
  std::vector<double> depths;
  for (int i = 0; i < kChainLength; ++i) depths.push_back(rng.Uniform());
  std::sort(depths.begin(), depths.end());
  std::vector<Insertion> insertions;
  for (int i = 0; i < kChainLength; ++i) {
    insertions.push_back(
        {depths[i], "VAR " + names[i] + " = " + (i == 0 ? value : "VAR " + names[i - 1]) + "."});
  }
  TaskText text;
  text.expected = names;
  text.rule = ScoreRule::kAllOf;
  text.max_tokens = 40;
  text.answer_prefix = "Answer: According to the chain of assignments in the text above, " +
                       std::to_string(kChainLength) + " variables are assigned the value " + value +
                       ". They are:";
  const FillerText filler(rng.Next());
  return [text, filler, insertions, value](int units) -> Result<TaskText> {
    TaskText sized = text;
    sized.user =
        "Memorize and track the chain of variable assignments hidden in the following "
        "text.\n\n" +
        JoinWithInsertions([&](uint64_t i) { return filler.Sentence(i); }, units, insertions, " ") +
        "\n\nQuestion: Find all variables that are assigned the value " + value +
        " in the text above.";
    return sized;
  };
}

}  // namespace specontext::eval
