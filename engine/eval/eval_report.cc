#include "engine/eval/eval_report.h"

#include <fmt/core.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <map>

namespace specontext::eval {

namespace {

std::string_view RuleName(ScoreRule rule) {
  return rule == ScoreRule::kFirstWord ? "first_word" : "all_of";
}

boost::json::array Strings(const std::vector<std::string>& items) {
  boost::json::array out;
  for (const std::string& item : items) out.emplace_back(item);
  return out;
}

}  // namespace

std::vector<CellResult> Aggregate(std::span<const EvalTask> tasks,
                                  std::span<const TaskOutcome> outcomes) {
  std::vector<CellResult> cells;
  std::map<std::pair<std::string, int>, size_t> index;
  for (size_t i = 0; i < tasks.size() && i < outcomes.size(); ++i) {
    auto [it, added] = index.try_emplace({tasks[i].task, tasks[i].length}, cells.size());
    if (added) cells.push_back({.task = tasks[i].task, .length = tasks[i].length});
    CellResult& cell = cells[it->second];
    cell.samples++;
    cell.accuracy += outcomes[i].score;
    cell.mean_seconds += outcomes[i].seconds;
  }
  for (CellResult& cell : cells) {
    cell.accuracy = 100.0 * cell.accuracy / cell.samples;
    cell.mean_seconds /= cell.samples;
  }
  return cells;
}

std::string FormatTable(std::span<const CellResult> cells) {
  std::vector<std::string> tasks;
  std::vector<int> lengths;
  std::map<std::pair<std::string, int>, const CellResult*> by_key;
  size_t width = 4;
  for (const CellResult& cell : cells) {
    if (std::find(tasks.begin(), tasks.end(), cell.task) == tasks.end()) {
      tasks.push_back(cell.task);
    }
    if (std::find(lengths.begin(), lengths.end(), cell.length) == lengths.end()) {
      lengths.push_back(cell.length);
    }
    by_key[{cell.task, cell.length}] = &cell;
    width = std::max(width, cell.task.size());
  }
  std::sort(lengths.begin(), lengths.end());
  std::string table = fmt::format("{:<{}}", "task", width);
  for (int length : lengths) table += fmt::format(" {:>7}", length);
  table += "\n";
  std::vector<double> sums(lengths.size(), 0.0);
  std::vector<int> counts(lengths.size(), 0);
  for (const std::string& task : tasks) {
    table += fmt::format("{:<{}}", task, width);
    for (size_t l = 0; l < lengths.size(); ++l) {
      auto it = by_key.find({task, lengths[l]});
      if (it == by_key.end()) {
        table += fmt::format(" {:>7}", "-");
        continue;
      }
      table += fmt::format(" {:>7.1f}", it->second->accuracy);
      sums[l] += it->second->accuracy;
      counts[l]++;
    }
    table += "\n";
  }
  table += fmt::format("{:<{}}", "mean", width);
  for (size_t l = 0; l < lengths.size(); ++l) {
    table +=
        counts[l] > 0 ? fmt::format(" {:>7.1f}", sums[l] / counts[l]) : fmt::format(" {:>7}", "-");
  }
  return table + "\n";
}

boost::json::object ReportJson(std::span<const EvalTask> tasks,
                               std::span<const TaskOutcome> outcomes,
                               std::span<const CellResult> cells) {
  boost::json::array cell_array;
  for (const CellResult& cell : cells) {
    cell_array.push_back(boost::json::object{{"task", cell.task},
                                             {"length", cell.length},
                                             {"samples", cell.samples},
                                             {"accuracy", cell.accuracy},
                                             {"mean_seconds", cell.mean_seconds}});
  }
  boost::json::array samples;
  for (size_t i = 0; i < tasks.size() && i < outcomes.size(); ++i) {
    samples.push_back(boost::json::object{{"task", tasks[i].task},
                                          {"length", tasks[i].length},
                                          {"index", tasks[i].index},
                                          {"prompt_tokens", tasks[i].prompt_tokens.size()},
                                          {"expected", Strings(tasks[i].text.expected)},
                                          {"rule", RuleName(tasks[i].text.rule)},
                                          {"answer", outcomes[i].answer},
                                          {"score", outcomes[i].score},
                                          {"generated_tokens", outcomes[i].generated_tokens},
                                          {"seconds", outcomes[i].seconds}});
  }
  return {{"cells", std::move(cell_array)}, {"samples", std::move(samples)}};
}

std::string TaskJsonLine(const EvalTask& task) {
  return boost::json::serialize(boost::json::object{{"task", task.task},
                                                    {"length", task.length},
                                                    {"index", task.index},
                                                    {"seed", task.seed},
                                                    {"prompt", task.prompt_text},
                                                    {"user", task.text.user},
                                                    {"prompt_tokens", task.prompt_tokens.size()},
                                                    {"answer_prefix", task.text.answer_prefix},
                                                    {"expected", Strings(task.text.expected)},
                                                    {"rule", RuleName(task.text.rule)},
                                                    {"max_tokens", task.text.max_tokens},
                                                    {"single_line", task.text.single_line}});
}

}  // namespace specontext::eval
