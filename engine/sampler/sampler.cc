#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/sampler/counter_rng.h"
#include "engine/sampler/logits_summary.h"
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

Status ValidateRequest(const SamplingParams& params, const SequenceHistory& history, size_t vocab) {
  SPC_RETURN_IF_ERROR(ValidateParams(params));
  SPC_RETURN_IF_ERROR(ValidateTokens(history.prompt_tokens, vocab, "prompt"));
  return ValidateTokens(history.generated_tokens, vocab, "generated");
}

}  // namespace

std::vector<int32_t> SummaryPlan::gather_tokens() const {
  std::vector<int32_t> tokens;
  tokens.reserve(edits.size());
  for (const LogitEdit& e : edits) tokens.push_back(e.token);
  return tokens;
}

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
  SPC_RETURN_IF_ERROR(ValidateRequest(params, history, logits.size()));
  SPC_RETURN_IF_ERROR(ValidateLogits(logits));

  std::vector<float> work(logits.begin(), logits.end());
  for (const LogitEdit& edit : CollectEdits(work.size(), params, history, eos_token_ids_)) {
    work[edit.token] = Edited(work[edit.token], edit, params);
  }
  const int32_t best = Argmax(work);
  if (work[best] == -INFINITY) {
    return FailedPrecondition("every token is masked (min_tokens with only stop tokens left)");
  }

  SampleResult result;
  if (params.temperature < kGreedyTemperature) {
    result.token = best;
  } else {
    for (float& l : work) l /= params.temperature;
    RowOrder order(work);
    const Truncation kept = *Truncate(order, params);
    result.token = *Draw(order, kept, UniformDraw(history.seed, history.generated_tokens.size()));
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

Result<SummaryPlan> Sampler::PlanSummary(const SamplingParams& params,
                                         const SequenceHistory& history, int vocab) const {
  SPC_RETURN_IF_ERROR(ValidateRequest(params, history, vocab));
  SummaryPlan plan;
  plan.edits = CollectEdits(vocab, params, history, eos_token_ids_);
  if (params.temperature < kGreedyTemperature) {
    plan.top_k = std::max(1, params.logprobs ? params.top_logprobs : 0);
    // Edits can push the top tokens down: keep a margin of runners-up.
    if (!plan.edits.empty()) plan.top_k = std::max(plan.top_k, 64);
  } else {
    plan.top_k = kSampledTopK;
    plan.temperature = params.temperature;
  }
  plan.top_k = std::min(plan.top_k, vocab);
  return plan;
}

Result<std::optional<SampleResult>> Sampler::SampleSummary(const LogitsSummary& summary,
                                                           const SummaryPlan& plan,
                                                           const SamplingParams& params,
                                                           const SequenceHistory& history,
                                                           int vocab) const {
  const std::optional<SampleResult> kWholeRow;
  if (summary.top_tokens.size() < static_cast<size_t>(plan.top_k) ||
      summary.top_logits.size() != summary.top_tokens.size() ||
      summary.gathered.size() != plan.edits.size()) {
    return Internal("a logits summary does not match what was asked for (" +
                    std::to_string(summary.top_tokens.size()) + " top tokens, " +
                    std::to_string(summary.gathered.size()) + " gathered)");
  }
  // The whole row reports what is wrong with it.
  if (summary.non_finite > 0 || summary.max_logit == -INFINITY) return kWholeRow;

  const bool greedy = params.temperature < kGreedyTemperature;
  SummaryOrder order(summary, plan.edits, params, greedy ? 0.0f : params.temperature, vocab);
  SampleResult result;
  if (greedy) {
    if (order.size() == 0 || !order.Extend(1)) return kWholeRow;
    result.token = order[0].token;
  } else {
    const std::optional<Truncation> kept = Truncate(order, params);
    if (!kept) return kWholeRow;
    const std::optional<int32_t> token =
        Draw(order, *kept, UniformDraw(history.seed, history.generated_tokens.size()));
    if (!token) return kWholeRow;
    result.token = *token;
  }

  if (params.logprobs) {
    const size_t top = std::min<size_t>(params.top_logprobs, vocab);
    const float raw = order.RawLogit(result.token);
    if (top > summary.top_tokens.size() || std::isnan(raw)) return kWholeRow;
    const double log_z = summary.max_logit + std::log(summary.sum);
    result.logprob = static_cast<float>(raw - log_z);
    for (size_t i = 0; i < top; ++i) {
      result.top_logprobs.push_back(
          {summary.top_tokens[i], static_cast<float>(summary.top_logits[i] - log_z)});
    }
  }
  result.finish = FinishFor(result.token, params, history);
  return std::optional<SampleResult>(std::move(result));
}

}  // namespace specontext
