#include "engine/specontext/fused_history.h"

#include <algorithm>

namespace specontext {

void FusedHistory::Observe(int64_t start, std::span<const float> states) {
  if (start < base_ || start > end()) {
    base_ = start;
    states_.clear();
  } else {
    Truncate(start);
  }
  states_.insert(states_.end(), states.begin(), states.end());
}

void FusedHistory::Truncate(int64_t end_position) {
  if (end_position >= end()) return;
  const int64_t keep = std::max<int64_t>(0, end_position - base_);
  states_.resize(static_cast<size_t>(keep) * width_);
}

void FusedHistory::DropBefore(int64_t first) {
  const int64_t drop = std::min(first, end()) - base_;
  if (drop <= 0) return;
  states_.erase(states_.begin(), states_.begin() + drop * width_);
  base_ += drop;
}

std::vector<float> FusedHistory::InputsFor(int64_t first, int64_t count) const {
  const int64_t lo = std::max(first - 1, base_), hi = std::min(first + count - 1, end());
  if (lo >= hi) return {};
  std::vector<float> inputs(static_cast<size_t>(count) * width_, 0.0f);
  std::copy(states_.begin() + (lo - base_) * width_, states_.begin() + (hi - base_) * width_,
            inputs.begin() + (lo + 1 - first) * width_);
  return inputs;
}

int64_t FusedHistory::UnknownInputs(int64_t first, int64_t count) const {
  return CountUnknownInputs(first, count, base_, end());
}

std::span<const float> FusedHistory::State(int64_t position) const {
  if (position < base_ || position >= end()) return {};
  return {states_.data() + (position - base_) * width_, static_cast<size_t>(width_)};
}

}  // namespace specontext
