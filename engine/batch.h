// The engine's batch contract: plain arrays in, logits (or summaries of them) out. The scheduler
// fills it; the engine never sees requests, sockets or JSON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace specontext {

// GPU blocks lent to one offloaded layer of a sequence for elastic loading's slots (the KV store
// lends them, so the memory manager counts them): blocks of KvLayout::BlockBytes each, the
// slots [i * block_tokens, (i + 1) * block_tokens) in blocks[i].
struct SlotBlocks {
  // Names these blocks: a new lease means new blocks (or the same ones lent again after the
  // layer came back to the GPU), whose contents are unknown. 0: nothing lent.
  uint64_t lease = 0;
  std::vector<std::byte*> blocks;
};

// One sequence's slice of a forward step: a prefill chunk or a single decode token.
struct SequenceStep {
  std::vector<int32_t> tokens;  // tokens to run now
  int32_t start_position = 0;   // position of tokens[0]; KV for [0, start_position) is cached
  // block_table[layer][i]: the i-th KV block (KvLayout) of this sequence for that layer, large
  // enough for start_position + tokens.size() positions. The step writes the new K/V into it.
  std::vector<std::vector<std::byte*>> block_table;
  // Nonzero when the caller vouches that, for the same seq_id and the same version, the entries
  // of block_table a previous step saw are unchanged (tables only grew), so a backend may keep
  // its copy and read only the new entries. A caller gives a new value whenever any entry
  // changes (a layer moved between tiers, blocks staged); 0: no such promise.
  uint64_t table_version = 0;
  // Per layer, nonzero when its blocks live in host memory (offloaded by the memory manager);
  // empty when every layer is on the device. A GPU backend attends to an offloaded layer of a
  // SpeContext row through GPU slot copies of the selected positions (elastic loading), which
  // the host reads from those blocks: they must be host memory, pinned and mapped.
  std::vector<uint8_t> host_layers;
  // Per layer (or empty), the slot blocks lent to a SpeContext decode row's offloaded layers; a
  // layer with none lent gets slots from the backend itself (CudaRunnerOptions).
  std::vector<SlotBlocks> slot_blocks;
  // Names the sequence across steps so a backend may keep per-sequence state (those slot
  // copies); 0 when the caller keeps no identity. ModelRunner::ReleaseSequence drops it.
  uint64_t seq_id = 0;
  // Logits for every token of the step (parity tests) or only for the last one (serving).
  bool all_logits = false;
  // SpeContext: for a decode step (one token), the positions it attends to per KV head, in
  // ascending order, shared by every layer; empty means dense attention over every position.
  std::vector<std::vector<int32_t>> sparse_positions;
};

// Asks a runner for a summary of each returned logits row instead of the whole row, so a GPU
// backend sends a few KB per row to the host rather than the vocabulary (sampler.h says how a
// token is drawn from a summary). Runners that cannot summarise return whole rows.
struct LogitsSummaryRequest {
  int top_k = 0;  // 0: whole rows; else the largest top_k logits of each row
  // Per returned row: the temperature of LogitsSummary::sum_scaled, and the tokens whose logits
  // are gathered (those a penalty or a mask changes).
  std::vector<float> temperatures;
  std::vector<std::vector<int32_t>> gather;
};

struct BatchStep {
  std::vector<SequenceStep> sequences;
  LogitsSummaryRequest summary;
  // Residual-stream states to hand back (StepOutput::hidden): the input of each listed decoder
  // layer (0 is the embedding, num_layers the last layer's output before the final norm). The
  // SpeContext retrieval head reads them (EAGLE-3's low, middle and high layers).
  std::vector<int> capture_layers;
  // SpeContext: layers [0, dense_layers) attend to every position even in rows with
  // sparse_positions (layer 0's attention is spread over the whole context: docs/specontext.md).
  int dense_layers = 0;
  // The captured states stay in the runner's device memory for a planner that reads them there
  // (the CUDA planner, through CudaModelRunner::CapturedHidden): StepOutput::hidden is left empty
  // and the engine calls StepPlanner::ObserveStep instead of ObserveHidden.
  bool hidden_on_device = false;
};

// One row of logits l, as far as sampling needs it.
struct LogitsSummary {
  float max_logit = 0.0f;
  double sum = 0.0;         // Σ exp(l − max_logit)
  double sum_scaled = 0.0;  // Σ exp((l − max_logit) / temperature)
  int32_t non_finite = 0;   // NaN or +inf entries (the row is unusable)
  int32_t neg_inf = 0;      // −inf entries
  // The top_k largest logits, largest first, ties to the lower token id: exactly the first
  // top_k tokens of the row's order.
  std::vector<int32_t> top_tokens;
  std::vector<float> top_logits;
  std::vector<float> gathered;  // the logits of LogitsSummaryRequest::gather, in its order
};

struct StepOutput {
  // Row-major [rows][vocab]; rows are sequences in order, each contributing one row, or
  // tokens.size() rows when all_logits was set.
  // Empty when summaries were returned instead.
  std::vector<float> logits;
  int vocab_size = 0;
  std::vector<LogitsSummary> summaries;  // per returned row, when BatchStep::summary asked
  // With capture_layers: [every token of the step, sequences in order][capture_layers.size()]
  // [hidden_size], the layers concatenated per token in the order asked.
  std::vector<float> hidden;
};

}  // namespace specontext
