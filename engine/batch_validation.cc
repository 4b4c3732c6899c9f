#include "engine/batch_validation.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <functional>
#include <string>

namespace specontext {
namespace {

// Lists are used as given by every backend and every layer, so an out-of-order, repeated or
// unwritten position must stop the step here rather than read garbage KV.
Status ValidateSparsePositions(const SequenceStep& seq, const ModelConfig& config,
                               const std::string& where) {
  if (seq.sparse_positions.empty()) return Status::Ok();
  if (seq.tokens.size() != 1) {
    return InvalidArgument(where + "sparse positions are only for a one-token decode step, not " +
                           std::to_string(seq.tokens.size()) + " tokens");
  }
  if (seq.sparse_positions.size() != static_cast<size_t>(config.num_kv_heads)) {
    return InvalidArgument(where + "sparse positions for " +
                           std::to_string(seq.sparse_positions.size()) +
                           " KV heads, the model has " + std::to_string(config.num_kv_heads));
  }
  const int32_t position = seq.start_position;
  const int32_t first =
      config.sliding_window > 0 ? std::max(0, position - config.sliding_window + 1) : 0;
  for (size_t head = 0; head < seq.sparse_positions.size(); ++head) {
    const std::vector<int32_t>& list = seq.sparse_positions[head];
    const std::string head_where = where + "KV head " + std::to_string(head) + ": ";
    if (list.empty() || list.back() != position) {
      return InvalidArgument(head_where +
                             "sparse positions must end with the token's own position " +
                             std::to_string(position));
    }
    if (list.front() < first) {
      return InvalidArgument(head_where + "sparse position " + std::to_string(list.front()) +
                             " is before the first attendable position " + std::to_string(first));
    }
    const auto unordered = std::adjacent_find(list.begin(), list.end(), std::greater_equal<>());
    if (unordered != list.end()) {
      return InvalidArgument(head_where + "sparse positions are not strictly ascending at " +
                             std::to_string(*unordered) + ", " + std::to_string(*(unordered + 1)));
    }
  }
  return Status::Ok();
}

// One entry per returned logits row, sane temperatures, gathered tokens in the vocabulary.
Status ValidateSummaryRequest(const BatchStep& batch, const ModelConfig& config) {
  const LogitsSummaryRequest& summary = batch.summary;
  if (summary.top_k == 0) return Status::Ok();
  if (summary.top_k < 0 || summary.top_k > config.vocab_size) {
    return InvalidArgument("summary top_k " + std::to_string(summary.top_k) +
                           " is outside [1, vocabulary " + std::to_string(config.vocab_size) + "]");
  }
  size_t rows = 0;
  for (const SequenceStep& seq : batch.sequences) rows += seq.all_logits ? seq.tokens.size() : 1;
  if (summary.temperatures.size() != rows || summary.gather.size() != rows) {
    return InvalidArgument("a summary request for " + std::to_string(summary.temperatures.size()) +
                           " rows, the step returns " + std::to_string(rows));
  }
  for (size_t row = 0; row < rows; ++row) {
    const float t = summary.temperatures[row];
    if (!(t > 0.0f && t < INFINITY)) {
      return InvalidArgument("summary row " + std::to_string(row) + ": temperature " +
                             std::to_string(t) + " is not positive and finite");
    }
    for (int32_t token : summary.gather[row]) {
      if (token < 0 || token >= config.vocab_size) {
        return InvalidArgument("summary row " + std::to_string(row) + ": token id " +
                               std::to_string(token) + " is outside the vocabulary");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateBatch(const BatchStep& batch, const ModelConfig& config, const KvLayout& layout,
                     NullBlockCheck null_blocks) {
  SPC_RETURN_IF_ERROR(ValidateSummaryRequest(batch, config));
  for (int layer : batch.capture_layers) {
    if (layer < 0 || layer > config.num_layers) {
      return InvalidArgument("capture layer " + std::to_string(layer) + " is outside [0, " +
                             std::to_string(config.num_layers) + "]");
    }
  }
  if (batch.dense_layers < 0) {
    return InvalidArgument("dense_layers " + std::to_string(batch.dense_layers) + " is negative");
  }
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    const SequenceStep& seq = batch.sequences[s];
    const std::string where = "sequence " + std::to_string(s) + ": ";
    if (seq.tokens.empty()) return InvalidArgument(where + "no tokens to run");
    for (int32_t token : seq.tokens) {
      if (token < 0 || token >= config.vocab_size) {
        return InvalidArgument(where + "token id " + std::to_string(token) +
                               " is outside the vocabulary of " +
                               std::to_string(config.vocab_size));
      }
    }
    const int64_t end = static_cast<int64_t>(seq.start_position) + seq.tokens.size();
    if (seq.start_position < 0 || end > INT32_MAX) {
      return InvalidArgument(where + "position range out of bounds");
    }
    SPC_RETURN_IF_ERROR(ValidateSparsePositions(seq, config, where));
    if (seq.block_table.size() != static_cast<size_t>(config.num_layers)) {
      return InvalidArgument(where + "block table has " + std::to_string(seq.block_table.size()) +
                             " layers, the model " + std::to_string(config.num_layers));
    }
    const size_t needed = layout.BlocksFor(end);
    for (size_t layer = 0; layer < seq.block_table.size(); ++layer) {
      const auto& blocks = seq.block_table[layer];
      if (blocks.size() < needed) {
        return InvalidArgument(where + "layer " + std::to_string(layer) + " has " +
                               std::to_string(blocks.size()) + " KV blocks, " +
                               std::to_string(end) + " positions need " + std::to_string(needed));
      }
      if (null_blocks == NullBlockCheck::kByBackend) continue;
      const auto null_block = std::find(blocks.begin(), blocks.begin() + needed, nullptr);
      if (null_block != blocks.begin() + needed) {
        return InvalidArgument(where + "layer " + std::to_string(layer) + " block " +
                               std::to_string(null_block - blocks.begin()) + " is null");
      }
    }
  }
  return Status::Ok();
}

}  // namespace specontext
