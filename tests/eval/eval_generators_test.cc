// Generated tasks hit the requested token length with real tokenizers, are deterministic under a
// seed, and carry their needles exactly once with answers the scorer can parse.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <string>

#include "engine/eval/haystack.h"
#include "engine/eval/scoring.h"
#include "engine/eval/task_registry.h"
#include "server/serving_model.h"
#include "tests/eval/eval_test_support.h"

namespace specontext::eval {
namespace {

namespace fs = std::filesystem;

size_t CountOccurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    count++;
  }
  return count;
}

// Every task at `lengths`: within tolerance, needles present, answers parseable.
void CheckAllTasks(const PromptFormat& format, std::initializer_list<int> lengths) {
  for (const TaskInfo& info : AllTasks()) {
    for (int length : lengths) {
      auto task = GenerateTask(format, info.name, length, 0, 7);
      ASSERT_TRUE(task.ok()) << task.status().ToString();
      const int total = static_cast<int>(task->prompt_tokens.size()) + task->text.max_tokens;
      EXPECT_LE(total, length) << info.name;
      EXPECT_GE(total, length - LengthTolerance(length)) << info.name;
      auto reencoded = format.tokenizer().Encode(task->prompt_text, false);
      ASSERT_TRUE(reencoded.ok());
      EXPECT_EQ(*reencoded, task->prompt_tokens) << info.name;
      ASSERT_FALSE(task->text.expected.empty()) << info.name;
      EXPECT_TRUE(task->prompt_text.ends_with(task->text.answer_prefix)) << info.name;
      for (const std::string& expected : task->text.expected) {
        EXPECT_TRUE(ContainsWord(task->text.user, expected)) << info.name << ": " << expected;
        // A correct answer scores full marks under the task's own rule.
        EXPECT_EQ(FirstWord(" " + expected + "."), expected) << info.name;
      }
      EXPECT_DOUBLE_EQ(
          Score(task->text.rule, task->text.expected,
                " " + task->text.expected[0] +
                    (task->text.expected.size() > 1 ? ", " + task->text.expected[1] : "")),
          task->text.expected.size() > 2 ? 2.0 / task->text.expected.size() : 1.0)
          << info.name;
    }
  }
}

TEST(EvalGeneratorsTest, SmolLm2LengthsNeedlesAndAnswers) {
  const fs::path dir = server::DefaultModelPath();
  auto loaded = testing::LoadTokenizerDir(dir);
  if (!loaded) GTEST_SKIP() << "default model not prepared at " << dir;
  ASSERT_TRUE(loaded->chat_template.has_value());
  CheckAllTasks(loaded->Format(), {1024, 4096});
}

TEST(EvalGeneratorsTest, Llama3TokenizerLengths) {
  const fs::path dir = fs::path(SPECONTEXT_SOURCE_DIR "/../shared/tokenizers/llama3");
  auto loaded = testing::LoadTokenizerDir(dir);
  if (!loaded) GTEST_SKIP() << "shared tokenizers not found at " << dir;
  CheckAllTasks(loaded->Format(), {2048});
}

TEST(EvalGeneratorsTest, DeterministicUnderSeed) {
  auto tokenizer =
      Tokenizer::FromFile(SPECONTEXT_SOURCE_DIR "/tests/eval/data/byte_tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const PromptFormat format(tokenizer->get(), nullptr, {});
  for (const TaskInfo& info : AllTasks()) {
    auto a = GenerateTask(format, info.name, 2048, 1, 42);
    auto b = GenerateTask(format, info.name, 2048, 1, 42);
    auto other_seed = GenerateTask(format, info.name, 2048, 1, 43);
    auto other_index = GenerateTask(format, info.name, 2048, 2, 42);
    ASSERT_TRUE(a.ok() && b.ok() && other_seed.ok() && other_index.ok()) << info.name;
    EXPECT_EQ(a->prompt_text, b->prompt_text) << info.name;
    EXPECT_EQ(a->text.expected, b->text.expected) << info.name;
    EXPECT_NE(a->prompt_text, other_seed->prompt_text) << info.name;
    EXPECT_NE(a->prompt_text, other_index->prompt_text) << info.name;
  }
}

TEST(EvalGeneratorsTest, SingleNeedlesAppearOnce) {
  auto tokenizer =
      Tokenizer::FromFile(SPECONTEXT_SOURCE_DIR "/tests/eval/data/byte_tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const PromptFormat format(tokenizer->get(), nullptr, {});
  for (int index = 0; index < 5; ++index) {
    auto passkey = GenerateTask(format, "passkey", 4096, index, 1);
    ASSERT_TRUE(passkey.ok());
    const std::string& key = passkey->text.expected[0];
    EXPECT_EQ(key.size(), 5u);
    // Stated twice in its one needle sentence, nowhere else.
    EXPECT_EQ(CountOccurrences(passkey->text.user, key), 2u);
    EXPECT_EQ(CountOccurrences(passkey->text.user, "The pass key is " + key), 1u);

    auto niah = GenerateTask(format, "niah_single", 4096, index, 1);
    ASSERT_TRUE(niah.ok());
    EXPECT_EQ(CountOccurrences(niah->text.user, niah->text.expected[0]), 1u);
    EXPECT_EQ(niah->text.expected[0].size(), 7u);

    auto kv = GenerateTask(format, "kv_retrieval", 4096, index, 1);
    ASSERT_TRUE(kv.ok());
    EXPECT_EQ(CountOccurrences(kv->text.user, kv->text.expected[0]), 1u);
    EXPECT_EQ(kv->text.expected[0].size(), 36u);
  }
}

TEST(EvalGeneratorsTest, WordCountsMakeTheAnswerUnambiguous) {
  auto tokenizer =
      Tokenizer::FromFile(SPECONTEXT_SOURCE_DIR "/tests/eval/data/byte_tokenizer.json");
  ASSERT_TRUE(tokenizer.ok());
  const PromptFormat format(tokenizer->get(), nullptr, {});
  for (const char* name : {"common_words", "frequent_words"}) {
    auto task = GenerateTask(format, name, 8192, 0, 3);
    ASSERT_TRUE(task.ok()) << task.status().ToString();
    // Every expected word occurs more often than any other word of the haystack.
    std::map<std::string, int> counts;
    const std::string& text = task->text.user;
    for (size_t at = 0; at < text.size();) {
      const std::string word = FirstWord(text.substr(at));
      const size_t found = text.find(word, at);
      if (word.empty()) break;
      if (word.size() == 6 && std::islower(static_cast<unsigned char>(word[0]))) counts[word]++;
      at = found + word.size();
    }
    int least_expected = 1 << 30;
    for (const std::string& word : task->text.expected) {
      least_expected = std::min(least_expected, counts[word]);
      counts.erase(word);
    }
    int most_other = 0;
    for (const auto& [word, count] : counts) most_other = std::max(most_other, count);
    EXPECT_GT(least_expected, most_other) << name;
  }
}

TEST(EvalGeneratorsTest, RejectsUnknownTasksAndTooShortLengths) {
  auto tokenizer =
      Tokenizer::FromFile(SPECONTEXT_SOURCE_DIR "/tests/eval/data/byte_tokenizer.json");
  ASSERT_TRUE(tokenizer.ok());
  const PromptFormat format(tokenizer->get(), nullptr, {});
  auto unknown = GenerateTask(format, "no_such_task", 1024, 0, 0);
  EXPECT_FALSE(unknown.ok());
  auto too_short = GenerateTask(format, "common_words", 128, 0, 0);
  ASSERT_FALSE(too_short.ok());
  EXPECT_NE(too_short.status().ToString().find("common_words"), std::string::npos);
}

}  // namespace
}  // namespace specontext::eval
