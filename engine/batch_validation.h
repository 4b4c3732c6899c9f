// Checks a BatchStep against the model and the KV layout before any backend touches memory:
// token ids in the vocabulary, positions in range, one block table per layer covering every
// position of the step, no null block, and sparse position lists that a decode step can use as
// given (one per KV head, strictly ascending, inside the sliding window, ending with the token's
// own position), and a logits summary request with one entry per returned row. Shared by every
// ModelRunner.
#pragma once

#include "common/status.h"
#include "engine/batch.h"
#include "engine/model/model_config.h"
#include "kv_store/kv_layout.h"

namespace specontext {

// kByBackend: the backend keeps copies of block tables across steps (SequenceStep::
// table_version) and checks for null only the entries it copies, so a step's cost does not
// grow with every sequence's whole table; tables are still checked for length.
enum class NullBlockCheck { kEveryEntry, kByBackend };

Status ValidateBatch(const BatchStep& batch, const ModelConfig& config, const KvLayout& layout,
                     NullBlockCheck null_blocks = NullBlockCheck::kEveryEntry);

}  // namespace specontext
