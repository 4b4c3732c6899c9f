// Top-k, top-p and min-p truncation and the draw (step 5 in sampler.h). All three cuts keep a
// prefix of one order, descending logit with ties to the lower id, and the draw walks that
// prefix. So a sampler needs the order only as far as the draw reaches: a whole row sorts
// lazily, and a GPU summary (its top logits) settles most draws without the rest of the row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/sampler/sampling_params.h"

namespace specontext {

struct Candidate {
  int32_t token = -1;
  double prob = 0.0;
};

// A distribution's tokens in the sampler's order, with probabilities relative to the whole
// distribution, known as far as the source can tell.
class OrderedTokens {
 public:
  virtual ~OrderedTokens() = default;
  // Makes the first min(n, size()) entries known; false when the source cannot.
  virtual bool Extend(size_t n) = 0;
  // Tokens with a finite logit.
  size_t size() const { return size_; }
  const Candidate& operator[](size_t i) const { return known_[i]; }

 protected:
  size_t size_ = 0;
  std::vector<Candidate> known_;
};

// The whole row of (temperature-scaled) logits, sorted as far as asked.
class RowOrder : public OrderedTokens {
 public:
  explicit RowOrder(std::span<const float> scaled_logits);
  bool Extend(size_t n) override;

 private:
  std::span<const float> logits_;
  std::vector<int32_t> ids_;  // finite tokens; ids_[0, known_.size()) are sorted
  std::vector<double> prob_;  // by token
};

// How much of the order survives truncation, and its probability mass.
struct Truncation {
  size_t count = 0;
  double mass = 0.0;
};

// nullopt when the source cannot extend as far as the cut needs.
std::optional<Truncation> Truncate(OrderedTokens& order, const SamplingParams& params);

// Inverse-CDF draw: the first token of the kept prefix whose cumulative renormalised
// probability exceeds u ∈ [0, 1). nullopt when the source cannot extend that far.
std::optional<int32_t> Draw(OrderedTokens& order, const Truncation& kept, double u);

}  // namespace specontext
