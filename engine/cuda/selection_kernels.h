// SpeContext's selection on the GPU, once per decode step: the retrieval head's query against
// its own K cache, softmax per query head, the element-wise maximum over each GQA group, and
// the top-B positions per (sequence, KV head), returned in ascending order. Sinks (the first
// positions) and a recent window are always kept. engine/specontext/selector.h is the CPU
// reference this must match.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "engine/cuda/paged_kv.h"

namespace specontext::cuda {

struct SelectionArgs {
  const void* q = nullptr;  // [rows][num_q_heads x head_dim], after RoPE, in kv.dtype
  int q_stride = 0;         // elements between rows
  int rows = 0;
  int num_q_heads = 0;
  float scale = 1.0f;                // applied to q·k
  const int32_t* lengths = nullptr;  // device [rows]: positions in each row's head cache
  int max_length = 0;                // host: an upper bound of lengths
  int budget = 0;                    // B
  int sinks = 0;                     // first positions always kept
  int window = 0;                    // last positions always kept (sinks + window <= B)
  // Outputs (device): [rows][kv_heads][budget] positions, ascending; the count per (row, KV
  // head) is min(length, B); the selected share of the group-max weights, sum over the selected
  // positions over the sum over all of them.
  int32_t* indices = nullptr;
  int32_t* counts = nullptr;
  float* mass = nullptr;
  // The selection memory (SelectionMemory in engine/specontext/selector.h) when memory_decay > 0:
  // memory[row] (device) holds the row's ranking weights of its previous selection,
  // [position][kv_heads] floats with room for `lengths[row]` positions, valid below
  // remembered[row]. Each position ranks by max(weight, memory_decay x remembered weight), and
  // the memory is rewritten with the ranking. The mass stays the share of this step's weights.
  float memory_decay = 0.0f;
  float* const* memory = nullptr;       // device [rows]
  const int32_t* remembered = nullptr;  // device [rows]
};

// Device scratch the launch needs: scores of every query head, the group-max weights and, for
// the selection memory, the ranking.
size_t SelectionWorkspaceBytes(int rows, int num_q_heads, int num_kv_heads, int max_length);

// head_k: the head's K cache, paged like a KV layer (only K is read).
Status SelectPositions(const SelectionArgs& args, const PagedKv& head_k, void* workspace,
                       size_t workspace_bytes, cudaStream_t stream);

}  // namespace specontext::cuda
