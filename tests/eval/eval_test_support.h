// Tokenizers and prompt formats the eval tests share.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "engine/chat_template/chat_template.h"
#include "engine/eval/prompt_format.h"
#include "engine/tokenizer/tokenizer.h"

namespace specontext::eval::testing {

// A tokenizer with its chat template, when the tokenizer_config.json beside it has one.
struct LoadedTokenizer {
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<chat_template::ChatTemplate> chat_template;
  chat_template::SpecialTokens special_tokens;

  PromptFormat Format() const {
    return PromptFormat(tokenizer.get(), chat_template ? &*chat_template : nullptr, special_tokens);
  }
};

// Empty when `dir` lacks tokenizer.json (the caller skips).
std::optional<LoadedTokenizer> LoadTokenizerDir(const std::filesystem::path& dir);

}  // namespace specontext::eval::testing
