// Causal prefill attention over the paged KV store, variable length across the batch: the new
// tokens of each sequence attend to every cached position before them and to each other
// causally, so a chunk of a long prompt sees the chunks already written. Tiled with an online
// softmax on tensor cores (mma.sync m16n8k16, 16-bit operands, fp32 accumulation).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"
#include "engine/cuda/paged_kv.h"

namespace specontext::cuda {

struct PrefillAttentionArgs {
  // The step's tokens packed row after row; each row num_q_heads x head_dim elements, strides
  // in elements.
  const void* q = nullptr;
  void* out = nullptr;
  int q_stride = 0;
  int out_stride = 0;
  int num_seqs = 0;
  int num_q_heads = 0;
  float scale = 1.0f;  // applied to q·k
  // Device arrays of num_seqs: the sequence's first row, its number of new tokens, and its
  // length including them (its new token i sits at position kv_len - q_len + i; K/V of every
  // position below kv_len must already be in the store).
  const int32_t* q_start = nullptr;
  const int32_t* q_len = nullptr;
  const int32_t* kv_len = nullptr;
  int max_q_len = 0;  // host-side upper bound of q_len, sizes the grid
  // Query rows per CTA, 64 or 128; 0 picks by max_q_len (tests and benchmarks pin each).
  int tile_rows = 0;
};

// head_dim 64 or 128.
Status PrefillAttention(const PrefillAttentionArgs& args, const PagedKv& kv, cudaStream_t stream);

}  // namespace specontext::cuda
