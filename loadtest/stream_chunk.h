// One event of an OpenAI streaming response (completions or chat completions), reduced to what
// the load generator measures.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace specontext::loadtest {

struct StreamChunk {
  bool done = false;        // the `[DONE]` sentinel
  bool has_choice = false;  // carries a choice (possibly with empty text)
  // choices[0].text, or delta.content plus delta.reasoning_content for chat.
  std::string text;
  std::optional<std::string> finish_reason;
  std::optional<int64_t> prompt_tokens;      // from `usage`
  std::optional<int64_t> completion_tokens;  // from `usage`
  std::optional<std::string> error;          // an `{"error": ...}` event sent mid-stream
};

// Fails when `data` is neither `[DONE]` nor a JSON object.
Result<StreamChunk> ParseStreamChunk(std::string_view data);

}  // namespace specontext::loadtest
