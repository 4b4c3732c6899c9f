#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/eval/eval_report.h"
#include "engine/specontext/recall_meter.h"
#include "server/serving_model.h"

namespace specontext::server {

struct EvalOptions {
  ServingModelOptions model;
  std::string backend = "auto";
  std::vector<std::string> tasks;  // empty: every task
  std::vector<int> lengths = {1024, 2048, 4096};
  int samples = 3;
  uint64_t seed = 0;
  int concurrency = 2;
  std::string json_path;            // the full report as JSON
  std::string tasks_path;           // the generated tasks as JSONL
  bool write_only = false;          // generate and write the tasks, run nothing
  std::string attention = "dense";  // the server mode every task runs under
  bool recall = false;  // measure the share of the target's attention the selection captures
};

struct EvalResult {
  std::vector<eval::CellResult> cells;
  std::string table;
  std::optional<RecallSummary> recall;  // with --recall
  ElasticLoadStats elastic;             // offloaded layers attended through GPU slots
  SpecontextCounters specontext;        // how the decode rows ran (sparse, short, dense fallback)
};

// Generates the tasks from the model's tokenizer, runs them on the model in-process and scores
// them. Progress goes to stderr.
Result<EvalResult> RunEval(EvalOptions options);

// `specontext eval`: long-context accuracy per task and length (docs/eval.md).
void AddEvalCommand(CLI::App& app);

}  // namespace specontext::server
