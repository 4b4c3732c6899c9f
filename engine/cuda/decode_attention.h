// Decode attention: one query token per sequence against that sequence's paged KV, for a batch
// of sequences of different lengths in one launch. GQA-native (a CTA serves every query head of
// its KV head, so K and V are read once) and split along the sequence for long contexts
// (flash-decoding: per-split softmax statistics, then a combine kernel).
// The sparse form (SpeContext) attends, per (sequence, KV head), to an explicit list of positions.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "engine/cuda/paged_kv.h"

namespace specontext::cuda {

struct DecodeAttentionArgs {
  const void* q = nullptr;  // [batch][num_q_heads x head_dim] rows, q_stride elements apart
  void* out = nullptr;      // same shape, out_stride elements apart
  int q_stride = 0;
  int out_stride = 0;
  int batch = 0;
  int num_q_heads = 0;
  float scale = 1.0f;  // applied to q·k
  // Dense: sequence b attends to positions [0, seq_lens[b]) (device memory).
  const int32_t* seq_lens = nullptr;
  // Sparse, when set: sequence b, KV head h attends to positions
  // indices[(b * num_kv_heads + h) * index_stride + i] for i < index_counts[b * num_kv_heads + h];
  // a negative count makes that row dense (seq_lens), so one launch serves a mixed batch.
  const int32_t* indices = nullptr;
  const int32_t* index_counts = nullptr;
  int index_stride = 0;
  // Elastic KV, when set (with indices): rows b with slot_rows[b] != 0 read their lists from
  // slot_indices (same shape and counts), which name GPU slot copies of the positions.
  const int32_t* slot_rows = nullptr;
  const int32_t* slot_indices = nullptr;
};

// How a launch is cut; made on the host from the batch's longest length (or largest index
// count), so the workspace can be sized before the launch.
struct DecodeAttentionPlan {
  int heads_per_cta = 0;   // query heads one CTA serves (a power of two, at most 8)
  int head_subgroups = 0;  // CTAs per KV head along the query-head group
  int chunk = 0;           // keys per split
  int splits = 0;          // splits of the longest sequence
  // The grid fits in one wave even at the register cost of loading V together with K: each
  // split then waits on memory once (fewer CTAs per multiprocessor would cost more waves).
  bool prefetch_v = false;
  size_t workspace_bytes = 0;
};

// max_len: an upper bound of the lengths (or index counts) of this batch.
Result<DecodeAttentionPlan> PlanDecodeAttention(const PagedKv& kv, int batch, int num_q_heads,
                                                int max_len);

// workspace: device memory of plan.workspace_bytes (none needed when plan.splits == 1).
// A sequence with nothing to attend to gets a zero output row.
Status DecodeAttention(const DecodeAttentionArgs& args, const PagedKv& kv,
                       const DecodeAttentionPlan& plan, void* workspace, cudaStream_t stream);

}  // namespace specontext::cuda
