// An independent forward pass for tests: plain loops in double precision straight from the
// checkpoint tensors, no paging, no fusion, KV heads repeated per query head. Slow, but small
// enough to read and check against the Hugging Face modelling code line by line.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/model/model.h"

namespace specontext::testing {

// Logits [tokens.size()][vocab] for one sequence starting at position 0. Supports unscaled RoPE
// only (the tiny presets); sliding windows, qkv bias, q/k norm and tied embeddings are honoured.
std::vector<double> DenseReferenceLogits(const Model& model, const std::vector<int32_t>& tokens);

// The same with the last token restricted, in every layer from `dense_layers` on, to
// `last_visible[kv_head]` (the positions a sparse decode step lists): what a sparse step must
// reproduce.
std::vector<double> MaskedReferenceLogits(const Model& model, const std::vector<int32_t>& tokens,
                                          const std::vector<std::vector<int32_t>>& last_visible,
                                          int dense_layers = 0);

}  // namespace specontext::testing
