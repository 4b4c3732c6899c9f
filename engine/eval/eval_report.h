// Accuracy per (task, length) cell, as a readable table and as JSON, and the JSONL form of
// generated tasks (prompts and answers, e.g. as training data for a draft model).
#pragma once

#include <boost/json/object.hpp>
#include <span>
#include <string>
#include <vector>

#include "engine/eval/eval_task.h"

namespace specontext::eval {

struct CellResult {
  std::string task;
  int length = 0;
  int samples = 0;
  double accuracy = 0.0;  // mean score, in percent
  double mean_seconds = 0.0;
};

// One cell per (task, length) present in `tasks`, in first-seen order. `outcomes` pairs with
// `tasks` by index.
std::vector<CellResult> Aggregate(std::span<const EvalTask> tasks,
                                  std::span<const TaskOutcome> outcomes);

// Tasks down, lengths across, accuracy in percent, plus the mean over tasks per length.
std::string FormatTable(std::span<const CellResult> cells);

// {"cells": [...], "samples": [...]} with every prompt's length, expected strings and answer.
boost::json::object ReportJson(std::span<const EvalTask> tasks,
                               std::span<const TaskOutcome> outcomes,
                               std::span<const CellResult> cells);

// One line of JSON (no newline) for a generated task.
std::string TaskJsonLine(const EvalTask& task);

}  // namespace specontext::eval
