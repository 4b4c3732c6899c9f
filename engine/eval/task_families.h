// The task families. Each call draws one sample's needles and answers from `rng` and returns the
// builder that lays them into a haystack of any size (see haystack.h). Prompts follow RULER and
// InfiniteBench in shape, with the question last and an answer prefix that ends right where the
// answer starts, which small instruct models need.
#pragma once

#include "engine/eval/eval_rng.h"
#include "engine/eval/haystack.h"

namespace specontext::eval {

// RULER needle in a haystack (niah.cc).
enum class NiahKind {
  kSingle,      // one key, one 7-digit value
  kMultiKey,    // four keys, one asked
  kMultiValue,  // one key with four values, all asked
  kMultiQuery,  // four keys, all asked
  kUuid,        // one key whose value is a UUID
};
TaskBuilder NiahTask(NiahKind kind, EvalRng& rng);

// RULER variable tracking: one chain of five assignments, all names asked
// (variable_tracking.cc).
TaskBuilder VariableTrackingTask(EvalRng& rng);

// RULER aggregation (words_extraction.cc): the ten most common words of a numbered list, and the
// three most frequent words of a coded text.
TaskBuilder CommonWordsTask(EvalRng& rng);
TaskBuilder FrequentWordsTask(EvalRng& rng);

// InfiniteBench retrieval (infinite_retrieval.cc): a 5-digit pass key, a 10-digit number, and
// the value of one key among UUID pairs in a JSON object.
TaskBuilder PasskeyTask(EvalRng& rng);
TaskBuilder NumberStringTask(EvalRng& rng);
TaskBuilder KvRetrievalTask(EvalRng& rng);

}  // namespace specontext::eval
