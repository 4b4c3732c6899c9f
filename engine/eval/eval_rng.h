// Deterministic draws for task generation. Counter-based (the value for a key is a pure function
// of it), so a generator can ask for haystack unit i at any size it tries without replaying a
// stream, and the same seed gives the same tasks on every platform (no std distributions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampler/counter_rng.h"

namespace specontext::eval {

class EvalRng {
 public:
  explicit EvalRng(uint64_t seed) : seed_(seed) {}

  // Draw number `counter` of this stream; the stateful calls below consume counters in order.
  uint64_t At(uint64_t counter) const {
    return Mix64(Mix64(seed_ ^ 0x5851f42d4c957f2dull) + counter * 0x9e3779b97f4a7c15ull);
  }
  uint64_t Next() { return At(counter_++); }
  // Uniform in [0, n); the modulo bias is far below anything a test of 2^64 draws could see.
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // An independent stream keyed by `salt`, for per-unit pure draws.
  EvalRng Fork(uint64_t salt) const { return EvalRng(At(~salt)); }

  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(items.size())];
  }
  template <typename T>
  void Shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[Below(i)]);
  }
  // `count` decimal digits, the first not zero.
  std::string Digits(int count);
  // A random version-4-shaped UUID in lowercase hex.
  std::string Uuid();
  // Pronounceable lowercase word number `index` of this stream, e.g. "dobaki": distinct for
  // distinct indices below kDistinctWords.
  std::string DistinctWord(uint64_t index) const;
  static constexpr uint64_t kDistinctWords = 70 * 70 * 70;

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

}  // namespace specontext::eval
