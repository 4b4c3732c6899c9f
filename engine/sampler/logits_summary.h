// Sampling from a LogitsSummary (engine/batch.h) instead of a whole row: the summary's top
// logits, with the edited tokens' logits gathered, give the sampler's order exactly as far as no
// unseen token can interleave, and its sums give the normaliser. A draw that needs more of the
// order than that falls back to the whole row.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/batch.h"
#include "engine/sampler/logits_processing.h"
#include "engine/sampler/truncation.h"

namespace specontext {

// What the GPU computes (engine/cuda/logits_summary_kernels.h), on the host: the reference its
// tests compare with. Sums in double over float exponentials.
LogitsSummary SummarizeLogits(std::span<const float> row, float temperature,
                              std::span<const int32_t> gather, int top_k);

// The summarised row after the edits, in the sampler's order. temperature 0 orders the edited
// logits themselves (greedy); probabilities are then not computed.
class SummaryOrder : public OrderedTokens {
 public:
  SummaryOrder(const LogitsSummary& summary, std::span<const LogitEdit> edits,
               const SamplingParams& params, float temperature, int vocab);
  bool Extend(size_t n) override { return n <= known_.size() || known_.size() == size_; }

  // The raw (unedited) logit of a token the summary holds; NaN for any other token.
  float RawLogit(int32_t token) const;

 private:
  struct Entry {
    int32_t token;
    float raw;
    float edited;
  };
  std::vector<Entry> entries_;  // by token
};

}  // namespace specontext
