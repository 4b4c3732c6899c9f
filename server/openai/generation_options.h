// The request fields /v1/completions and /v1/chat/completions share: model, sampling, stop
// conditions, n, streaming and detokenization options.
#pragma once

#include <boost/json/object.hpp>

#include <array>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/sampler/sampling_params.h"
#include "engine/specontext/step_planner.h"

namespace specontext::server::openai {

// OpenAI's limits.
inline constexpr int kMaxChoices = 128;
inline constexpr size_t kMaxStopStrings = 4;
inline constexpr int kMaxTopLogprobs = 20;

struct GenerationOptions {
  std::string model;  // empty: the served model
  // Ranges already checked; max_tokens/min_tokens/logprobs are filled per endpoint.
  SamplingParams sampling;
  // Unset: as many as the context leaves room for (the caller then sets sampling.max_tokens).
  std::optional<int> max_tokens;
  std::vector<std::string> stop;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string user;
  bool skip_special_tokens = true;
  // Extensions: "attention": "dense" | "specontext", "sparse_budget": N (positions per KV
  // head) and "sparse_redo_probability": P (an unsure sparse step runs again densely); absent,
  // the server's.
  AttentionMode attention = AttentionMode::kDefault;
  int64_t sparse_budget = 0;
  std::optional<double> sparse_redo_probability;
};

// Reads the shared fields. `max_tokens_keys` lists the fields that set max_tokens, in order of
// precedence (chat prefers max_completion_tokens over the deprecated max_tokens).
Status ReadGenerationOptions(const boost::json::object& body,
                             std::initializer_list<std::string_view> max_tokens_keys,
                             GenerationOptions* out);

// The fields ReadGenerationOptions understands, for unknown-field logging.
inline constexpr std::array<std::string_view, 24> kGenerationFields = {"model",
                                                                       "max_tokens",
                                                                       "temperature",
                                                                       "top_p",
                                                                       "top_k",
                                                                       "min_p",
                                                                       "presence_penalty",
                                                                       "frequency_penalty",
                                                                       "repetition_penalty",
                                                                       "seed",
                                                                       "stop",
                                                                       "stop_token_ids",
                                                                       "n",
                                                                       "stream",
                                                                       "stream_options",
                                                                       "ignore_eos",
                                                                       "min_tokens",
                                                                       "user",
                                                                       "skip_special_tokens",
                                                                       "logit_bias",
                                                                       "response_format",
                                                                       "attention",
                                                                       "sparse_budget",
                                                                       "sparse_redo_probability"};

}  // namespace specontext::server::openai
