// Synthetic prompts whose lengths are exact token counts under the served model's tokenizer
// (counted with special tokens, as the server counts `usage.prompt_tokens`). Prompts are random
// whole-word vocabulary entries, so they re-tokenize stably; every request index gets its own
// seeded stream, which makes a workload reproducible across runs and tools.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/tokenizer/tokenizer.h"

namespace specontext::loadtest {

enum class DatasetKind {
  kRandom,        // random words of the sampled input length
  kSharedPrefix,  // one of `prefix_groups` fixed prefixes, then a random suffix
  kPasskey,       // long context: a pass key hidden in filler at a random depth, asked for last
  kDocument,      // ordinary text: a window of a given document at a random offset, continued
};

struct DatasetOptions {
  DatasetKind kind = DatasetKind::kRandom;
  int64_t input_len = 256;   // tokens (the suffix in shared-prefix mode)
  int64_t output_len = 128;  // max_tokens
  // Lengths are drawn uniformly from [len * (1 - ratio), len * (1 + ratio)].
  double range_ratio = 0;
  int64_t prefix_len = 0;  // shared-prefix mode: tokens of the common prefix
  int64_t prefix_groups = 1;
  uint64_t seed = 0;
  std::string document;  // document mode: the text prompts are cut from
};

struct SyntheticPrompt {
  std::string text;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  std::optional<std::string> expected_answer;  // the pass key, in passkey mode
};

class PromptSynthesizer {
 public:
  // Fails for impossible lengths or a vocabulary with too few plain words to build prompts from.
  static Result<PromptSynthesizer> Create(const Tokenizer& tokenizer, DatasetOptions options);

  // Deterministic in (seed, index).
  Result<SyntheticPrompt> Make(uint64_t index) const;

 private:
  PromptSynthesizer(const Tokenizer& tokenizer, DatasetOptions options,
                    std::vector<std::string> words);

  int64_t SampleLength(int64_t length, std::mt19937_64& rng) const;
  std::string RandomWords(int64_t count, std::mt19937_64& rng) const;
  // `head` + random words + `tail`, with the word count searched so the whole text encodes to
  // exactly `target` tokens.
  Result<std::string> FitWords(const std::string& head, const std::string& tail, int64_t target,
                               std::mt19937_64& rng) const;
  Result<int64_t> CountTokens(const std::string& text) const;
  Result<SyntheticPrompt> MakePasskey(int64_t target, std::mt19937_64& rng) const;
  // The decoded window of document_ids_ from a random offset that encodes to exactly `target`.
  Result<std::string> DocumentWindow(int64_t target, std::mt19937_64& rng) const;

  const Tokenizer* tokenizer_;
  DatasetOptions options_;
  std::vector<std::string> words_;  // each a single vocabulary entry with its leading space
  std::vector<std::string> prefixes_;
  std::vector<int32_t> document_ids_;
};

}  // namespace specontext::loadtest
