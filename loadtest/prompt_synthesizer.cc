#include "loadtest/prompt_synthesizer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <span>

namespace specontext::loadtest {

namespace {

// Words are plain lowercase-or-capitalized ASCII so no tokenizer merges them with neighbours.
bool IsPlainWord(const std::string& text) {
  if (text.size() < 3 || text.front() != ' ') return false;
  return std::all_of(text.begin() + 1, text.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); });
}

constexpr size_t kMinWords = 256;
constexpr int kMaxFitRounds = 32;
constexpr uint64_t kPrefixStream = 0x9E3779B97F4A7C15ull;
constexpr int64_t kDocumentMargin = 64;

std::mt19937_64 StreamFor(uint64_t seed, uint64_t index) {
  std::seed_seq sequence{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                         static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32)};
  return std::mt19937_64(sequence);
}

}  // namespace

Result<PromptSynthesizer> PromptSynthesizer::Create(const Tokenizer& tokenizer,
                                                    DatasetOptions options) {
  if (options.input_len < 1 || options.output_len < 1) {
    return InvalidArgument("input and output lengths must be at least 1 token");
  }
  if (!(options.range_ratio >= 0 && options.range_ratio < 1)) {
    return InvalidArgument("range ratio must be in [0, 1), got " +
                           std::to_string(options.range_ratio));
  }
  if (options.kind == DatasetKind::kSharedPrefix &&
      (options.prefix_len < 1 || options.prefix_groups < 1)) {
    return InvalidArgument(
        "shared-prefix mode needs a prefix length and group count of at least 1");
  }
  std::vector<std::string> words;
  for (size_t id = 0; id < tokenizer.VocabSize(); ++id) {
    const auto token = static_cast<int32_t>(id);
    if (tokenizer.IsSpecial(token)) continue;
    const int32_t ids[] = {token};
    auto text = tokenizer.Decode(ids, /*skip_special_tokens=*/true);
    if (text.ok() && IsPlainWord(*text)) words.push_back(std::move(*text));
  }
  if (words.size() < kMinWords) {
    return FailedPrecondition("the tokenizer has only " + std::to_string(words.size()) +
                              " plain-word tokens; synthetic prompts need " +
                              std::to_string(kMinWords));
  }
  PromptSynthesizer synthesizer(tokenizer, options, std::move(words));
  if (options.kind == DatasetKind::kDocument) {
    SPC_ASSIGN_OR_RETURN(synthesizer.document_ids_,
                         tokenizer.Encode(options.document, /*add_special_tokens=*/false));
    // Room for the longest window plus a margin for tokens that merge across its edges.
    const auto longest =
        static_cast<int64_t>(std::ceil(options.input_len * (1 + options.range_ratio)));
    if (static_cast<int64_t>(synthesizer.document_ids_.size()) < longest + kDocumentMargin) {
      return InvalidArgument("the document has " +
                             std::to_string(synthesizer.document_ids_.size()) +
                             " tokens; prompts of up to " + std::to_string(longest) +
                             " tokens need " + std::to_string(longest + kDocumentMargin));
    }
  }
  if (options.kind == DatasetKind::kSharedPrefix) {
    for (int64_t group = 0; group < options.prefix_groups; ++group) {
      auto rng = StreamFor(options.seed ^ kPrefixStream, static_cast<uint64_t>(group));
      SPC_ASSIGN_OR_RETURN(std::string prefix,
                           synthesizer.FitWords("", "", options.prefix_len, rng));
      synthesizer.prefixes_.push_back(std::move(prefix));
    }
  }
  return synthesizer;
}

PromptSynthesizer::PromptSynthesizer(const Tokenizer& tokenizer, DatasetOptions options,
                                     std::vector<std::string> words)
    : tokenizer_(&tokenizer), options_(options), words_(std::move(words)) {}

Result<SyntheticPrompt> PromptSynthesizer::Make(uint64_t index) const {
  auto rng = StreamFor(options_.seed, index);
  const int64_t input_len = SampleLength(options_.input_len, rng);
  const int64_t output_len = SampleLength(options_.output_len, rng);
  SyntheticPrompt prompt;
  switch (options_.kind) {
    case DatasetKind::kRandom: {
      SPC_ASSIGN_OR_RETURN(prompt.text, FitWords("", "", input_len, rng));
      prompt.input_tokens = input_len;
      break;
    }
    case DatasetKind::kSharedPrefix: {
      const std::string& prefix = prefixes_[index % prefixes_.size()];
      const int64_t total = options_.prefix_len + input_len;
      SPC_ASSIGN_OR_RETURN(prompt.text, FitWords(prefix, "", total, rng));
      prompt.input_tokens = total;
      break;
    }
    case DatasetKind::kPasskey: {
      SPC_ASSIGN_OR_RETURN(prompt, MakePasskey(input_len, rng));
      break;
    }
    case DatasetKind::kDocument: {
      SPC_ASSIGN_OR_RETURN(prompt.text, DocumentWindow(input_len, rng));
      prompt.input_tokens = input_len;
      break;
    }
  }
  prompt.output_tokens = output_len;
  return prompt;
}

int64_t PromptSynthesizer::SampleLength(int64_t length, std::mt19937_64& rng) const {
  const double spread = static_cast<double>(length) * options_.range_ratio;
  const auto low = std::max<int64_t>(1, static_cast<int64_t>(std::floor(length - spread)));
  const auto high = static_cast<int64_t>(std::ceil(length + spread));
  return std::uniform_int_distribution<int64_t>(low, std::max(low, high))(rng);
}

std::string PromptSynthesizer::RandomWords(int64_t count, std::mt19937_64& rng) const {
  std::uniform_int_distribution<size_t> pick(0, words_.size() - 1);
  std::string text;
  for (int64_t i = 0; i < count; ++i) text += words_[pick(rng)];
  return text;
}

Result<int64_t> PromptSynthesizer::CountTokens(const std::string& text) const {
  SPC_ASSIGN_OR_RETURN(auto ids, tokenizer_->Encode(text, /*add_special_tokens=*/true));
  return static_cast<int64_t>(ids.size());
}

Result<std::string> PromptSynthesizer::FitWords(const std::string& head, const std::string& tail,
                                                int64_t target, std::mt19937_64& rng) const {
  // Each word is one token in the middle of a text, so the count is the word count plus a small
  // constant (special tokens, the first word at the start of the text): a few corrections
  // converge. Words are drawn once and the count only changes which of them are used.
  SPC_ASSIGN_OR_RETURN(const int64_t fixed, CountTokens(head + tail));
  int64_t count = std::max<int64_t>(0, target - fixed);
  std::vector<std::string> drawn;
  std::uniform_int_distribution<size_t> pick(0, words_.size() - 1);
  int64_t previous_miss = 0;
  for (int round = 0; round < kMaxFitRounds; ++round) {
    while (static_cast<int64_t>(drawn.size()) < count) drawn.push_back(words_[pick(rng)]);
    std::string text = head;
    for (int64_t i = 0; i < count; ++i) text += drawn[static_cast<size_t>(i)];
    text += tail;
    SPC_ASSIGN_OR_RETURN(const int64_t tokens, CountTokens(text));
    const int64_t miss = target - tokens;
    if (miss == 0) return text;
    if (previous_miss > 0 && miss < 0 && count > 0) {
      // The last word split into several tokens and jumped over the target: try another.
      drawn[static_cast<size_t>(count - 1)] = words_[pick(rng)];
    } else {
      count = std::max<int64_t>(0, count + miss);
    }
    previous_miss = miss;
  }
  return FailedPrecondition("cannot build a prompt of exactly " + std::to_string(target) +
                            " tokens (the fixed part alone has " + std::to_string(fixed) + ")");
}

Result<SyntheticPrompt> PromptSynthesizer::MakePasskey(int64_t target, std::mt19937_64& rng) const {
  const std::string key = std::to_string(std::uniform_int_distribution<int>(10000, 99999)(rng));
  const std::string instruction =
      "There is a pass key hidden inside a lot of irrelevant text. Find it and memorize it.";
  const std::string needle =
      " The pass key is " + key + ". Remember it. " + key + " is the pass key.";
  const std::string question = " What is the pass key? The pass key is";
  SPC_ASSIGN_OR_RETURN(const int64_t fixed, CountTokens(instruction + needle + question));
  const int64_t filler = target - fixed;
  if (filler < 2) {
    return InvalidArgument("passkey prompts need more than " + std::to_string(fixed + 1) +
                           " input tokens, got " + std::to_string(target));
  }
  const int64_t before = std::uniform_int_distribution<int64_t>(0, filler)(rng);
  const std::string head = instruction + RandomWords(before, rng) + needle;
  SPC_ASSIGN_OR_RETURN(std::string text, FitWords(head, question, target, rng));
  return SyntheticPrompt{.text = std::move(text), .input_tokens = target, .expected_answer = key};
}

Result<std::string> PromptSynthesizer::DocumentWindow(int64_t target, std::mt19937_64& rng) const {
  const auto total = static_cast<int64_t>(document_ids_.size());
  int64_t offset = std::uniform_int_distribution<int64_t>(0, total - target - kDocumentMargin)(rng);
  // Decoding a window and encoding it again gives about as many tokens (plus special ones, and
  // give or take merges at the cut): move the end until the count is exact, and the start by
  // one where a merge at the end makes the count jump over the target.
  int64_t count = target, previous_miss = 0;
  for (int round = 0; round < kMaxFitRounds; ++round) {
    const std::span<const int32_t> window(document_ids_.data() + offset,
                                          static_cast<size_t>(count));
    SPC_ASSIGN_OR_RETURN(std::string text,
                         tokenizer_->Decode(window, /*skip_special_tokens=*/true));
    SPC_ASSIGN_OR_RETURN(const int64_t tokens, CountTokens(text));
    const int64_t miss = target - tokens;
    if (miss == 0) return text;
    if (previous_miss != 0 && (previous_miss > 0) != (miss > 0)) {
      offset = std::min(offset + 1, total - count);
    } else {
      count = std::clamp<int64_t>(count + miss, 1, total - offset);
    }
    previous_miss = miss;
  }
  return FailedPrecondition("cannot cut a window of exactly " + std::to_string(target) +
                            " tokens from the document at offset " + std::to_string(offset));
}

}  // namespace specontext::loadtest
