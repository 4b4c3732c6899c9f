#include "engine/eval/eval_runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "engine/eval/scoring.h"
#include "engine/tokenizer/incremental_detokenizer.h"

namespace specontext::eval {

namespace {

using Clock = std::chrono::steady_clock;

// A one-line answer is complete at a line break that follows some text.
bool LineComplete(const std::string& answer) {
  const size_t newline = answer.find('\n');
  return newline != std::string::npos && answer.find_first_not_of(" \t\r\n") < newline;
}

}  // namespace

Result<TaskOutcome> RunTask(InferenceService& engine, const Tokenizer& tokenizer,
                            const EvalTask& task) {
  GenerationRequest request;
  request.id =
      "eval-" + task.task + "-" + std::to_string(task.length) + "-" + std::to_string(task.index);
  request.prompt_tokens = task.prompt_tokens;
  request.sampling.temperature = 0.0f;
  request.sampling.max_tokens = task.text.max_tokens;
  const auto start = Clock::now();
  SPC_ASSIGN_OR_RETURN(std::shared_ptr<RequestStream> stream, engine.Submit(std::move(request)));

  TaskOutcome outcome;
  IncrementalDetokenizer detokenizer(tokenizer, /*skip_special_tokens=*/true, task.prompt_tokens);
  bool done = false;
  while (!done) {
    std::optional<TokenEvent> event = stream->Next(std::chrono::seconds(1));
    if (!event) continue;
    for (const SampledToken& token : event->tokens) {
      outcome.generated_tokens++;
      // Embedding tables padded beyond the tokenizer's vocabulary can emit ids with no text;
      // they count as generated but add nothing to the answer.
      if (token.token < 0 || static_cast<size_t>(token.token) >= tokenizer.VocabSize()) continue;
      SPC_ASSIGN_OR_RETURN(std::string piece, detokenizer.Add(token.token));
      outcome.answer += piece;
    }
    if (event->finish == FinishReason::kError) {
      return event->error.WithContext("eval request " + task.task);
    }
    if (event->finish != FinishReason::kNone) {
      SPC_ASSIGN_OR_RETURN(std::string rest, detokenizer.Flush());
      outcome.answer += rest;
      done = true;
    } else if (task.text.single_line && LineComplete(outcome.answer)) {
      // The engine frees the request at its next step; the remaining events are not needed.
      stream->Cancel(FinishReason::kStop);
      done = true;
    }
  }
  if (task.text.single_line && LineComplete(outcome.answer)) {
    outcome.answer.resize(outcome.answer.find('\n', outcome.answer.find_first_not_of(" \t\r\n")));
  }
  outcome.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  outcome.score = Score(task.text.rule, task.text.expected, outcome.answer);
  return outcome;
}

Result<std::vector<TaskOutcome>> RunTasks(InferenceService& engine, const Tokenizer& tokenizer,
                                          std::span<const EvalTask> tasks,
                                          const RunOptions& options) {
  std::vector<TaskOutcome> outcomes(tasks.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;  // guards error, done and on_done
  Status error;
  size_t done = 0;
  auto work = [&] {
    while (!failed.load()) {
      const size_t i = next.fetch_add(1);
      if (i >= tasks.size()) return;
      Result<TaskOutcome> outcome = RunTask(engine, tokenizer, tasks[i]);
      std::lock_guard<std::mutex> lock(mutex);
      if (!outcome.ok()) {
        if (!failed.exchange(true)) error = outcome.status();
        return;
      }
      outcomes[i] = std::move(outcome).value();
      done++;
      if (options.on_done) options.on_done(tasks[i], outcomes[i], done);
    }
  };
  const size_t workers =
      std::min(tasks.size(), static_cast<size_t>(std::max(1, options.concurrency)));
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w) threads.emplace_back(work);
  for (std::thread& thread : threads) thread.join();
  if (failed.load()) return error;
  return outcomes;
}

}  // namespace specontext::eval
