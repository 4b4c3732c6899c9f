// One generated long-context task: the prompt the model sees, the answer it should give and how
// the answer is scored. Generators (one file per task family) fill these offline from nothing but
// the model's tokenizer and chat template.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace specontext::eval {

enum class ScoreRule {
  // The first word of the answer (a maximal run of letters, digits, '-' and '_') equals the one
  // expected string: InfiniteBench's exact match for passkey, number and KV retrieval.
  kFirstWord,
  // The fraction of expected strings that occur in the answer as whole words, case-insensitively:
  // RULER's string_match_all, for tasks with several answers.
  kAllOf,
};

// What a family generator produces for a given haystack size, before sizing and templating.
struct TaskText {
  std::string user;           // the user message: instructions, haystack, question
  std::string answer_prefix;  // the start of the assistant's reply, so the answer comes next
  std::vector<std::string> expected;
  ScoreRule rule = ScoreRule::kFirstWord;
  int max_tokens = 16;  // enough for the expected answer with some slack
  // The answer is one line: generation stops at the first line break after some text.
  bool single_line = true;
};

struct EvalTask {
  std::string task;  // registry name, e.g. "passkey"
  int length = 0;    // requested length: prompt tokens plus max_tokens
  int index = 0;     // sample number within (task, length)
  uint64_t seed = 0;
  TaskText text;
  std::string prompt_text;  // the rendered prompt (chat template and answer prefix included)
  std::vector<int32_t> prompt_tokens;
};

// The scored answer of one task.
struct TaskOutcome {
  std::string answer;  // generated text after the answer prefix
  double score = 0.0;  // in [0, 1]
  int generated_tokens = 0;
  double seconds = 0.0;
};

}  // namespace specontext::eval
