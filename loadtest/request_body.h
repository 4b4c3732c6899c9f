// The JSON body of one streaming OpenAI request for a synthetic prompt.
#pragma once

#include <string>

#include "loadtest/prompt_synthesizer.h"

namespace specontext::loadtest {

enum class ApiKind { kCompletions, kChatCompletions };

struct SamplingOptions {
  std::string model;
  // Keeps generating past end-of-sequence so output lengths are exactly max_tokens.
  bool ignore_eos = true;
  double temperature = 0;
};

std::string BuildRequestBody(ApiKind api, const SamplingOptions& sampling,
                             const SyntheticPrompt& prompt);

}  // namespace specontext::loadtest
