// Turns a task's user message and answer prefix into prompt text and token ids the way the served
// model expects: through its chat template when it has one (the prefix opens the assistant's
// turn, which is left open so the answer is the model's next tokens), as plain text otherwise.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/chat_template/chat_template.h"
#include "engine/tokenizer/tokenizer.h"

namespace specontext::eval {

struct RenderedPrompt {
  std::string text;
  std::vector<int32_t> tokens;
};

class PromptFormat {
 public:
  // `chat_template` may be null (base models, tokenizer-only fixtures): plain text then.
  // Both pointers must outlive the PromptFormat.
  PromptFormat(const Tokenizer* tokenizer, const chat_template::ChatTemplate* chat_template,
               chat_template::SpecialTokens special_tokens);

  Result<RenderedPrompt> Render(std::string_view user, std::string_view answer_prefix) const;
  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  const Tokenizer* tokenizer_;
  const chat_template::ChatTemplate* chat_template_;
  chat_template::SpecialTokens special_tokens_;
};

}  // namespace specontext::eval
