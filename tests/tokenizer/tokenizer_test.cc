// Loading errors, bad input and the public lookups, on small hand-written tokenizer files.

#include "engine/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "engine/tokenizer/utf8.h"

namespace specontext {
namespace {

namespace fs = std::filesystem;

// A byte-level BPE over all 256 bytes with a few merges and two special tokens.
boost::json::object ByteLevelSpec() {
  boost::json::object vocab;
  for (int b = 0; b < 256; ++b) {
    std::string token;
    tok::AppendUtf8(tok::ByteToChar(static_cast<uint8_t>(b)), token);
    vocab[token] = b;
  }
  vocab["he"] = 256;
  vocab["ll"] = 257;
  vocab["hell"] = 258;
  vocab["hello"] = 259;
  boost::json::object model{{"type", "BPE"},
                            {"vocab", vocab},
                            {"merges", boost::json::array{"h e", "l l", "he ll", "hell o"}}};
  boost::json::array added;
  added.push_back({{"id", 260}, {"content", "<bos>"}, {"special", true}, {"normalized", false}});
  added.push_back({{"id", 261}, {"content", "<eos>"}, {"special", true}, {"normalized", false}});
  return {{"model", model},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single", boost::json::array{{{"SpecialToken", {{"id", "<bos>"}}}},
                                          {{"Sequence", {{"id", "A"}}}}}},
            {"special_tokens", {{"<bos>", {{"id", "<bos>"}, {"ids", {260}}}}}}}}};
}

std::unique_ptr<Tokenizer> Load(const boost::json::object& spec, std::string_view config = {}) {
  auto tokenizer = Tokenizer::FromJson(boost::json::serialize(spec), config);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  return tokenizer.ok() ? std::move(tokenizer).value() : nullptr;
}

Status LoadError(const boost::json::object& spec) {
  return Tokenizer::FromJson(boost::json::serialize(spec)).status();
}

TEST(TokenizerTest, EncodesWithMergesAndTemplate) {
  auto tokenizer = Load(ByteLevelSpec());
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(*tokenizer->Encode("hello", false), (std::vector<int32_t>{259}));
  EXPECT_EQ(*tokenizer->Encode("hello", true), (std::vector<int32_t>{260, 259}));
  // Added tokens are cut out before pre-tokenization; id 32 is the space byte.
  EXPECT_EQ(*tokenizer->Encode("<eos>hell", false), (std::vector<int32_t>{261, 258}));
  EXPECT_EQ(*tokenizer->Decode(std::vector<int32_t>{260, 259, 32, 261}, false), "<bos>hello <eos>");
  EXPECT_EQ(*tokenizer->Decode(std::vector<int32_t>{260, 259, 32, 261}, true), "hello ");
}

TEST(TokenizerTest, LookupsAndConfigIds) {
  auto tokenizer =
      Load(ByteLevelSpec(), R"({"bos_token": "<bos>", "eos_token": {"content": "<eos>"}})");
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->VocabSize(), 262u);
  EXPECT_EQ(tokenizer->TokenToId("hello"), 259);
  EXPECT_EQ(tokenizer->TokenToId("<eos>"), 261);
  EXPECT_EQ(tokenizer->TokenToId("absent"), std::nullopt);
  EXPECT_EQ(tokenizer->IdToToken(258), "hell");
  EXPECT_EQ(tokenizer->IdToToken(9999), std::nullopt);
  EXPECT_TRUE(tokenizer->IsSpecial(260));
  EXPECT_FALSE(tokenizer->IsSpecial(259));
  EXPECT_EQ(tokenizer->bos_id(), 260);
  EXPECT_EQ(tokenizer->eos_id(), 261);
  EXPECT_EQ(tokenizer->pad_id(), std::nullopt);
}

TEST(TokenizerTest, RejectsBadInputText) {
  auto tokenizer = Load(ByteLevelSpec());
  ASSERT_NE(tokenizer, nullptr);
  const auto encoded = tokenizer->Encode("ok \xC3(", false);
  EXPECT_EQ(encoded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(encoded.status().message().find("UTF-8"), std::string::npos);
  const auto decoded = tokenizer->Decode(std::vector<int32_t>{259, 5000}, false);
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find("5000"), std::string::npos);
  EXPECT_EQ(tokenizer->Decode(std::vector<int32_t>{-1}, false).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(TokenizerTest, MissingAndBrokenFiles) {
  const auto missing = Tokenizer::FromFile("/nonexistent/dir/tokenizer.json");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/dir/tokenizer.json"), std::string::npos);

  const fs::path dir = fs::path(::testing::TempDir()) / "tokenizer_test_broken";
  fs::create_directories(dir);
  const std::string full = boost::json::serialize(ByteLevelSpec());
  std::ofstream(dir / "tokenizer.json") << full.substr(0, full.size() / 2);
  const auto truncated = Tokenizer::FromFile(dir / "tokenizer.json");
  EXPECT_EQ(truncated.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(truncated.status().message().find("tokenizer.json"), std::string::npos);

  std::ofstream(dir / "tokenizer.json") << full;
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "<nope>"})";
  const auto bad_config = Tokenizer::FromFile(dir / "tokenizer.json");
  EXPECT_EQ(bad_config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_config.status().message().find("tokenizer_config.json"), std::string::npos);
  EXPECT_NE(bad_config.status().message().find("<nope>"), std::string::npos);

  EXPECT_EQ(Tokenizer::FromJson("[1, 2]").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(Tokenizer::FromJson("").status().code(), StatusCode::kDataLoss);
}

TEST(TokenizerTest, NamesUnsupportedComponents) {
  struct Case {
    const char* field;
    boost::json::value value;
    const char* name;
  };
  const Case cases[] = {
      {"normalizer", {{"type", "BertNormalizer"}}, "BertNormalizer"},
      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}, "BertPreTokenizer"},
      {"decoder", {{"type", "WordPiece"}}, "WordPiece"},
      {"post_processor", {{"type", "Mystery"}}, "Mystery"},
  };
  for (const Case& c : cases) {
    boost::json::object spec = ByteLevelSpec();
    spec[c.field] = c.value;
    const Status status = LoadError(spec);
    EXPECT_EQ(status.code(), StatusCode::kUnimplemented) << c.name;
    EXPECT_NE(status.message().find(c.name), std::string::npos) << status.ToString();
  }
  boost::json::object spec = ByteLevelSpec();
  spec["model"].as_object()["type"] = "Unigram";
  const Status status = LoadError(spec);
  EXPECT_EQ(status.code(), StatusCode::kUnimplemented);
  EXPECT_NE(status.message().find("Unigram"), std::string::npos);
}

TEST(TokenizerTest, RejectsMalformedComponents) {
  const auto expect_invalid = [](boost::json::object spec, const char* needle) {
    const Status status = LoadError(spec);
    EXPECT_FALSE(status.ok()) << needle;
    EXPECT_NE(status.message().find(needle), std::string::npos) << status.ToString();
  };
  boost::json::object spec = ByteLevelSpec();
  spec["model"].as_object()["merges"] = boost::json::array{"h zz"};
  expect_invalid(spec, "missing from the vocabulary");

  spec = ByteLevelSpec();
  spec["model"].as_object()["merges"] = boost::json::array{"nospace"};
  expect_invalid(spec, "two tokens");

  spec = ByteLevelSpec();
  spec["model"].as_object()["vocab"].as_object()["x"] = "seven";
  expect_invalid(spec, "non-negative id");

  spec = ByteLevelSpec();
  spec.erase("model");
  expect_invalid(spec, "\"model\" is missing");

  spec = ByteLevelSpec();
  spec["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_invalid(spec, "invalid regex");

  spec = ByteLevelSpec();
  spec["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
  expect_invalid(spec, "Sideways");

  spec = ByteLevelSpec();
  spec["added_tokens"].as_array()[0].as_object()["content"] = 5;
  expect_invalid(spec, "added_tokens[0]");

  spec = ByteLevelSpec();
  spec["post_processor"].as_object()["special_tokens"] = boost::json::object{};
  expect_invalid(spec, "<bos>");
}

// The real model files: special token ids come from tokenizer_config.json.
TEST(TokenizerTest, RealFilesSpecialIds) {
  const fs::path shared = fs::path(SPECONTEXT_SOURCE_DIR) / ".." / "shared" / "tokenizers";
  if (!fs::exists(shared)) GTEST_SKIP() << "tokenizer files not found at " << shared;
  auto llama = Tokenizer::FromFile(shared / "llama3_1" / "tokenizer.json");
  ASSERT_TRUE(llama.ok()) << llama.status().ToString();
  EXPECT_EQ((*llama)->bos_id(), 128000);
  EXPECT_EQ((*llama)->eos_id(), 128009);
  EXPECT_EQ((*llama)->VocabSize(), 128256u);
  EXPECT_EQ(*(*llama)->Encode("Hi", true), (std::vector<int32_t>{128000, 13347}));
  auto qwen = Tokenizer::FromFile(shared / "qwen3" / "tokenizer.json");
  ASSERT_TRUE(qwen.ok()) << qwen.status().ToString();
  EXPECT_EQ((*qwen)->bos_id(), std::nullopt);
  EXPECT_EQ((*qwen)->eos_id(), 151645);
  EXPECT_EQ((*qwen)->pad_id(), 151643);
  auto mistral = Tokenizer::FromFile(shared / "mistral" / "tokenizer.json");
  ASSERT_TRUE(mistral.ok()) << mistral.status().ToString();
  EXPECT_EQ((*mistral)->bos_id(), 1);
  EXPECT_EQ((*mistral)->eos_id(), 2);
  EXPECT_EQ((*mistral)->VocabSize(), 32000u);
}

}  // namespace
}  // namespace specontext
