#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "engine/eval/task_families.h"

namespace specontext::eval {

namespace {

// Common words appear this often at every length; each haystack unit is one uncommon word that
// appears kUncommonRepeats times, so the ten common words stay the clear top ten.
constexpr int kCommonWords = 10;
constexpr int kCommonRepeats = 6;
constexpr int kUncommonRepeats = 2;

constexpr int kFrequentWords = 3;

}  // namespace

TaskBuilder CommonWordsTask(EvalRng& rng) {
  const EvalRng words = rng.Fork(rng.Next());
  const uint64_t order_seed = rng.Next();
  TaskText text;
  for (int i = 0; i < kCommonWords; ++i) text.expected.push_back(words.DistinctWord(i));
  text.rule = ScoreRule::kAllOf;
  text.max_tokens = 80;
  text.single_line = false;
  text.answer_prefix = "Answer: The top 10 words that appear most often in the list are:";
  return [text, words, order_seed](int units) -> Result<TaskText> {
    if (units + kCommonWords >= static_cast<int>(EvalRng::kDistinctWords)) {
      return InvalidArgument("the common-words task cannot grow to " + std::to_string(units) +
                             " distinct words");
    }
    std::vector<std::string> list;
    for (const std::string& word : text.expected) list.insert(list.end(), kCommonRepeats, word);
    for (int i = 0; i < units; ++i) {
      list.insert(list.end(), kUncommonRepeats, words.DistinctWord(kCommonWords + i));
    }
    EvalRng order(order_seed);
    order.Shuffle(list);
    TaskText sized = text;
    sized.user =
        "Below is a numbered list of words. Some of them appear more often than others. "
        "Memorize the ones that appear most often.\n";
    for (size_t i = 0; i < list.size(); ++i) {
      sized.user += std::to_string(i + 1) + ". " + list[i] + "\n";
    }
    sized.user += "\nQuestion: What are the 10 most common words in the list above?";
    return sized;
  };
}

TaskBuilder FrequentWordsTask(EvalRng& rng) {
  const EvalRng words = rng.Fork(rng.Next());
  const uint64_t order_seed = rng.Next();
  TaskText text;
  for (int i = 0; i < kFrequentWords; ++i) text.expected.push_back(words.DistinctWord(i));
  text.rule = ScoreRule::kAllOf;
  text.max_tokens = 32;
  text.answer_prefix =
      "Answer: According to the coded text above, the three most frequent coded words are:";
  return [text, words, order_seed](int units) -> Result<TaskText> {
    // Fixed shares for the top three (at least 6, 5 and 4 times); every other word appears at
    // most twice, so the answer never ties whatever the length.
    const std::array<int, kFrequentWords> counts = {
        std::max(6, units * 12 / 100), std::max(5, units * 9 / 100), std::max(4, units * 6 / 100)};
    const int rest = std::max(0, units - counts[0] - counts[1] - counts[2]);
    const int others = (rest + 1) / 2;
    if (others + kFrequentWords >= static_cast<int>(EvalRng::kDistinctWords)) {
      return InvalidArgument("the frequent-words task cannot grow to " + std::to_string(units) +
                             " words");
    }
    std::vector<std::string> sequence;
    for (int i = 0; i < kFrequentWords; ++i) {
      sequence.insert(sequence.end(), counts[i], text.expected[i]);
    }
    for (int i = 0; i < rest; ++i) sequence.push_back(words.DistinctWord(kFrequentWords + i / 2));
    EvalRng order(order_seed);
    order.Shuffle(sequence);
    TaskText sized = text;
    sized.user =
        "Read the following coded text and track how often each coded word appears. Find the "
        "three most frequent coded words.\n\n";
    for (size_t i = 0; i < sequence.size(); ++i) {
      sized.user += (i > 0 ? " " : "") + sequence[i];
    }
    sized.user += "\n\nQuestion: What are the three most frequent coded words in the text above?";
    return sized;
  };
}

}  // namespace specontext::eval
