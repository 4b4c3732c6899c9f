#include "engine/eval/prompt_format.h"

#include <boost/json/object.hpp>
#include <utility>

namespace specontext::eval {

PromptFormat::PromptFormat(const Tokenizer* tokenizer,
                           const chat_template::ChatTemplate* chat_template,
                           chat_template::SpecialTokens special_tokens)
    : tokenizer_(tokenizer),
      chat_template_(chat_template),
      special_tokens_(std::move(special_tokens)) {}

Result<RenderedPrompt> PromptFormat::Render(std::string_view user,
                                            std::string_view answer_prefix) const {
  RenderedPrompt prompt;
  if (chat_template_ == nullptr) {
    prompt.text = std::string(user) + "\n" + std::string(answer_prefix);
    SPC_ASSIGN_OR_RETURN(prompt.tokens, tokenizer_->Encode(prompt.text, true));
    return prompt;
  }
  chat_template::ChatTemplateInputs inputs;
  inputs.messages.push_back(boost::json::object{{"role", "user"}, {"content", user}});
  inputs.messages.push_back(boost::json::object{{"role", "assistant"}, {"content", answer_prefix}});
  inputs.continue_final_message = true;
  SPC_ASSIGN_OR_RETURN(prompt.text,
                       chat_template::ApplyChatTemplate(*chat_template_, inputs, special_tokens_));
  // The template writes any BOS itself, as transformers' apply_chat_template(tokenize=True).
  SPC_ASSIGN_OR_RETURN(prompt.tokens, tokenizer_->Encode(prompt.text, false));
  return prompt;
}

}  // namespace specontext::eval
