// Turns one row of logits into the next token of one request.
//
// Pipeline, in order (the choices follow vLLM / OpenAI / Hugging Face where they agree):
//   1. reported logprobs = log_softmax(raw logits): the model's own distribution, before any
//      penalty, mask or temperature (vLLM's default "raw_logprobs"). They describe the model,
//      so they stay comparable across sampling settings.
//   2. min_tokens: EOS (unless ignore_eos) and stop_token_ids get -inf until enough tokens exist.
//   3. repetition_penalty (Hugging Face): over the distinct prompt + generated tokens, positive
//      logits are divided by the penalty and negative ones multiplied.
//   4. presence / frequency penalties (OpenAI): over generated tokens only,
//      logit -= frequency_penalty · count + presence_penalty · [count > 0].
//   5. temperature < 1e-5 → greedy argmax (lowest id on ties). Otherwise logits / temperature,
//      then top-k, then top-p on the renormalised top-k set (smallest prefix, by descending
//      probability, whose mass reaches top_p), then min-p (keep p ≥ min_p · p_max), and one draw
//      from the renormalised survivors, walked by descending probability (ties to the lower
//      id), with the counter-based generator at (seed, step).
//
// A GPU backend can return a LogitsSummary per row instead of the row (BatchStep::summary):
// PlanSummary says what to ask for, SampleSummary draws the same token the whole row would give
// (up to rounding in the normaliser) or says that it needs the whole row.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/status.h"
#include "engine/batch.h"
#include "engine/sampler/logits_processing.h"
#include "engine/sampler/sampling_params.h"

namespace specontext {

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

// Why a request ended. The sampler decides kStop/kLength; the engine adds kAbort (client gone,
// shutdown) and kError.
enum class FinishReason { kNone, kStop, kLength, kAbort, kError };

struct SampleResult {
  int32_t token = -1;
  // Of `token` under the raw model distribution (step 1 above); filled only when
  // params.logprobs is set (the normaliser costs an exp per vocabulary entry).
  float logprob = 0.0f;
  // The params.top_logprobs most likely tokens of the raw distribution, most likely first
  // (filled only when params.logprobs is set).
  std::vector<TokenLogprob> top_logprobs;
  FinishReason finish = FinishReason::kNone;
};

// What the sampler needs to know about one request besides its parameters.
struct SequenceHistory {
  std::span<const int32_t> prompt_tokens;
  std::span<const int32_t> generated_tokens;
  // params.seed when the request set one; otherwise a value the engine drew once for the
  // request. The step counter is generated_tokens.size(), so replays are exact.
  uint64_t seed = 0;
};

// What one row's summary must hold, and how to read it back.
struct SummaryPlan {
  int top_k = 1;
  float temperature = 1.0f;      // of LogitsSummary::sum_scaled
  std::vector<LogitEdit> edits;  // their tokens are gathered, in this order
  std::vector<int32_t> gather_tokens() const;
};

class Sampler {
 public:
  explicit Sampler(std::vector<int32_t> eos_token_ids) : eos_token_ids_(std::move(eos_token_ids)) {}

  // Errors: malformed parameters, a token id outside the vocabulary, NaN or +inf logits, or no
  // token left that may be sampled.
  Result<SampleResult> Sample(std::span<const float> logits, const SamplingParams& params,
                              const SequenceHistory& history) const;

  // Errors: as Sample's, for the parameters and the history.
  Result<SummaryPlan> PlanSummary(const SamplingParams& params, const SequenceHistory& history,
                                  int vocab) const;
  // nullopt: the summary does not settle this draw (or the row needs checking); sample the whole
  // row instead. The summary may hold more top tokens than the plan asked for (a step asks for
  // its rows' largest top_k). Errors: a summary that does not match the plan.
  Result<std::optional<SampleResult>> SampleSummary(const LogitsSummary& summary,
                                                    const SummaryPlan& plan,
                                                    const SamplingParams& params,
                                                    const SequenceHistory& history,
                                                    int vocab) const;

  // A summary of this depth settles almost every draw at a temperature; one row of it costs
  // 8 KB on the way to the host.
  static constexpr int kSampledTopK = 1024;

 private:
  bool IsEos(int32_t token) const;
  FinishReason FinishFor(int32_t token, const SamplingParams& params,
                         const SequenceHistory& history) const;

  std::vector<int32_t> eos_token_ids_;
};

}  // namespace specontext
