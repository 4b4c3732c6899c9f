// A measurement hook on sparse decode attention: a backend given a probe shows it, for every
// sparse decode row and layer, what dense attention would have weighted and what the row
// attended to, so the recall of a selection (engine/specontext/recall_meter.h) is measured on
// the real model rather than asserted. Backends skip all of it when no probe is set.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace specontext {

struct SparseAttentionSample {
  int sequence = 0;  // the row's index in BatchStep::sequences
  int layer = 0;
  int position = 0;  // the decode token's position
  int num_heads = 0;
  int num_kv_heads = 0;
  // [num_heads][position + 1]: each query head's dense softmax weights over positions
  // 0..position (zero where a sliding window hides a position); each head's row sums to 1.
  std::span<const float> dense_weights;
  // Per KV head, the positions the row attended to (SequenceStep::sparse_positions).
  std::span<const std::vector<int32_t>> attended;
  // The layer is one of BatchStep::dense_layers: the row attended to every position there, and
  // dense_weights may be empty.
  bool dense_layer = false;
};

class AttentionProbe {
 public:
  virtual ~AttentionProbe() = default;
  // Runs on the thread that called ModelRunner::Step, once per (sparse decode row, layer), in
  // layer order; the sample's spans are valid only during the call.
  virtual void Observe(const SparseAttentionSample& sample) = 0;
};

}  // namespace specontext
