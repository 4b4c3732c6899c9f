// SpeContext's head-level selection for one decode token: softmax(q·Kᵀ/√d) per query head over
// the retrieval head's K cache, the element-wise max over each GQA group, and the top-B
// positions per KV head, optionally always keeping attention sinks and a recent window.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "engine/cpu/thread_pool.h"
#include "engine/specontext/head_kv_cache.h"

namespace specontext {

struct SelectionOptions {
  int64_t budget = 0;         // B: positions per KV head
  int64_t sink_tokens = 0;    // the first N positions are always selected
  int64_t recent_window = 0;  // the last W positions (the current token included) too
  // With a SelectionMemory, each position ranks by the larger of its weight now and this times
  // its ranking weight at the sequence's previous selection: what the head found stays
  // selected for a while after its weight fades (a copied span: docs/specontext.md). 0: off.
  double memory_decay = 0.0;
};

// One sequence's ranking weights at its last selection, per KV head (position-indexed). A
// shorter cache (a recompute) drops what lies beyond it.
struct SelectionMemory {
  std::vector<std::vector<float>> weights;
};

struct Selection {
  // Per KV head, ascending; min(B, S) positions each.
  std::vector<std::vector<int32_t>> positions;
  // Per KV head, the group-max weights normalised to sum to 1 over every position; the share
  // the selected positions carry, averaged over KV heads. 1 when every position is selected.
  double selected_mass = 0.0;
};

// `q` is the current token's [num_heads][head_dim] after RoPE; `cache` holds S positions, the
// current one included. Forced positions come first within the budget (sinks, then the window
// from the newest); the rest are the highest weights, ties going to the earlier position.
// selected_mass is always the share of this step's own weights. `memory` (may be null) is read
// and updated when options.memory_decay > 0.
Status SelectPositions(std::span<const float> q, int num_heads, const HeadKvCache& cache,
                       const SelectionOptions& options, cpu::ThreadPool& pool, Selection* out,
                       SelectionMemory* memory = nullptr);

}  // namespace specontext
