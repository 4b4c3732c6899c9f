#include "server/eval_command.h"

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <fstream>

#include "engine/eval/eval_runner.h"
#include "engine/eval/task_registry.h"
#include "server/attention_cli.h"

namespace specontext::server {

namespace {

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return InvalidArgument("cannot write '" + path + "'");
  return Status::Ok();
}

Status CheckOptions(const EvalOptions& options, int max_model_len) {
  for (const std::string& task : options.tasks) {
    bool known = false;
    for (const eval::TaskInfo& info : eval::AllTasks()) known = known || info.name == task;
    if (!known) return InvalidArgument("--tasks: unknown task '" + task + "'");
  }
  for (int length : options.lengths) {
    if (length > max_model_len) {
      return InvalidArgument("--lengths: " + std::to_string(length) +
                             " is longer than the model's context (" +
                             std::to_string(max_model_len) + ", see --max-model-len)");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<EvalResult> RunEval(EvalOptions options) {
  if (options.model.model.empty()) options.model.model = DefaultModelPath();
  ApplyBackendOption(options.backend, &options.model);
  if (options.tasks.empty()) {
    for (const eval::TaskInfo& info : eval::AllTasks()) options.tasks.emplace_back(info.name);
  }
  SPC_RETURN_IF_ERROR(ApplyAttentionOption(options.attention, &options.model));
  RecallMeter meter;
  if (options.recall) {
    if (options.model.specontext.server_mode != AttentionMode::kSpecontext) {
      return InvalidArgument("--recall measures sparse steps: it needs --attention specontext");
    }
    if (options.model.backend != Backend::kCpu) {
      return InvalidArgument(
          "--recall reads the target's attention on the CPU backend: add "
          "--backend cpu");
    }
    options.model.probe = &meter;
  }
  SPC_ASSIGN_OR_RETURN(auto serving, ServingModel::Create(options.model));
  if (serving->tokenizer() == nullptr) {
    return InvalidArgument("model '" + serving->name() +
                           "' has no tokenizer (a random-weight preset): eval needs text");
  }
  SPC_RETURN_IF_ERROR(CheckOptions(options, serving->max_model_len()));
  const eval::PromptFormat format(serving->tokenizer(), serving->chat_template(),
                                  serving->special_tokens());
  SPC_ASSIGN_OR_RETURN(
      std::vector<eval::EvalTask> tasks,
      eval::GenerateTasks(format, options.tasks, options.lengths, options.samples, options.seed));
  if (!options.tasks_path.empty()) {
    std::string lines;
    for (const eval::EvalTask& task : tasks) lines += eval::TaskJsonLine(task) + "\n";
    SPC_RETURN_IF_ERROR(WriteText(options.tasks_path, lines));
    fmt::print(stderr, "wrote {} tasks to {}\n", tasks.size(), options.tasks_path);
  }
  EvalResult result;
  if (options.write_only) return result;

  eval::RunOptions run;
  run.concurrency = options.concurrency;
  run.on_done = [total = tasks.size()](const eval::EvalTask& task, const eval::TaskOutcome& outcome,
                                       size_t done) {
    fmt::print(stderr, "[{}/{}] {} {} #{}: score {:.2f} in {:.1f} s, answer {:?}\n", done, total,
               task.task, task.length, task.index, outcome.score, outcome.seconds, outcome.answer);
  };
  SPC_ASSIGN_OR_RETURN(std::vector<eval::TaskOutcome> outcomes,
                       eval::RunTasks(serving->engine(), *serving->tokenizer(), tasks, run));
  result.cells = eval::Aggregate(tasks, outcomes);
  result.table = eval::FormatTable(result.cells);
  if (options.recall) result.recall = meter.Summarize();
  result.elastic = serving->elastic_stats();
  result.specontext = serving->specontext_counters();
  if (!options.json_path.empty()) {
    boost::json::object report = eval::ReportJson(tasks, outcomes, result.cells);
    report["model"] = serving->name();
    report["backend"] = serving->backend_name();
    report["seed"] = options.seed;
    report["attention"] = options.attention;
    const ElasticLoadStats& e = result.elastic;
    report["elastic"] = {{"steps", e.steps},
                         {"row_layers", e.row_layers},
                         {"positions_loaded", e.positions_loaded},
                         {"positions_reused", e.positions_reused},
                         {"positions_first_loaded", e.positions_first_loaded},
                         {"whole_layer_loads", e.whole_layer_loads},
                         {"bytes_copied", e.bytes_copied},
                         {"rows_in_place", e.rows_in_place}};
    const SpecontextCounters& c = result.specontext;
    report["specontext"] = {
        {"decode_steps", c.decode_steps},     {"sparse_steps", c.sparse_steps},
        {"short_steps", c.short_steps},       {"fallback_steps", c.fallback_steps},
        {"tokens_adopted", c.tokens_adopted}, {"tokens_unknown_input", c.tokens_unknown_input},
        {"redo_steps", c.redo_steps},         {"selected_mass_sum", c.selected_mass_sum}};
    if (result.recall) {
      report["recall"] = {{"mean", result.recall->mean},
                          {"min", result.recall->min},
                          {"p5", result.recall->p5},
                          {"per_layer", boost::json::value_from(result.recall->per_layer)}};
    }
    SPC_RETURN_IF_ERROR(WriteText(options.json_path, boost::json::serialize(report) + "\n"));
  }
  return result;
}

void AddEvalCommand(CLI::App& app) {
  auto options = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand(
      "eval", "Long-context accuracy: generated retrieval and aggregation tasks, exact match");
  cmd->add_option("--model", options->model.model,
                  "Hugging Face model directory (default: the prepared SmolLM2-135M-Instruct)");
  std::string task_list;
  for (const eval::TaskInfo& info : eval::AllTasks()) {
    task_list += (task_list.empty() ? "" : ", ") + std::string(info.name);
  }
  cmd->add_option("--tasks", options->tasks,
                  "Tasks, comma-separated (default: all of " + task_list + ")")
      ->delimiter(',');
  cmd->add_option("--lengths", options->lengths,
                  "Lengths in tokens (prompt plus answer), comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(64, 1 << 24))
      ->capture_default_str();
  cmd->add_option("--samples", options->samples, "Samples per task and length")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--seed", options->seed, "Seed of the generated tasks")->capture_default_str();
  cmd->add_option("--concurrency", options->concurrency, "Requests in flight at once")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--json", options->json_path, "Write the full report (every answer) as JSON");
  cmd->add_option("--write-tasks", options->tasks_path,
                  "Write the generated prompts and answers as JSONL");
  cmd->add_flag("--write-only", options->write_only,
                "Only generate the tasks (with --write-tasks), run nothing");
  AddEngineOptions(cmd, &options->backend, &options->model);
  AddAttentionOptions(cmd, &options->attention, &options->model);
  cmd->add_flag("--recall", options->recall,
                "Also report the share of the target's attention mass the selection captures "
                "(CPU backend)");
  cmd->callback([options] {
    spdlog::set_level(spdlog::level::warn);
    Result<EvalResult> result = RunEval(*options);
    if (!result.ok()) {
      fmt::print(stderr, "error: {}\n", result.status().ToString());
      throw CLI::RuntimeError(1);
    }
    fmt::print("{}", result->table);
    if (result->recall) {
      fmt::print(
          "recall of the target's attention mass: mean {:.4f}, p5 {:.4f}, min {:.4f} over {} "
          "(step, layer, head) samples\n",
          result->recall->mean, result->recall->p5, result->recall->min, result->recall->samples);
    }
    if (const SpecontextCounters& c = result->specontext; c.decode_steps > 0) {
      fmt::print(
          "specontext: {} decode rows: {} sparse ({} run again densely, unsure), {} short (S <= "
          "B), {} dense fallback; head's selected mass {:.4f} on average; {} positions of the "
          "head's K from shared prefixes, {} projected from unknown hidden inputs\n",
          c.decode_steps, c.sparse_steps, c.redo_steps, c.short_steps, c.fallback_steps,
          c.selected_mass_sum / std::max<int64_t>(1, c.sparse_steps + c.fallback_steps),
          c.tokens_adopted, c.tokens_unknown_input);
    }
    if (const ElasticLoadStats& e = result->elastic; e.steps > 0) {
      const int64_t later = e.positions_loaded - e.positions_first_loaded;
      fmt::print(
          "elastic KV: {} steps, {} (row, layer) pairs through GPU slots, {:.1f} MB host to "
          "device; {:.1f}% of selected positions copied in, {:.1f}% after each sequence's "
          "first sparse step\n",
          e.steps, e.row_layers, e.bytes_copied / 1e6,
          100.0 * e.positions_loaded /
              std::max<int64_t>(1, e.positions_loaded + e.positions_reused),
          100.0 * later / std::max<int64_t>(1, later + e.positions_reused));
      if (e.rows_in_place > 0) {
        fmt::print("elastic KV: {} rows attended in place, their slots not fitting the GPU\n",
                   e.rows_in_place);
      }
    }
  });
}

}  // namespace specontext::server
