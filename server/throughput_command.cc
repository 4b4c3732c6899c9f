#include "server/throughput_command.h"

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <memory>
#include <mutex>
#include <random>

#include "loadtest/stats.h"
#include "server/attention_cli.h"

namespace specontext::server {
namespace {

// Collects the engine's steps and first tokens (engine thread) for the report (main thread).
class StepRecorder : public EngineObserver {
 public:
  void OnStep(const StepStats& stats) override {
    std::lock_guard lock(mutex_);
    peak_running_ = std::max(peak_running_, stats.running);
    if (stats.prefill_tokens == 0 && stats.decode_tokens > 0) {
      ++decode_steps_;
      decode_tokens_ += stats.decode_tokens;
      decode_seconds_ += stats.step_seconds;
    }
  }
  void OnFirstToken(const Sequence& /*seq*/) override {
    std::lock_guard lock(mutex_);
    first_token_.push_back(SteadyClock::now());
  }
  void Report(SteadyClock::time_point start, ThroughputResult* out) {
    std::lock_guard lock(mutex_);
    out->peak_running = peak_running_;
    out->decode_steps = decode_steps_;
    out->decode_tokens = decode_tokens_;
    out->decode_seconds = decode_seconds_;
    for (const SteadyClock::time_point when : first_token_) {
      out->ttft_seconds.push_back(std::chrono::duration<double>(when - start).count());
    }
    std::sort(out->ttft_seconds.begin(), out->ttft_seconds.end());
  }

 private:
  std::mutex mutex_;
  int peak_running_ = 0;
  int64_t decode_steps_ = 0, decode_tokens_ = 0;
  double decode_seconds_ = 0.0;
  std::vector<SteadyClock::time_point> first_token_;
};

std::vector<int32_t> RandomPrompt(std::mt19937_64& rng, int length, int vocab) {
  std::uniform_int_distribution<int32_t> token(0, vocab - 1);
  std::vector<int32_t> prompt(static_cast<size_t>(length));
  for (int32_t& t : prompt) t = token(rng);
  return prompt;
}

boost::json::object ToJson(const ThroughputOptions& o, const ThroughputResult& r) {
  const SpecontextCounters& c = r.specontext;
  const loadtest::Summary ttft = loadtest::Summarize(r.ttft_seconds);
  return {{"model", o.model.model},
          {"attention", o.attention},
          {"sparse_budget", o.attention == "specontext" ? o.model.specontext.budget : 0},
          {"input_len", o.input_len},
          {"output_len", o.output_len},
          {"requests", r.requests},
          {"seconds", r.seconds},
          {"requests_per_s", r.requests / r.seconds},
          {"output_tokens_per_s", static_cast<double>(r.output_tokens) / r.seconds},
          {"total_tokens_per_s", static_cast<double>(r.input_tokens + r.output_tokens) / r.seconds},
          {"decode_steps", r.decode_steps},
          {"decode_tokens_per_s",
           r.decode_seconds > 0 ? static_cast<double>(r.decode_tokens) / r.decode_seconds : 0.0},
          {"peak_running", r.peak_running},
          {"preemptions", r.preemptions},
          {"ttft_median_s", ttft.median},
          {"ttft_max_s", ttft.max},
          {"decode_rows",
           {{"sparse", c.sparse_steps},
            {"short", c.short_steps},
            {"dense_fallback", c.fallback_steps}}},
          {"elastic_bytes_copied", r.elastic.bytes_copied},
          {"elastic_rows_in_place", r.elastic.rows_in_place}};
}

void PrintReport(const ThroughputOptions& o, const ThroughputResult& r) {
  const loadtest::Summary ttft = loadtest::Summarize(r.ttft_seconds);
  fmt::print(
      "{} requests of {} prompt + {} output tokens in {:.2f} s: {:.2f} requests/s, {:.0f} "
      "output tok/s, {:.0f} total tok/s\n",
      r.requests, o.input_len, o.output_len, r.seconds, r.requests / r.seconds,
      static_cast<double>(r.output_tokens) / r.seconds,
      static_cast<double>(r.input_tokens + r.output_tokens) / r.seconds);
  if (r.decode_seconds > 0) {
    fmt::print("decode-only steps: {}, {:.1f} rows on average, {:.2f} ms each, {:.0f} tok/s\n",
               r.decode_steps, static_cast<double>(r.decode_tokens) / r.decode_steps,
               1e3 * r.decode_seconds / r.decode_steps,
               static_cast<double>(r.decode_tokens) / r.decode_seconds);
  }
  fmt::print(
      "running at most {} at once, {} preemptions; time to first token median {:.2f} s, "
      "max {:.2f} s\n",
      r.peak_running, r.preemptions, ttft.median, ttft.max);
  if (const SpecontextCounters& c = r.specontext; c.decode_steps > 0) {
    fmt::print("specontext: {} decode rows: {} sparse, {} short (S <= B), {} dense fallback\n",
               c.decode_steps, c.sparse_steps, c.short_steps, c.fallback_steps);
  }
  if (r.elastic.steps > 0) {
    fmt::print("elastic KV: {} steps, {:.1f} MB host to device, {} rows attended in place\n",
               r.elastic.steps, r.elastic.bytes_copied / 1e6, r.elastic.rows_in_place);
  }
}

}  // namespace

Result<ThroughputResult> RunThroughput(ThroughputOptions options) {
  if (options.model.model.empty()) options.model.model = DefaultModelPath();
  ApplyBackendOption(options.backend, &options.model);
  SPC_RETURN_IF_ERROR(ApplyAttentionOption(options.attention, &options.model));
  const int64_t length = int64_t{options.input_len} + options.output_len;
  if (options.model.max_model_len == 0) options.model.max_model_len = static_cast<int>(length);
  if (length > options.model.max_model_len) {
    return InvalidArgument("--input-len + --output-len (" + std::to_string(length) +
                           ") exceed --max-model-len (" +
                           std::to_string(options.model.max_model_len) + ")");
  }
  // Every request waits in the engine's queue, as a burst of clients would.
  options.model.scheduler.max_waiting =
      std::max(options.model.scheduler.max_waiting, options.num_prompts);
  StepRecorder recorder;  // outlives the model, whose engine calls it
  options.model.observer = &recorder;
  SPC_ASSIGN_OR_RETURN(auto serving, ServingModel::Create(options.model));

  std::mt19937_64 rng(options.seed);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < options.num_prompts; ++i) {
    prompts.push_back(RandomPrompt(rng, options.input_len, serving->config().vocab_size));
  }
  ThroughputResult result;
  const auto start = SteadyClock::now();
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < options.num_prompts; ++i) {
    GenerationRequest request;
    request.id = "throughput-" + std::to_string(i);
    request.prompt_tokens = std::move(prompts[i]);
    request.sampling.temperature = 0.0f;
    request.sampling.max_tokens = options.output_len;
    request.sampling.ignore_eos = true;
    SPC_ASSIGN_OR_RETURN(streams.emplace_back(), serving->engine().Submit(std::move(request)));
  }
  // Events queue in each stream, so reading them one request after another loses nothing.
  for (const auto& stream : streams) {
    while (true) {
      std::optional<TokenEvent> event = stream->Next(std::chrono::seconds(1));
      if (!event) continue;
      if (event->finish == FinishReason::kNone) continue;
      if (event->finish == FinishReason::kError) return event->error;
      result.input_tokens += event->usage.prompt_tokens;
      result.output_tokens += event->usage.completion_tokens;
      break;
    }
  }
  result.seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  result.requests = options.num_prompts;
  result.preemptions = serving->engine().preemptions();
  // The engine is idle now; stopping it makes the counters final.
  serving->engine().Stop(std::chrono::milliseconds(0));
  result.elastic = serving->elastic_stats();
  result.specontext = serving->specontext_counters();
  recorder.Report(start, &result);
  return result;
}

void AddThroughputCommand(CLI::App& app) {
  auto options = std::make_shared<ThroughputOptions>();
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "throughput",
      "End-to-end offline throughput: a burst of random-token requests through the engine");
  cmd->add_option("--model", options->model.model,
                  "Hugging Face model directory or preset:NAME (default: the prepared "
                  "SmolLM2-135M-Instruct)");
  cmd->add_option("--input-len", options->input_len, "Prompt tokens per request")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  cmd->add_option("--output-len", options->output_len, "Generated tokens per request")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  cmd->add_option("--num-prompts", options->num_prompts, "Requests, all submitted at once")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--max-running", options->model.scheduler.max_running,
                  "Sequences in one step at most")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--max-step-tokens", options->model.scheduler.max_step_tokens,
                  "Prefill + decode tokens in one step (the chunked-prefill budget)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--seed", options->seed, "Seed of the random prompts")->capture_default_str();
  cmd->add_flag("--json", *json, "Print one JSON object instead of a summary");
  AddEngineOptions(cmd, &options->backend, &options->model);
  AddAttentionOptions(cmd, &options->attention, &options->model);
  cmd->callback([options, json] {
    spdlog::set_level(spdlog::level::warn);
    Result<ThroughputResult> result = RunThroughput(*options);
    if (!result.ok()) {
      fmt::print(stderr, "error: {}\n", result.status().ToString());
      throw CLI::RuntimeError(1);
    }
    if (*json) {
      fmt::print("{}\n", boost::json::serialize(ToJson(*options, *result)));
    } else {
      PrintReport(*options, *result);
    }
  });
}

}  // namespace specontext::server
