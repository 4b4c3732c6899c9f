#include <string>
#include <vector>

#include "engine/eval/task_families.h"

namespace specontext::eval {

namespace {

constexpr std::string_view kNoiseIntro =
    "There is an important piece of information hidden inside a lot of irrelevant text. Find it "
    "and memorize it. I will quiz you about it.\n\n";

// A value stated twice in a sentence hidden in filler, asked for at the end.
TaskBuilder HiddenValueTask(EvalRng& rng, const std::string& value, const std::string& name,
                            int max_tokens) {
  TaskText text;
  text.expected = {value};
  text.rule = ScoreRule::kFirstWord;
  text.max_tokens = max_tokens;
  text.answer_prefix = "The " + name + " is";
  const std::vector<Insertion> insertions = {
      {rng.Uniform(),
       "The " + name + " is " + value + ". Remember it. " + value + " is the " + name + "."}};
  const FillerText filler(rng.Next());
  return [text, filler, insertions, name](int units) -> Result<TaskText> {
    TaskText sized = text;
    sized.user =
        std::string(kNoiseIntro) +
        JoinWithInsertions([&](uint64_t i) { return filler.Sentence(i); }, units, insertions, " ") +
        "\n\nWhat is the " + name + "?";
    return sized;
  };
}

std::string KvPair(const std::string& key, const std::string& value) {
  return "\"" + key + "\": \"" + value + "\"";
}

}  // namespace

TaskBuilder PasskeyTask(EvalRng& rng) {
  const std::string value = rng.Digits(5);
  return HiddenValueTask(rng, value, "pass key", 16);
}

TaskBuilder NumberStringTask(EvalRng& rng) {
  const std::string value = rng.Digits(10);
  return HiddenValueTask(rng, value, "sequence of digits", 24);
}

TaskBuilder KvRetrievalTask(EvalRng& rng) {
  const std::string key = rng.Uuid();
  const std::string value = rng.Uuid();
  const double depth = rng.Uniform();
  const EvalRng pairs = rng.Fork(rng.Next());
  TaskText text;
  text.expected = {value};
  text.rule = ScoreRule::kFirstWord;
  text.max_tokens = 48;
  text.answer_prefix = "The value associated with the key \"" + key + "\" is";
  return [text, key, value, depth, pairs](int units) -> Result<TaskText> {
    auto pair = [&](uint64_t i) {
      EvalRng unit = pairs.Fork(i);
      return KvPair(unit.Uuid(), unit.Uuid());
    };
    TaskText sized = text;
    sized.user =
        "Extract the value corresponding to the specified key in the JSON object below.\n\n"
        "JSON data:\n{" +
        JoinWithInsertions(pair, units, {{depth, KvPair(key, value)}}, ", ") + "}\n\nKey: \"" +
        key + "\"\nWhat is the value associated with the specified key?";
    return sized;
  };
}

}  // namespace specontext::eval
