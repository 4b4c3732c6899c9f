#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/sampler/counter_rng.h"
#include "engine/sampler/logits_processing.h"
#include "engine/sampler/truncation.h"

namespace specontext {
namespace {

// Below this, temperature scaling would overflow float; the limit of sampling is the argmax.
constexpr float kGreedyTemperature = 1e-5f;

Status ValidateParams(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f)) return InvalidArgument("temperature must be >= 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return InvalidArgument("top_p must be in (0, 1]");
  if (p.top_k < 0) return InvalidArgument("top_k must be >= 0");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return InvalidArgument("min_p must be in [0, 1]");
  if (!(p.repetition_penalty > 0.0f)) return InvalidArgument("repetition_penalty must be > 0");
  if (!std::isfinite(p.presence_penalty) || !std::isfinite(p.frequency_penalty)) {
    return InvalidArgument("presence_penalty and frequency_penalty must be finite");
  }
  if (p.top_logprobs < 0) return InvalidArgument("top_logprobs must be >= 0");
  return Status::Ok();
}

Status ValidateTokens(std::span<const int32_t> tokens, size_t vocab, const char* what) {
  for (int32_t token : tokens) {
    if (token < 0 || static_cast<size_t>(token) >= vocab) {
      return InvalidArgument(std::string(what) + " token id " + std::to_string(token) +
                             " is outside the vocabulary of " + std::to_string(vocab));
    }
  }
  return Status::Ok();
}

// NaN or +inf means the forward pass diverged; -inf is a legitimate mask. One branch-free pass
// (it runs on every row of every step); only a bad row is searched again for the culprit.
Status ValidateLogits(std::span<const float> logits) {
  if (logits.empty()) return InvalidArgument("empty logits row");
  bool bad = false, any_finite = false;
  for (float l : logits) {
    bad |= !(l < INFINITY);  // NaN compares false
    any_finite |= l > -INFINITY;
  }
  if (bad) {
    const auto it =
        std::find_if(logits.begin(), logits.end(), [](float l) { return !(l < INFINITY); });
    return Internal("logits row holds a non-finite value (" + std::to_string(*it) + ") at token " +
                    std::to_string(it - logits.begin()));
  }
  if (!any_finite) return Internal("every logit is -inf: no token can be sampled");
  return Status::Ok();
}

// Terms in float (each within an ulp, and half the cost of double exp), summed in double.
double LogSumExp(std::span<const float> logits, float max_logit) {
  double total = 0.0;
  for (float l : logits) total += std::exp(l - max_logit);
  return max_logit + std::log(total);
}

std::vector<TokenLogprob> TopLogprobs(std::span<const float> logits, double log_z, int count) {
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const size_t n = std::min<size_t>(count, ids.size());
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  });
  std::vector<TokenLogprob> top(n);
  for (size_t i = 0; i < n; ++i) {
    top[i] = {ids[i], static_cast<float>(logits[ids[i]] - log_z)};
  }
  return top;
}

// The lowest index of the largest value (no NaN: ValidateLogits ran). Eight running maxima
// instead of one break the compare chain a 150K-entry row would otherwise wait on.
int32_t Argmax(std::span<const float> logits) {
  constexpr size_t kLanes = 8;
  float lanes[kLanes];
  std::fill(lanes, lanes + kLanes, -INFINITY);
  size_t i = 0;
  for (; i + kLanes <= logits.size(); i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) lanes[j] = std::max(lanes[j], logits[i + j]);
  }
  float best = *std::max_element(lanes, lanes + kLanes);
  for (; i < logits.size(); ++i) best = std::max(best, logits[i]);
  return static_cast<int32_t>(std::find(logits.begin(), logits.end(), best) - logits.begin());
}

}  // namespace

bool Sampler::IsEos(int32_t token) const {
  return std::find(eos_token_ids_.begin(), eos_token_ids_.end(), token) != eos_token_ids_.end();
}

FinishReason Sampler::FinishFor(int32_t token, const SamplingParams& params,
                                const SequenceHistory& history) const {
  const auto& stops = params.stop_token_ids;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) return FinishReason::kStop;
  if (!params.ignore_eos && IsEos(token)) return FinishReason::kStop;
  if (static_cast<int64_t>(history.generated_tokens.size()) + 1 >= params.max_tokens) {
    return FinishReason::kLength;
  }
  return FinishReason::kNone;
}

Result<SampleResult> Sampler::Sample(std::span<const float> logits, const SamplingParams& params,
                                     const SequenceHistory& history) const {
  SPC_RETURN_IF_ERROR(ValidateParams(params));
  SPC_RETURN_IF_ERROR(ValidateLogits(logits));
  SPC_RETURN_IF_ERROR(ValidateTokens(history.prompt_tokens, logits.size(), "prompt"));
  SPC_RETURN_IF_ERROR(ValidateTokens(history.generated_tokens, logits.size(), "generated"));

  std::vector<float> work(logits.begin(), logits.end());
  MaskEarlyStop(work, params, history, eos_token_ids_);
  ApplyPenalties(work, params, history);
  const int32_t best = Argmax(work);
  if (work[best] == -INFINITY) {
    return FailedPrecondition("every token is masked (min_tokens with only stop tokens left)");
  }

  SampleResult result;
  if (params.temperature < kGreedyTemperature) {
    result.token = best;
  } else {
    for (float& l : work) l /= params.temperature;
    const std::vector<Candidate> candidates = TruncatedDistribution(work, params);
    result.token = DrawFrom(candidates, UniformDraw(history.seed, history.generated_tokens.size()));
  }

  // The normaliser costs an exp per vocabulary entry: only for requests that report logprobs.
  if (params.logprobs) {
    const double log_z = LogSumExp(logits, logits[Argmax(logits)]);
    result.logprob = static_cast<float>(logits[result.token] - log_z);
    if (params.top_logprobs > 0) {
      result.top_logprobs = TopLogprobs(logits, log_z, params.top_logprobs);
    }
  }
  result.finish = FinishFor(result.token, params, history);
  return result;
}

}  // namespace specontext
