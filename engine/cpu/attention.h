// Causal attention over the paged KV store (kv_store/kv_layout.h), fp32 blocks. GQA and MQA
// read the shared KV head directly: query head h uses KV head h / (num_heads / num_kv_heads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/cpu/thread_pool.h"
#include "kv_store/kv_layout.h"

namespace specontext::cpu {

// One sequence's rows of the step: tokens at positions start_position .. + num_tokens - 1,
// stored at rows first_row .. of the packed activations.
struct AttentionSpan {
  int first_row = 0;
  int num_tokens = 0;
  int start_position = 0;
  const std::vector<std::byte*>* blocks = nullptr;  // this layer's blocks of the sequence
  // A sparse decode row (SequenceStep::sparse_positions, validated): per KV head, the positions
  // it attends to instead of every earlier one. nullptr: dense.
  const std::vector<std::vector<int32_t>>* sparse = nullptr;
};

struct AttentionShape {
  int num_heads = 0;
  int sliding_window = 0;  // 0: attend to every earlier position
  float scale = 1.0f;      // applied to q·k
};

// Stores the K and V vectors (num_kv_heads × head_dim each) of one position.
void WriteKv(const KvLayout& layout, const std::vector<std::byte*>& blocks, int position,
             const float* k, const float* v);

// out[row] = softmax(q[row] · K[0..pos]ᵀ · scale) · V[0..pos] for every row of every span (a
// sparse span: over its listed positions only); the step's own K/V must already be written. q
// and out rows hold num_heads × head_dim floats, `q_stride` floats apart.
void PagedAttention(ThreadPool& pool, const KvLayout& layout, const AttentionShape& shape,
                    const std::vector<AttentionSpan>& spans, const float* q, int q_stride,
                    float* out);

// The weights dense attention would give the last row of `span` (a decode token at position
// p): weights[head * (p + 1) + i] for every query head and position i <= p, zero outside a
// sliding window. Measures what a sparse row leaves out; `span.sparse` is ignored.
void DenseAttentionWeights(ThreadPool& pool, const KvLayout& layout, const AttentionShape& shape,
                           const AttentionSpan& span, const float* q, int q_stride,
                           std::vector<float>& weights);

}  // namespace specontext::cpu
