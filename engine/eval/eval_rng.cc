#include "engine/eval/eval_rng.h"

namespace specontext::eval {

std::string EvalRng::Digits(int count) {
  std::string digits;
  for (int i = 0; i < count; ++i) {
    digits.push_back(static_cast<char>('0' + (i == 0 ? 1 + Below(9) : Below(10))));
  }
  return digits;
}

std::string EvalRng::Uuid() {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string uuid;
  for (int group : {8, 4, 4, 4, 12}) {
    if (!uuid.empty()) uuid.push_back('-');
    for (int i = 0; i < group; ++i) uuid.push_back(kHex[Below(16)]);
  }
  return uuid;
}

std::string EvalRng::DistinctWord(uint64_t index) const {
  static constexpr std::string_view kConsonants = "bdfgklmnprstvz";
  static constexpr std::string_view kVowels = "aeiou";
  // An affine map with a multiplier coprime to 70^3 is a bijection on [0, 70^3): distinct
  // indices give distinct syllable triples, in an order that depends on the seed.
  uint64_t code = (index * 7919 + At(0) % kDistinctWords) % kDistinctWords;
  std::string word;
  for (int syllable = 0; syllable < 3; ++syllable) {
    const uint64_t s = code % 70;
    code /= 70;
    word.push_back(kConsonants[s / 5]);
    word.push_back(kVowels[s % 5]);
  }
  return word;
}

}  // namespace specontext::eval
