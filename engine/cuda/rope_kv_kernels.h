// Rotary embedding of the step's q and k (rotate-half pairs (i, i + head_dim/2), as Hugging Face
// Llama), with Qwen3's per-head q/k RMSNorm fused in front, and the write of the rotated K and
// of V into the paged KV store. The inverse frequencies come from the host, so every rope
// scaling variant (default, linear, llama3, YaRN, dynamic NTK per step) is the same kernel.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"
#include "engine/cuda/paged_kv.h"

namespace specontext::cuda {

struct RopeKvArgs {
  // Activations of the step's tokens, in kv.dtype: q rows hold num_q_heads x head_dim, k and v
  // rows num_kv_heads x head_dim; strides in elements (a fused qkv projection shares one row).
  void* q = nullptr;
  void* k = nullptr;
  const void* v = nullptr;  // null: K only (the retrieval head's cache has no V)
  int q_stride = 0;
  int k_stride = 0;
  int v_stride = 0;
  int num_tokens = 0;
  int num_q_heads = 0;
  const int32_t* positions = nullptr;  // device [num_tokens]
  const int32_t* token_seq = nullptr;  // device [num_tokens]: the token's block-table row
  const float* inv_freq = nullptr;     // device [head_dim / 2]
  float rope_scale = 1.0f;             // multiplies cos and sin (YaRN's attention factor)
  // Qwen3: RMSNorm over each head (weights of head_dim, in kv.dtype) before the rotation.
  const void* q_norm_weight = nullptr;
  const void* k_norm_weight = nullptr;
  float norm_eps = 1e-6f;
};

// Rotates q and k in place and stores k and v at each token's position in `kv`. A position
// outside the block table is rotated but not stored (the host checks positions beforehand).
Status RopeAndWriteKv(const RopeKvArgs& args, const PagedKv& kv, cudaStream_t stream);

}  // namespace specontext::cuda
