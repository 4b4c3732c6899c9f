// The logit edits that precede token selection (steps 2–4 in sampler.h), as a list of the
// tokens they touch: the whole-row sampler applies them in place, and the summary sampler asks
// the GPU for exactly those tokens' logits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/sampler/sampling_params.h"

namespace specontext {

struct SequenceHistory;

// How one token's logit changes.
struct LogitEdit {
  int32_t token = -1;
  bool masked = false;    // min_tokens not reached and the token would end the request: −inf
  bool repeated = false;  // in the prompt or generated: the repetition penalty applies
  int32_t count = 0;      // times generated: presence and frequency penalties apply
};

// Every edited token once, ascending id. Token ids must be in [0, vocab) (the caller checked).
std::vector<LogitEdit> CollectEdits(size_t vocab, const SamplingParams& params,
                                    const SequenceHistory& history,
                                    std::span<const int32_t> eos_token_ids);

float Edited(float logit, const LogitEdit& edit, const SamplingParams& params);

}  // namespace specontext
