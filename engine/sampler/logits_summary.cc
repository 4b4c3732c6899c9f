#include "engine/sampler/logits_summary.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace specontext {

LogitsSummary SummarizeLogits(std::span<const float> row, float temperature,
                              std::span<const int32_t> gather, int top_k) {
  LogitsSummary s;
  s.max_logit = -INFINITY;
  for (float l : row) {
    if (!(l < INFINITY)) {
      ++s.non_finite;
    } else if (l == -INFINITY) {
      ++s.neg_inf;
    } else {
      s.max_logit = std::max(s.max_logit, l);
    }
  }
  const float inv_t = 1.0f / temperature;
  for (float l : row) {
    if (!(l < INFINITY) || l == -INFINITY) continue;
    s.sum += std::exp(l - s.max_logit);
    s.sum_scaled += std::exp((l - s.max_logit) * inv_t);
  }
  std::vector<int32_t> ids(row.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const size_t k = std::min<size_t>(top_k, ids.size());
  // NaN ranks below every number, as on the GPU.
  const auto key = [&](int32_t id) { return std::isnan(row[id]) ? -INFINITY : row[id]; };
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    const float ka = key(a), kb = key(b);
    return ka != kb ? ka > kb : a < b;
  });
  for (size_t i = 0; i < k; ++i) {
    s.top_tokens.push_back(ids[i]);
    s.top_logits.push_back(row[ids[i]]);
  }
  for (int32_t id : gather) s.gathered.push_back(row[id]);
  return s;
}

SummaryOrder::SummaryOrder(const LogitsSummary& summary, std::span<const LogitEdit> edits,
                           const SamplingParams& params, float temperature, int vocab) {
  for (size_t i = 0; i < summary.top_tokens.size(); ++i) {
    entries_.push_back({summary.top_tokens[i], summary.top_logits[i], summary.top_logits[i]});
  }
  std::sort(entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) { return a.token < b.token; });
  // Edits are ascending by token too: merge, editing the tokens both hold.
  std::vector<Entry> merged;
  size_t t = 0;
  int64_t finite = static_cast<int64_t>(vocab) - summary.neg_inf;
  for (size_t e = 0; e < edits.size(); ++e) {
    while (t < entries_.size() && entries_[t].token < edits[e].token)
      merged.push_back(entries_[t++]);
    if (t < entries_.size() && entries_[t].token == edits[e].token) ++t;
    const float raw = summary.gathered[e];
    const float edited = Edited(raw, edits[e], params);
    if (raw != -INFINITY && edited == -INFINITY) --finite;
    merged.push_back({edits[e].token, raw, edited});
  }
  merged.insert(merged.end(), entries_.begin() + t, entries_.end());
  entries_ = std::move(merged);
  size_ = static_cast<size_t>(std::max<int64_t>(finite, 0));

  // Every token outside the summary comes after its last top token in the raw order, and edits
  // touch only summary tokens: a summary token is known to precede all unseen ones when it
  // orders before that bound. Scaling by the temperature can merge distinct logits into ties,
  // so a scaled order trusts only strictly larger values.
  const bool greedy = temperature <= 0.0f;
  const bool whole_row = summary.top_tokens.size() >= static_cast<size_t>(vocab);
  const float bound = summary.top_logits.empty() ? INFINITY : summary.top_logits.back();
  const int32_t bound_token = summary.top_tokens.empty() ? -1 : summary.top_tokens.back();
  const float scaled_bound = greedy ? bound : bound / temperature;
  struct Known {
    float scaled;
    const Entry* entry;
  };
  std::vector<Known> order;
  for (const Entry& e : entries_) {
    if (e.edited == -INFINITY) continue;
    const float v = greedy ? e.edited : e.edited / temperature;
    const bool known =
        whole_row || v > scaled_bound || (greedy && v == scaled_bound && e.token <= bound_token);
    if (known) order.push_back({v, &e});
  }
  std::sort(order.begin(), order.end(), [](const Known& a, const Known& b) {
    return a.scaled != b.scaled ? a.scaled > b.scaled : a.entry->token < b.entry->token;
  });
  if (greedy) {
    for (const Known& k : order) known_.push_back({k.entry->token, 0.0});
    return;
  }
  // The normaliser over the edited row: the row's sum with the gathered tokens' terms swapped
  // for their edited ones.
  const double max_logit = summary.max_logit;
  const auto term = [&](float l) {
    return l == -INFINITY ? 0.0 : std::exp((static_cast<double>(l) - max_logit) / temperature);
  };
  double total = summary.sum_scaled;
  for (size_t e = 0; e < edits.size(); ++e) {
    total += term(Edited(summary.gathered[e], edits[e], params)) - term(summary.gathered[e]);
  }
  // Cancellation (a masked token held nearly all the mass) can leave nothing trustworthy.
  if (!(total > 0.0)) return;
  for (const Known& k : order) known_.push_back({k.entry->token, term(k.entry->edited) / total});
}

float SummaryOrder::RawLogit(int32_t token) const {
  const auto it = std::lower_bound(entries_.begin(), entries_.end(), token,
                                   [](const Entry& entry, int32_t id) { return entry.token < id; });
  if (it == entries_.end() || it->token != token) return std::numeric_limits<float>::quiet_NaN();
  return it->raw;
}

}  // namespace specontext
