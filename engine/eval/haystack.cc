#include "engine/eval/haystack.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "engine/eval/eval_rng.h"

namespace specontext::eval {

namespace {

constexpr std::array<std::string_view, 16> kNouns = {
    "grass", "sky",   "sun",  "river", "hill",   "forest", "meadow", "lake",
    "road",  "cloud", "wind", "field", "garden", "stone",  "valley", "morning"};
constexpr std::array<std::string_view, 16> kAdjectives = {
    "green", "blue",  "yellow", "calm",   "quiet", "wide", "bright", "soft",
    "warm",  "clear", "still",  "gentle", "old",   "long", "pale",   "deep"};
constexpr std::array<std::string_view, 4> kInterludes = {"Here we go.", "There and back again.",
                                                         "The day goes on.", "All is well."};

// Prompts are sized with at most this many units; beyond it the tokenizer must be broken.
constexpr int kMaxUnits = 1 << 22;

}  // namespace

std::string FillerText::Sentence(uint64_t index) const {
  EvalRng rng = EvalRng(seed_).Fork(index);
  const uint64_t shape = rng.Below(8);
  if (shape == 0) return std::string(kInterludes[rng.Below(kInterludes.size())]);
  std::string noun(kNouns[rng.Below(kNouns.size())]);
  std::string adjective(kAdjectives[rng.Below(kAdjectives.size())]);
  if (shape == 1) return "The " + noun + " looks " + adjective + " today.";
  return "The " + noun + " is " + adjective + ".";
}

std::string JoinWithInsertions(const std::function<std::string(uint64_t)>& unit, int units,
                               std::vector<Insertion> insertions, std::string_view separator) {
  std::stable_sort(insertions.begin(), insertions.end(),
                   [](const Insertion& a, const Insertion& b) { return a.depth < b.depth; });
  std::string text;
  size_t next = 0;
  auto append = [&](std::string_view piece) {
    if (!text.empty()) text.append(separator);
    text.append(piece);
  };
  for (int i = 0; i <= units; ++i) {
    while (next < insertions.size() &&
           static_cast<int>(insertions[next].depth * units + 0.5) <= i) {
      append(insertions[next++].text);
    }
    if (i < units) append(unit(static_cast<uint64_t>(i)));
  }
  return text;
}

Result<SizedTask> SizeToTokens(const PromptFormat& format, int max_prompt_tokens,
                               const TaskBuilder& build) {
  auto render = [&](int units) -> Result<SizedTask> {
    SizedTask sized;
    sized.units = units;
    SPC_ASSIGN_OR_RETURN(sized.text, build(units));
    SPC_ASSIGN_OR_RETURN(sized.prompt, format.Render(sized.text.user, sized.text.answer_prefix));
    return sized;
  };
  SPC_ASSIGN_OR_RETURN(SizedTask best, render(0));
  if (static_cast<int>(best.prompt.tokens.size()) > max_prompt_tokens) {
    return InvalidArgument("a prompt of at most " + std::to_string(max_prompt_tokens) +
                           " tokens cannot hold this task: it needs " +
                           std::to_string(best.prompt.tokens.size()) + " without any haystack");
  }
  // Estimate the unit count from a small probe, then bracket and bisect: a dozen encodes at any
  // length instead of one per unit.
  constexpr int kProbe = 32;
  SPC_ASSIGN_OR_RETURN(SizedTask probe, render(kProbe));
  const double per_unit = std::max(
      1.0, static_cast<double>(probe.prompt.tokens.size() - best.prompt.tokens.size()) / kProbe);
  const int estimate = static_cast<int>((max_prompt_tokens - best.prompt.tokens.size()) / per_unit);
  int lo = 0;  // fits
  int hi = std::max(1, estimate + estimate / 16 + 1);
  if (static_cast<int>(probe.prompt.tokens.size()) <= max_prompt_tokens && kProbe < hi) {
    lo = kProbe;
    best = std::move(probe);
  }
  if (int guess = std::max(lo + 1, estimate - estimate / 16); guess < hi) {
    SPC_ASSIGN_OR_RETURN(SizedTask at_guess, render(guess));
    if (static_cast<int>(at_guess.prompt.tokens.size()) <= max_prompt_tokens) {
      lo = guess;
      best = std::move(at_guess);
    } else {
      hi = guess;
    }
  }
  while (true) {  // grow hi until it no longer fits
    SPC_ASSIGN_OR_RETURN(SizedTask at_hi, render(hi));
    if (static_cast<int>(at_hi.prompt.tokens.size()) > max_prompt_tokens) break;
    lo = hi;
    best = std::move(at_hi);
    if (hi >= kMaxUnits) return Internal("haystack sizing did not converge");
    hi *= 2;
  }
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    SPC_ASSIGN_OR_RETURN(SizedTask at_mid, render(mid));
    if (static_cast<int>(at_mid.prompt.tokens.size()) <= max_prompt_tokens) {
      lo = mid;
      best = std::move(at_mid);
    } else {
      hi = mid;
    }
  }
  return best;
}

}  // namespace specontext::eval
