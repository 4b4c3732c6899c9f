#include "engine/sampler/truncation.h"

#include <algorithm>
#include <cmath>

namespace specontext {
namespace {

void SoftmaxInPlace(std::vector<Candidate>& candidates, std::span<const float> logits) {
  double max_logit = -INFINITY;
  for (const Candidate& c : candidates) max_logit = std::max<double>(max_logit, logits[c.token]);
  double total = 0.0;
  for (Candidate& c : candidates) total += c.prob = std::exp(logits[c.token] - max_logit);
  for (Candidate& c : candidates) c.prob /= total;
}

void Renormalise(std::vector<Candidate>& candidates) {
  double total = 0.0;
  for (const Candidate& c : candidates) total += c.prob;
  for (Candidate& c : candidates) c.prob /= total;
}

}  // namespace

std::vector<Candidate> TruncatedDistribution(std::span<const float> scaled_logits,
                                             const SamplingParams& params) {
  std::vector<Candidate> candidates;
  candidates.reserve(scaled_logits.size());
  for (size_t i = 0; i < scaled_logits.size(); ++i) {
    if (scaled_logits[i] != -INFINITY) candidates.push_back({static_cast<int32_t>(i), 0.0});
  }
  const auto by_logit = [&](const Candidate& a, const Candidate& b) {
    const float la = scaled_logits[a.token], lb = scaled_logits[b.token];
    return la != lb ? la > lb : a.token < b.token;
  };
  // Top-k sorts k elements and plain sampling none (a full sort of a 150K vocabulary per token
  // would dominate the step). Top-p needs the order only as far as its nucleus reaches: sorted
  // prefixes grow until one holds top_p of the mass, and a partial sort orders its prefix
  // exactly as a full sort would.
  const bool top_k_cut = params.top_k > 0 && static_cast<size_t>(params.top_k) < candidates.size();
  if (top_k_cut) {
    std::partial_sort(candidates.begin(), candidates.begin() + params.top_k, candidates.end(),
                      by_logit);
    candidates.resize(params.top_k);
  }
  if (candidates.empty()) return candidates;
  SoftmaxInPlace(candidates, scaled_logits);
  if (params.top_p < 1.0f && !top_k_cut) {
    for (size_t sorted = std::min<size_t>(64, candidates.size());; sorted *= 4) {
      sorted = std::min(sorted, candidates.size());
      std::partial_sort(candidates.begin(), candidates.begin() + sorted, candidates.end(),
                        by_logit);
      double mass = 0.0;
      for (size_t i = 0; i < sorted; ++i) mass += candidates[i].prob;
      if (mass >= params.top_p || sorted == candidates.size()) break;
    }
  }

  if (params.top_p < 1.0f) {
    double before = 0.0;
    size_t keep = 0;
    while (keep < candidates.size() && before < params.top_p) before += candidates[keep++].prob;
    candidates.resize(std::max<size_t>(keep, 1));
    Renormalise(candidates);
  }
  if (params.min_p > 0.0f) {
    double max_prob = 0.0;
    for (const Candidate& c : candidates) max_prob = std::max(max_prob, c.prob);
    const double threshold = params.min_p * max_prob;
    std::erase_if(candidates, [&](const Candidate& c) { return c.prob < threshold; });
    Renormalise(candidates);
  }
  return candidates;
}

int32_t DrawFrom(const std::vector<Candidate>& candidates, double u) {
  double cumulative = 0.0;
  for (const Candidate& c : candidates) {
    cumulative += c.prob;
    if (u < cumulative) return c.token;
  }
  // Rounding left the total a hair below 1 and u landed in the gap.
  return candidates.back().token;
}

}  // namespace specontext
