// SpeContext's dense re-run of unsure rows: a sparse decode row whose target is unsure of its
// next token under the list runs again over every position before its token is drawn
// (StepPlanner::RedoDense). The steps a list breaks, copies above all, are such steps
// (docs/specontext.md, "Run a step again densely").
#pragma once

#include <cstddef>
#include <span>

#include "engine/batch.h"

namespace specontext {

// The probability of row `row`'s most likely token at temperature 1, from its summary or its
// logits row; 1 for a row with non-finite logits (nothing to gain from running it again).
double TopTokenProbability(const StepOutput& out, size_t row);

// Rows `rows` of `batch` as a step of their own, dense: the same tokens, positions and block
// tables (the step writes the same positions' KV again), no lists, their summary requests and
// the batch's captured layers carried over.
BatchStep DenseRedoBatch(const BatchStep& batch, std::span<const size_t> rows);

}  // namespace specontext
