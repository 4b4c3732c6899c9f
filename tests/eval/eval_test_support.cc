#include "tests/eval/eval_test_support.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <fstream>
#include <sstream>

namespace specontext::eval::testing {

namespace fs = std::filesystem;

std::optional<LoadedTokenizer> LoadTokenizerDir(const fs::path& dir) {
  if (!fs::exists(dir / "tokenizer.json")) return std::nullopt;
  LoadedTokenizer loaded;
  auto tokenizer = Tokenizer::FromFile(dir / "tokenizer.json");
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  if (!tokenizer.ok()) return std::nullopt;
  loaded.tokenizer = std::move(tokenizer).value();
  if (fs::exists(dir / "tokenizer_config.json")) {
    std::ifstream in(dir / "tokenizer_config.json");
    std::stringstream text;
    text << in.rdbuf();
    auto config = chat_template::ReadTokenizerChatConfig(boost::json::parse(text.str()),
                                                         "tokenizer_config.json");
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    if (config.ok() && !config->chat_template.empty()) {
      auto parsed = chat_template::ChatTemplate::Parse(config->chat_template);
      EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
      if (parsed.ok()) loaded.chat_template = std::move(parsed).value();
    }
    if (config.ok()) loaded.special_tokens = config->special_tokens;
  }
  return loaded;
}

}  // namespace specontext::eval::testing
