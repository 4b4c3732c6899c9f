// Scoring a generated answer against a task's expected strings (see ScoreRule).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/eval/eval_task.h"

namespace specontext::eval {

// The first word of `answer`: the first maximal run of ASCII letters, digits, '-' and '_'.
std::string FirstWord(std::string_view answer);

// Whether `needle` occurs in `text` case-insensitively with no word character right before or
// after it, so "1234" is not found in "12345".
bool ContainsWord(std::string_view text, std::string_view needle);

// A score in [0, 1]: 1 or 0 for kFirstWord, the fraction of expected strings found for kAllOf.
double Score(ScoreRule rule, const std::vector<std::string>& expected, std::string_view answer);

}  // namespace specontext::eval
