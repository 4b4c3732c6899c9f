#include "engine/eval/scoring.h"

#include <cctype>

namespace specontext::eval {

namespace {

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
}

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::string FirstWord(std::string_view answer) {
  size_t begin = 0;
  while (begin < answer.size() && !IsWordChar(answer[begin])) begin++;
  size_t end = begin;
  while (end < answer.size() && IsWordChar(answer[end])) end++;
  return std::string(answer.substr(begin, end - begin));
}

bool ContainsWord(std::string_view text, std::string_view needle) {
  if (needle.empty() || needle.size() > text.size()) return false;
  for (size_t at = 0; at + needle.size() <= text.size(); ++at) {
    if (!EqualsIgnoreCase(text.substr(at, needle.size()), needle)) continue;
    const bool starts = at == 0 || !IsWordChar(text[at - 1]);
    const size_t after = at + needle.size();
    const bool ends = after == text.size() || !IsWordChar(text[after]);
    if (starts && ends) return true;
  }
  return false;
}

double Score(ScoreRule rule, const std::vector<std::string>& expected, std::string_view answer) {
  if (expected.empty()) return 0.0;
  if (rule == ScoreRule::kFirstWord) {
    return EqualsIgnoreCase(FirstWord(answer), expected.front()) ? 1.0 : 0.0;
  }
  int found = 0;
  for (const std::string& item : expected) found += ContainsWord(answer, item) ? 1 : 0;
  return static_cast<double>(found) / static_cast<double>(expected.size());
}

}  // namespace specontext::eval
