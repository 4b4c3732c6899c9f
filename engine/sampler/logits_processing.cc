#include "engine/sampler/logits_processing.h"

#include <limits>

#include "engine/sampler/sampler.h"

namespace specontext {

std::vector<LogitEdit> CollectEdits(size_t vocab, const SamplingParams& params,
                                    const SequenceHistory& history,
                                    std::span<const int32_t> eos_token_ids) {
  const bool mask = static_cast<int64_t>(history.generated_tokens.size()) < params.min_tokens;
  const bool repetition = params.repetition_penalty != 1.0f;
  const bool additive = params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f;
  if (!mask && !repetition && !additive) return {};

  // Dense tables, one pass over the history: prompts can hold 100K+ tokens, so per-step cost
  // must stay linear (sorting them every token would not).
  constexpr uint8_t kMasked = 1, kRepeated = 2;
  std::vector<uint8_t> flags(vocab, 0);
  std::vector<int32_t> counts(additive ? vocab : 0, 0);
  if (mask) {
    for (int32_t token : params.stop_token_ids) {
      if (token >= 0 && static_cast<size_t>(token) < vocab) flags[token] |= kMasked;
    }
    if (!params.ignore_eos) {
      for (int32_t token : eos_token_ids) {
        if (token >= 0 && static_cast<size_t>(token) < vocab) flags[token] |= kMasked;
      }
    }
  }
  if (repetition) {
    for (int32_t token : history.prompt_tokens) flags[token] |= kRepeated;
    for (int32_t token : history.generated_tokens) flags[token] |= kRepeated;
  }
  if (additive) {
    for (int32_t token : history.generated_tokens) ++counts[token];
  }
  std::vector<LogitEdit> edits;
  for (size_t token = 0; token < vocab; ++token) {
    const int32_t count = additive ? counts[token] : 0;
    if (flags[token] == 0 && count == 0) continue;
    edits.push_back({static_cast<int32_t>(token), (flags[token] & kMasked) != 0,
                     (flags[token] & kRepeated) != 0, count});
  }
  return edits;
}

float Edited(float logit, const LogitEdit& edit, const SamplingParams& params) {
  if (edit.masked) return -std::numeric_limits<float>::infinity();
  if (edit.repeated) {
    logit = logit > 0.0f ? logit / params.repetition_penalty : logit * params.repetition_penalty;
  }
  if (edit.count > 0) {
    logit -= params.frequency_penalty * static_cast<float>(edit.count) + params.presence_penalty;
  }
  return logit;
}

}  // namespace specontext
