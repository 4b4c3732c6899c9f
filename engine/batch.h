// The engine's batch contract: plain arrays in, logits out. The scheduler fills it; the engine
// never sees requests, sockets or JSON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace specontext {

// One sequence's slice of a forward step: a prefill chunk or a single decode token.
struct SequenceStep {
  std::vector<int32_t> tokens;  // tokens to run now
  int32_t start_position = 0;   // position of tokens[0]; KV for [0, start_position) is cached
  // block_table[layer][i]: the i-th KV block (KvLayout) of this sequence for that layer, large
  // enough for start_position + tokens.size() positions. The step writes the new K/V into it.
  std::vector<std::vector<std::byte*>> block_table;
  // Logits for every token of the step (parity tests) or only for the last one (serving).
  bool all_logits = false;
  // SpeContext: for a decode step (one token), the positions it attends to per KV head, in
  // ascending order, shared by every layer; empty means dense attention over every position.
  std::vector<std::vector<int32_t>> sparse_positions;
};

struct BatchStep {
  std::vector<SequenceStep> sequences;
  // Residual-stream states to hand back (StepOutput::hidden): the input of each listed decoder
  // layer (0 is the embedding, num_layers the last layer's output before the final norm). The
  // SpeContext retrieval head reads them (EAGLE-3's low, middle and high layers).
  std::vector<int> capture_layers;
};

struct StepOutput {
  // Row-major [rows][vocab]; rows are sequences in order, each contributing one row, or
  // tokens.size() rows when all_logits was set.
  std::vector<float> logits;
  int vocab_size = 0;
  // With capture_layers: [every token of the step, sequences in order][capture_layers.size()]
  // [hidden_size], the layers concatenated per token in the order asked.
  std::vector<float> hidden;
};

}  // namespace specontext
