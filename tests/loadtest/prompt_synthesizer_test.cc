#include "loadtest/prompt_synthesizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "server/serving_model.h"

namespace specontext::loadtest {
namespace {

class PromptSynthesizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::filesystem::path file =
        std::filesystem::path(server::DefaultModelPath()) / "tokenizer.json";
    if (!std::filesystem::exists(file)) return;
    auto loaded = Tokenizer::FromFile(file);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    tokenizer_ = std::move(loaded).value().release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    if (tokenizer_ == nullptr) {
      GTEST_SKIP() << "the default model is not prepared at " << server::DefaultModelPath()
                   << " (scripts/prepare_default_model.sh)";
    }
  }

  int64_t Count(const std::string& text) const {
    auto ids = tokenizer_->Encode(text, /*add_special_tokens=*/true);
    EXPECT_TRUE(ids.ok());
    return ids.ok() ? static_cast<int64_t>(ids->size()) : -1;
  }

  static Tokenizer* tokenizer_;
};

Tokenizer* PromptSynthesizerTest::tokenizer_ = nullptr;

TEST_F(PromptSynthesizerTest, RandomPromptsHaveExactLengths) {
  for (int64_t length : {1, 2, 16, 64, 500, 2000}) {
    auto synthesizer =
        PromptSynthesizer::Create(*tokenizer_, {.input_len = length, .output_len = 16, .seed = 3});
    ASSERT_TRUE(synthesizer.ok()) << synthesizer.status().ToString();
    for (uint64_t index = 0; index < 5; ++index) {
      auto prompt = synthesizer->Make(index);
      ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
      EXPECT_EQ(prompt->input_tokens, length);
      EXPECT_EQ(Count(prompt->text), length) << prompt->text;
      EXPECT_EQ(prompt->output_tokens, 16);
    }
  }
}

TEST_F(PromptSynthesizerTest, RangeRatioStaysInBoundsAndIsExact) {
  auto synthesizer = PromptSynthesizer::Create(
      *tokenizer_, {.input_len = 100, .output_len = 20, .range_ratio = 0.5, .seed = 9});
  ASSERT_TRUE(synthesizer.ok());
  int64_t low = 1000, high = 0;
  for (uint64_t index = 0; index < 40; ++index) {
    auto prompt = synthesizer->Make(index);
    ASSERT_TRUE(prompt.ok());
    EXPECT_EQ(Count(prompt->text), prompt->input_tokens);
    EXPECT_GE(prompt->output_tokens, 10);
    EXPECT_LE(prompt->output_tokens, 30);
    low = std::min(low, prompt->input_tokens);
    high = std::max(high, prompt->input_tokens);
  }
  EXPECT_GE(low, 50);
  EXPECT_LE(high, 150);
  EXPECT_GT(high - low, 40);  // the range is actually used
}

TEST_F(PromptSynthesizerTest, DeterministicPerSeedAndIndex) {
  auto a = PromptSynthesizer::Create(*tokenizer_, {.input_len = 32, .seed = 5});
  auto b = PromptSynthesizer::Create(*tokenizer_, {.input_len = 32, .seed = 5});
  auto c = PromptSynthesizer::Create(*tokenizer_, {.input_len = 32, .seed = 6});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->Make(3)->text, b->Make(3)->text);
  EXPECT_NE(a->Make(3)->text, a->Make(4)->text);
  EXPECT_NE(a->Make(3)->text, c->Make(3)->text);
}

TEST_F(PromptSynthesizerTest, SharedPrefixGroups) {
  auto synthesizer = PromptSynthesizer::Create(*tokenizer_, {.kind = DatasetKind::kSharedPrefix,
                                                             .input_len = 24,
                                                             .prefix_len = 100,
                                                             .prefix_groups = 2,
                                                             .seed = 1});
  ASSERT_TRUE(synthesizer.ok()) << synthesizer.status().ToString();
  std::vector<std::string> texts;
  for (uint64_t index = 0; index < 4; ++index) {
    auto prompt = synthesizer->Make(index);
    ASSERT_TRUE(prompt.ok());
    EXPECT_EQ(prompt->input_tokens, 124);
    EXPECT_EQ(Count(prompt->text), 124);
    texts.push_back(prompt->text);
  }
  auto common = [](const std::string& x, const std::string& y) {
    size_t n = 0;
    while (n < x.size() && n < y.size() && x[n] == y[n]) ++n;
    return n;
  };
  // Requests 0 and 2 share group 0's prefix, 1 and 3 group 1's; the groups differ.
  EXPECT_GT(common(texts[0], texts[2]), 300u);
  EXPECT_GT(common(texts[1], texts[3]), 300u);
  EXPECT_LT(common(texts[0], texts[1]), 50u);
  EXPECT_NE(texts[0], texts[2]);
}

TEST_F(PromptSynthesizerTest, PasskeyPromptsHideTheKeyAtExactLength) {
  auto synthesizer = PromptSynthesizer::Create(
      *tokenizer_, {.kind = DatasetKind::kPasskey, .input_len = 1500, .output_len = 8, .seed = 2});
  ASSERT_TRUE(synthesizer.ok());
  for (uint64_t index = 0; index < 3; ++index) {
    auto prompt = synthesizer->Make(index);
    ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
    ASSERT_TRUE(prompt->expected_answer);
    EXPECT_EQ(prompt->expected_answer->size(), 5u);
    EXPECT_NE(prompt->text.find("The pass key is " + *prompt->expected_answer), std::string::npos);
    EXPECT_EQ(Count(prompt->text), 1500);
  }
  auto tiny = PromptSynthesizer::Create(
      *tokenizer_, {.kind = DatasetKind::kPasskey, .input_len = 10, .seed = 2});
  ASSERT_TRUE(tiny.ok());
  EXPECT_FALSE(tiny->Make(0).ok());
}

// Prose with numbers, punctuation and line breaks, so windows cut through words and merges.
std::string Prose(int sentences) {
  static const char* const kSubjects[] = {"The old mill", "A river pilot", "Our committee",
                                          "The 1987 survey", "Every lighthouse keeper"};
  static const char* const kVerbs[] = {"described", "measured", "could not explain", "argued about",
                                       "wrote down"};
  std::string text;
  for (int i = 0; i < sentences; ++i) {
    text += std::string(kSubjects[i % 5]) + " " + kVerbs[(i / 5) % 5] + " the " +
            std::to_string(i * 37 % 1000) + " boats near bend no. " + std::to_string(i) +
            (i % 7 == 6 ? ".\n\n" : "; ");
  }
  return text;
}

TEST_F(PromptSynthesizerTest, DocumentWindowsAreExactCutsOfTheText) {
  const std::string document = Prose(400);
  auto synthesizer = PromptSynthesizer::Create(*tokenizer_, {.kind = DatasetKind::kDocument,
                                                             .input_len = 700,
                                                             .range_ratio = 0.2,
                                                             .seed = 4,
                                                             .document = document});
  ASSERT_TRUE(synthesizer.ok()) << synthesizer.status().ToString();
  std::vector<std::string> texts;
  for (uint64_t index = 0; index < 6; ++index) {
    auto prompt = synthesizer->Make(index);
    ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
    EXPECT_EQ(Count(prompt->text), prompt->input_tokens);
    EXPECT_GE(prompt->input_tokens, 560);
    EXPECT_LE(prompt->input_tokens, 840);
    EXPECT_NE(document.find(prompt->text), std::string::npos) << "not a window of the document";
    texts.push_back(prompt->text);
  }
  std::sort(texts.begin(), texts.end());
  EXPECT_EQ(std::unique(texts.begin(), texts.end()), texts.end()) << "windows repeat";

  // Too short a document for the longest window is refused up front.
  EXPECT_FALSE(
      PromptSynthesizer::Create(
          *tokenizer_, {.kind = DatasetKind::kDocument, .input_len = 700, .document = Prose(20)})
          .ok());
}

TEST_F(PromptSynthesizerTest, RejectsImpossibleOptions) {
  EXPECT_FALSE(PromptSynthesizer::Create(*tokenizer_, {.input_len = 0}).ok());
  EXPECT_FALSE(PromptSynthesizer::Create(*tokenizer_, {.range_ratio = 1.0}).ok());
  EXPECT_FALSE(
      PromptSynthesizer::Create(*tokenizer_, {.kind = DatasetKind::kSharedPrefix, .prefix_len = 0})
          .ok());
}

}  // namespace
}  // namespace specontext::loadtest
