// The engine thread: takes requests from I/O threads, runs the scheduler, one forward step per
// iteration for the whole batch, samples, and pushes each new token to its request's stream.
// It never blocks on a client; a cancelled request is dropped at the next step.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "engine/model_runner.h"
#include "engine/sampler/sampler.h"
#include "engine/specontext/step_planner.h"
#include "scheduler/engine_observer.h"
#include "scheduler/request.h"
#include "scheduler/scheduler.h"

namespace specontext {

struct EngineLoopOptions {
  SchedulerOptions scheduler;
  int max_model_len = 0;  // prompt + generated positions per request
  // Run on the engine thread each time the engine goes idle (e.g. the KV integrity check);
  // failures are logged and counted.
  std::function<Status()> idle_check;
  // SpeContext: sees every step before the forward pass and picks the positions each decode
  // row attends to; told when a sequence leaves (finished, failed, cancelled, preempted).
  // nullptr: every step is dense and requests asking for specontext are rejected. Must outlive
  // the loop; only the engine thread calls it.
  StepPlanner* planner = nullptr;
};

class EngineLoop : public InferenceService {
 public:
  EngineLoop(EngineLoopOptions options, ModelRunner* runner, SequenceKv* kv, Sampler sampler,
             EngineObserver* observer = nullptr);
  ~EngineLoop() override;

  void Start();
  // Stops accepting new requests, lets running ones finish for up to `drain`, then aborts the
  // rest and joins the thread.
  void Stop(std::chrono::milliseconds drain);

  Result<std::shared_ptr<RequestStream>> Submit(GenerationRequest request) override;

  // When the loop last completed an iteration (a hung engine stops advancing it).
  SteadyClock::time_point last_progress() const {
    return SteadyClock::time_point(SteadyClock::duration(last_progress_.load()));
  }
  int max_model_len() const { return options_.max_model_len; }
  int64_t idle_check_failures() const { return idle_check_failures_.load(); }
  int64_t preemptions() const { return preemptions_.load(); }

 private:
  void Run();
  void AdmitIncoming();
  void RunIdleCheck();
  void DropCancelled();
  void RunStep(std::vector<ScheduledWork> work);
  // Runs the planner over the step; rows it rejects fail alone and leave `work` and `batch`.
  void PlanStep(std::vector<ScheduledWork>& work, BatchStep& batch);
  // Hands the planner the hidden states it asked for (BatchStep::capture_layers).
  Status ObserveHidden(const std::vector<ScheduledWork>& work, const BatchStep& batch,
                       const StepOutput& out);
  static SequenceHistory HistoryOf(const Sequence& seq);
  // What the runner should summarise for each row (BatchStep::summary), with the sampler's plan
  // for reading it back.
  std::vector<Result<SummaryPlan>> PlanSummaries(const std::vector<ScheduledWork>& work,
                                                 BatchStep& batch);
  // The next token of one row, from its summary when the step returned summaries (with the whole
  // row fetched when the summary does not settle the draw), else from its logits row.
  Result<SampleResult> SampleRow(size_t row, const Sequence& seq, const StepOutput& out,
                                 const std::vector<Result<SummaryPlan>>& plans);
  // Every sampling row's next token, into `samples` (a failed draw fails only its row). Sparse
  // rows the planner finds unsure (StepPlanner::RedoDense) run again densely first; an error is
  // that second pass failing.
  Status SampleStep(const std::vector<ScheduledWork>& work, const BatchStep& batch,
                    const StepOutput& out, const std::vector<Result<SummaryPlan>>& plans,
                    std::vector<std::optional<Result<SampleResult>>>* samples);
  // The planner and the runner drop a sequence's state (it left, or its KV is being
  // recomputed).
  void ReleaseSequenceState(const Sequence& seq);
  void Finish(Sequence* seq, FinishReason reason, Status error = Status::Ok());

  EngineLoopOptions options_;
  ModelRunner* runner_;
  SequenceKv* kv_;
  Sampler sampler_;
  EngineObserver* observer_;
  EngineObserver null_observer_;
  Scheduler scheduler_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Sequence>> incoming_;
  bool accepting_ = true;
  bool stopping_ = false;
  SteadyClock::time_point abort_after_ = SteadyClock::time_point::max();
  std::atomic<SteadyClock::rep> last_progress_{0};
  std::atomic<int64_t> idle_check_failures_{0};
  std::atomic<int64_t> preemptions_{0};
  bool busy_since_idle_check_ = false;
  uint64_t next_seq_id_ = 1;
  std::thread thread_;
};

}  // namespace specontext
