#include "engine/sampler/truncation.h"

#include <algorithm>
#include <cmath>

namespace specontext {

RowOrder::RowOrder(std::span<const float> scaled_logits)
    : logits_(scaled_logits), prob_(scaled_logits.size(), 0.0) {
  float max_logit = -INFINITY;
  for (size_t i = 0; i < logits_.size(); ++i) {
    if (logits_[i] == -INFINITY) continue;
    ids_.push_back(static_cast<int32_t>(i));
    max_logit = std::max(max_logit, logits_[i]);
  }
  size_ = ids_.size();
  double total = 0.0;
  for (int32_t id : ids_)
    total += prob_[id] = std::exp(static_cast<double>(logits_[id]) - max_logit);
  for (int32_t id : ids_) prob_[id] /= total;
}

bool RowOrder::Extend(size_t n) {
  n = std::min(n, size_);
  if (n <= known_.size()) return true;
  // Sorting a 150K vocabulary per token would dominate the step: sorted prefixes grow fourfold
  // from 64, and a partial sort of the unsorted rest orders its head exactly as a full sort.
  const size_t from = known_.size();
  const size_t to = std::min(size_, std::max({n, from * 4, size_t{64}}));
  std::partial_sort(ids_.begin() + from, ids_.begin() + to, ids_.end(), [&](int32_t a, int32_t b) {
    return logits_[a] != logits_[b] ? logits_[a] > logits_[b] : a < b;
  });
  for (size_t i = from; i < to; ++i) known_.push_back({ids_[i], prob_[ids_[i]]});
  return true;
}

std::optional<Truncation> Truncate(OrderedTokens& order, const SamplingParams& params) {
  Truncation kept{order.size(), 1.0};
  const auto mass_of = [&](size_t count) {
    double mass = 0.0;
    for (size_t i = 0; i < count; ++i) mass += order[i].prob;
    return mass;
  };
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < kept.count) {
    if (!order.Extend(params.top_k)) return std::nullopt;
    kept = {static_cast<size_t>(params.top_k), mass_of(params.top_k)};
  }
  if (params.top_p < 1.0f) {
    // The smallest prefix whose renormalised mass reaches top_p.
    size_t keep = 0;
    double before = 0.0;
    while (keep < kept.count && before < params.top_p) {
      if (!order.Extend(keep + 1)) return std::nullopt;
      before += order[keep++].prob / kept.mass;
    }
    keep = std::max<size_t>(keep, std::min<size_t>(kept.count, 1));
    kept = {keep, mass_of(keep)};
  }
  if (params.min_p > 0.0f && kept.count > 0) {
    if (!order.Extend(1)) return std::nullopt;
    const double threshold = params.min_p * order[0].prob;
    size_t keep = 1;
    while (keep < kept.count) {
      if (!order.Extend(keep + 1)) return std::nullopt;
      if (order[keep].prob < threshold) break;
      ++keep;
    }
    kept = {keep, mass_of(keep)};
  }
  return kept;
}

std::optional<int32_t> Draw(OrderedTokens& order, const Truncation& kept, double u) {
  if (kept.count == 0) return std::nullopt;
  double cumulative = 0.0;
  for (size_t i = 0; i < kept.count; ++i) {
    if (!order.Extend(i + 1)) return std::nullopt;
    cumulative += order[i].prob / kept.mass;
    if (u < cumulative) return order[i].token;
  }
  // Rounding left the total a hair below 1 and u landed in the gap.
  return order[kept.count - 1].token;
}

}  // namespace specontext
