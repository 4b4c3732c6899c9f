// One sequence's fused target hidden states (the EAGLE-3 head's hidden input) as the engine
// hands them over after each step, kept until the head has projected the positions that read
// them. The head's input at position t is the state of position t - 1, so K for a prefill chunk
// is projected one step late, once the chunk's own states exist.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace specontext {

// The inputs of positions [first, first + count) are the states [first - 1, first + count - 1)
// (position 0 reads none): how many of those states lie outside the kept range [base, end).
inline int64_t CountUnknownInputs(int64_t first, int64_t count, int64_t base, int64_t end) {
  const int64_t lo = std::max<int64_t>(first - 1, 0), hi = first + count - 1;
  if (lo >= hi) return 0;
  return (hi - lo) - std::max<int64_t>(0, std::min(hi, end) - std::max(lo, base));
}

class FusedHistory {
 public:
  explicit FusedHistory(int width) : width_(width) {}

  int width() const { return width_; }
  // States of positions [start, start + rows). Overlapping or older positions are replaced (a
  // recompute); a gap (a prefix adopted from the prefix cache) starts the history afresh.
  void Observe(int64_t start, std::span<const float> states);
  // Forgets positions >= end (a recompute from there).
  void Truncate(int64_t end);
  // Frees positions < first.
  void DropBefore(int64_t first);
  // The head's hidden input for positions [first, first + count): row i is the state of position
  // first + i - 1, zeros where that state is unknown (position 0, adopted prefixes). Empty when
  // none is known, so the caller can skip the hidden path.
  std::vector<float> InputsFor(int64_t first, int64_t count) const;
  // Whether every one of those inputs is known (position 0's is zeros by definition): K
  // projected from them is exact, and may serve other sequences.
  bool KnowsAll(int64_t first, int64_t count) const { return UnknownInputs(first, count) == 0; }
  // How many of those inputs are not known (position 0's never counts).
  int64_t UnknownInputs(int64_t first, int64_t count) const;
  // The state of `position`, or empty when it is not kept.
  std::span<const float> State(int64_t position) const;

 private:
  int64_t end() const { return base_ + static_cast<int64_t>(states_.size() / width_); }

  int width_;
  int64_t base_ = 0;           // position of the first kept state
  std::vector<float> states_;  // [positions][width]
};

}  // namespace specontext
