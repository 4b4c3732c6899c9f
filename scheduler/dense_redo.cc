#include "scheduler/dense_redo.h"

#include <algorithm>
#include <cmath>

namespace specontext {

double TopTokenProbability(const StepOutput& out, size_t row) {
  if (!out.summaries.empty()) {
    const LogitsSummary& summary = out.summaries[row];
    // sum is Σ exp(l − max): the top token's probability is its inverse.
    return summary.non_finite > 0 || !(summary.sum >= 1.0) ? 1.0 : 1.0 / summary.sum;
  }
  const size_t vocab = static_cast<size_t>(out.vocab_size);
  const std::span<const float> logits = std::span(out.logits).subspan(row * vocab, vocab);
  const float top = *std::max_element(logits.begin(), logits.end());
  if (!std::isfinite(top)) return 1.0;
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - top);
  return std::isfinite(sum) && sum >= 1.0 ? 1.0 / sum : 1.0;
}

BatchStep DenseRedoBatch(const BatchStep& batch, std::span<const size_t> rows) {
  BatchStep redo;
  redo.capture_layers = batch.capture_layers;
  redo.hidden_on_device = batch.hidden_on_device;
  redo.summary.top_k = batch.summary.top_k;
  for (size_t row : rows) {
    SequenceStep step = batch.sequences[row];
    step.sparse_positions.clear();
    redo.sequences.push_back(std::move(step));
    if (row < batch.summary.temperatures.size()) {
      redo.summary.temperatures.push_back(batch.summary.temperatures[row]);
    }
    if (row < batch.summary.gather.size()) redo.summary.gather.push_back(batch.summary.gather[row]);
  }
  return redo;
}

}  // namespace specontext
