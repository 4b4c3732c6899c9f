#include <algorithm>
#include <array>
#include <string_view>

#include "engine/eval/task_families.h"

namespace specontext::eval {

namespace {

constexpr std::array<std::string_view, 24> kKeyAdjectives = {
    "brave",  "silent", "golden", "hidden", "curious", "ancient", "frozen",  "lucky",
    "purple", "hollow", "swift",  "tiny",   "rusty",   "shiny",   "sleepy",  "wild",
    "clever", "humble", "noisy",  "proud",  "misty",   "velvet",  "crimson", "lonely"};
constexpr std::array<std::string_view, 24> kKeyNouns = {
    "lantern", "violin", "harbor", "falcon",  "teapot",  "compass", "castle", "pebble",
    "ribbon",  "anchor", "candle", "dragon",  "mirror",  "saddle",  "tunnel", "quartz",
    "bicycle", "orchid", "parrot", "blanket", "whistle", "ladder",  "kettle", "glacier"};

// Distinct keys such as "brave-lantern".
std::vector<std::string> DrawKeys(EvalRng& rng, int count) {
  std::vector<std::string> keys;
  while (static_cast<int>(keys.size()) < count) {
    std::string key = std::string(kKeyAdjectives[rng.Below(kKeyAdjectives.size())]) + "-" +
                      std::string(kKeyNouns[rng.Below(kKeyNouns.size())]);
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(std::move(key));
  }
  return keys;
}

std::string JoinAnd(const std::vector<std::string>& items) {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += i + 1 == items.size() ? " and " : ", ";
    text += items[i];
  }
  return text;
}

struct Needle {
  std::string key;
  std::string value;
  double depth = 0.0;
};

}  // namespace

TaskBuilder NiahTask(NiahKind kind, EvalRng& rng) {
  const bool uuid = kind == NiahKind::kUuid;
  const int keys_count = kind == NiahKind::kMultiKey || kind == NiahKind::kMultiQuery ? 4 : 1;
  const int values_per_key = kind == NiahKind::kMultiValue ? 4 : 1;
  const std::vector<std::string> keys = DrawKeys(rng, keys_count);
  std::vector<Needle> needles;
  for (const std::string& key : keys) {
    for (int v = 0; v < values_per_key; ++v) {
      needles.push_back({key, uuid ? rng.Uuid() : rng.Digits(7), rng.Uniform()});
    }
  }
  TaskText text;
  const std::string what = uuid ? "special magic UUID" : "special magic number";
  if (kind == NiahKind::kSingle || kind == NiahKind::kMultiKey || kind == NiahKind::kUuid) {
    const Needle& asked = needles[rng.Below(needles.size())];
    text.expected = {asked.value};
    text.rule = ScoreRule::kFirstWord;
    text.max_tokens = uuid ? 48 : 16;
    text.answer_prefix = "The " + what + " for " + asked.key + " is";
    text.user = "What is the " + what + " for " + asked.key + " mentioned in the text above?";
  } else {
    std::vector<std::string> asked_keys =
        kind == NiahKind::kMultiValue ? std::vector<std::string>{keys[0]} : keys;
    for (const Needle& needle : needles) text.expected.push_back(needle.value);
    text.rule = ScoreRule::kAllOf;
    text.max_tokens = 64;
    text.single_line = false;
    text.answer_prefix = "The " + what + "s for " + JoinAnd(asked_keys) + " are";
    text.user = "What are all the " + what + "s for " + JoinAnd(asked_keys) +
                " mentioned in the text above?";
  }
  const std::string intro = "Some " + what +
                            "s are hidden in the following text. Memorize them: I will ask you "
                            "about them afterwards.\n\n";
  const FillerText filler(rng.Next());
  std::vector<Insertion> insertions;
  for (const Needle& needle : needles) {
    insertions.push_back({needle.depth, "One of the " + what + "s for " + needle.key +
                                            " is: " + needle.value + "."});
  }
  return [text, intro, filler, insertions](int units) -> Result<TaskText> {
    TaskText sized = text;
    sized.user =
        intro +
        JoinWithInsertions([&](uint64_t i) { return filler.Sentence(i); }, units, insertions, " ") +
        "\n\n" + text.user;
    return sized;
  };
}

}  // namespace specontext::eval
