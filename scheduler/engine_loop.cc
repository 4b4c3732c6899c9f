#include "scheduler/engine_loop.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <random>

#include "scheduler/dense_redo.h"

namespace specontext {

namespace {

uint64_t DrawSeed() {
  static std::mt19937_64 generator{std::random_device{}()};
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  return generator();
}

}  // namespace

EngineLoop::EngineLoop(EngineLoopOptions options, ModelRunner* runner, SequenceKv* kv,
                       Sampler sampler, EngineObserver* observer)
    : options_(options),
      runner_(runner),
      kv_(kv),
      sampler_(std::move(sampler)),
      observer_(observer != nullptr ? observer : &null_observer_),
      scheduler_(options.scheduler, kv) {}

EngineLoop::~EngineLoop() { Stop(std::chrono::milliseconds(0)); }

void EngineLoop::Start() {
  last_progress_ = SteadyClock::now().time_since_epoch().count();
  thread_ = std::thread([this] { Run(); });
}

void EngineLoop::Stop(std::chrono::milliseconds drain) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    accepting_ = false;
    stopping_ = true;
    abort_after_ = SteadyClock::now() + drain;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::shared_ptr<RequestStream>> EngineLoop::Submit(GenerationRequest request) {
  const int prompt_len = static_cast<int>(request.prompt_tokens.size());
  if (prompt_len == 0) return InvalidArgument("the prompt is empty");
  if (prompt_len >= options_.max_model_len) {
    return InvalidArgument("the prompt has " + std::to_string(prompt_len) +
                           " tokens; this model's context is " +
                           std::to_string(options_.max_model_len) + " tokens");
  }
  for (int32_t token : request.prompt_tokens) {
    if (token < 0 || token >= runner_->config().vocab_size) {
      return InvalidArgument("prompt token id " + std::to_string(token) +
                             " is outside the vocabulary");
    }
  }
  if (request.sparse_budget < 0) {
    return InvalidArgument("sparse_budget must be positive, or 0 for the server's budget");
  }
  if (const auto& p = request.sparse_redo_probability; p && !(*p >= 0.0 && *p <= 1.0)) {
    return InvalidArgument("sparse_redo_probability must be in [0, 1]");
  }
  if (request.attention == AttentionMode::kSpecontext && options_.planner == nullptr) {
    return InvalidArgument(
        "attention \"specontext\" is not available: the server runs without a draft model");
  }
  auto seq = std::make_unique<Sequence>();
  seq->request = std::move(request);
  auto& sampling = seq->request.sampling;
  // Generation never runs past the context: the request ends with finish_reason "length".
  if (sampling.max_tokens <= 0 || sampling.max_tokens > options_.max_model_len - prompt_len) {
    sampling.max_tokens = options_.max_model_len - prompt_len;
  }
  seq->seed = sampling.seed.value_or(DrawSeed());
  seq->tokens = seq->request.prompt_tokens;
  seq->prompt_len = prompt_len;
  if (options_.planner != nullptr) {
    seq->sparse_budget =
        options_.planner->SparseBudget(seq->request.attention, seq->request.sparse_budget);
  }
  seq->stream = std::make_shared<RequestStream>();
  seq->arrival = SteadyClock::now();
  auto stream = seq->stream;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!accepting_) return Unavailable("the server is shutting down");
    if (static_cast<int>(incoming_.size() + scheduler_.waiting().size()) >=
        options_.scheduler.max_waiting) {
      return ResourceExhausted("too many requests are waiting; retry later");
    }
    seq->seq_id = next_seq_id_++;
    incoming_.push_back(std::move(seq));
  }
  wake_.notify_one();
  return stream;
}

void EngineLoop::Run() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(100),
                     [this] { return !incoming_.empty() || !scheduler_.idle() || stopping_; });
    }
    last_progress_ = SteadyClock::now().time_since_epoch().count();
    AdmitIncoming();
    DropCancelled();
    bool stop_now;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_now = stopping_ && (scheduler_.idle() || SteadyClock::now() >= abort_after_);
    }
    if (stop_now) break;

    if (scheduler_.idle()) {
      if (busy_since_idle_check_) {
        busy_since_idle_check_ = false;
        observer_->OnStep(StepStats{});  // gauges drop to zero when the work is done
        RunIdleCheck();
      }
      continue;
    }
    busy_since_idle_check_ = true;
    std::vector<ScheduledWork> work = scheduler_.Schedule();
    preemptions_ = scheduler_.preemptions();
    // Before the rejected ones are destroyed below: a preempted sequence may be among them.
    for (Sequence* seq : scheduler_.TakePreempted()) {
      ReleaseSequenceState(*seq);
      observer_->OnPreempted(*seq);
    }
    for (auto& seq : scheduler_.TakeRejected()) {
      Sequence* raw = seq.get();
      ReleaseSequenceState(*raw);
      Status error =
          ResourceExhausted("the request needs more KV than every tier together can hold (" +
                            std::to_string(kv_->CapacityTokens()) + " tokens)");
      spdlog::warn("request {} failed: {}", raw->request.id, error.message());
      raw->stream->Push(TokenEvent{{}, FinishReason::kError, false, error, {}});
      observer_->OnFinished(*raw, FinishReason::kError);
    }
    if (!work.empty()) {
      RunStep(std::move(work));
    } else {
      // Everything runnable is blocked on KV held by prefix-cache users; do not spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // Whatever is left after the drain deadline ends with finish_reason "abort".
  AdmitIncoming();
  std::vector<Sequence*> left;
  for (const auto& seq : scheduler_.running()) left.push_back(seq.get());
  for (const auto& seq : scheduler_.waiting()) left.push_back(seq.get());
  for (Sequence* seq : left) Finish(seq, FinishReason::kAbort);
}

void EngineLoop::RunIdleCheck() {
  if (!options_.idle_check) return;
  if (Status st = options_.idle_check(); !st.ok()) {
    idle_check_failures_++;
    spdlog::error("idle check failed: {}", st.ToString());
  }
}

void EngineLoop::AdmitIncoming() {
  std::vector<std::unique_ptr<Sequence>> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(incoming_);
  }
  for (auto& seq : batch) {
    auto stream = seq->stream;
    if (Status st = scheduler_.Add(std::move(seq)); !st.ok()) {
      stream->Push(TokenEvent{{}, FinishReason::kError, false, st, {}});
    }
  }
}

void EngineLoop::DropCancelled() {
  std::vector<Sequence*> cancelled;
  for (const auto& seq : scheduler_.running()) {
    if (seq->stream->cancelled()) cancelled.push_back(seq.get());
  }
  for (const auto& seq : scheduler_.waiting()) {
    if (seq->stream->cancelled()) cancelled.push_back(seq.get());
  }
  for (Sequence* seq : cancelled) Finish(seq, seq->stream->cancel_reason());
}

void EngineLoop::RunStep(std::vector<ScheduledWork> work) {
  const auto start = SteadyClock::now();
  BatchStep batch;
  for (const ScheduledWork& w : work) {
    SequenceStep step;
    step.start_position = w.seq->num_cached;
    step.tokens.assign(w.seq->tokens.begin() + w.seq->num_cached,
                       w.seq->tokens.begin() + w.seq->num_cached + w.num_tokens);
    batch.sequences.push_back(std::move(step));
  }
  StepStats stats;
  const SpecontextCounters before =
      options_.planner != nullptr ? options_.planner->counters() : SpecontextCounters{};
  if (options_.planner != nullptr) PlanStep(work, batch);
  for (size_t row = 0; row < work.size(); ++row) {
    const ScheduledWork& w = work[row];
    batch.sequences[row].seq_id = w.seq->seq_id;
    if (Status st =
            kv_->BeginStep(w.seq->seq_id, w.seq->num_cached, w.num_tokens, &batch.sequences[row]);
        !st.ok()) {
      spdlog::error("KV block table for request {}: {}", w.seq->request.id, st.ToString());
      for (const ScheduledWork& other : work) Finish(other.seq, FinishReason::kError, st);
      return;
    }
    (w.samples && w.num_tokens == 1 ? stats.decode_tokens : stats.prefill_tokens) += w.num_tokens;
  }
  if (work.empty()) return;

  std::vector<Result<SummaryPlan>> plans;
  if (runner_->summarises_logits()) plans = PlanSummaries(work, batch);
  StepOutput out;
  const ElasticLoadStats elastic_before = runner_->elastic_stats();
  Status step_status = runner_->Step(batch, &out);
  if (step_status.ok()) step_status = ObserveHidden(work, batch, out);
  // Drawn while the rows still hold their block tables: a row run again densely writes its
  // positions' KV again.
  std::vector<std::optional<Result<SampleResult>>> samples(work.size());
  if (step_status.ok()) step_status = SampleStep(work, batch, out, plans, &samples);
  stats.elastic = runner_->elastic_stats() - elastic_before;
  if (options_.planner != nullptr) stats.specontext = options_.planner->counters() - before;
  for (size_t row = 0; row < work.size(); ++row) {
    if (Status st = kv_->EndStep(work[row].seq->seq_id, &batch.sequences[row]);
        !st.ok() && step_status.ok()) {
      step_status = st;
    }
  }
  if (!step_status.ok()) {
    spdlog::error("forward step failed for {} sequences: {}", work.size(), step_status.ToString());
    for (const ScheduledWork& w : work) Finish(w.seq, FinishReason::kError, step_status);
    return;
  }

  const auto now = SteadyClock::now();
  for (size_t row = 0; row < work.size(); ++row) {
    Sequence* seq = work[row].seq;
    seq->num_cached += work[row].num_tokens;
    if (!work[row].samples) continue;
    if (seq->generated() == 0) {
      // The prompt is complete: later requests with the same prefix can reuse its blocks.
      kv_->CachePrefix(seq->seq_id, std::span<const int32_t>(seq->tokens).first(seq->num_cached));
    }
    Result<SampleResult> sample = std::move(*samples[row]);
    if (!sample.ok()) {
      Finish(seq, FinishReason::kError, sample.status());
      continue;
    }
    seq->tokens.push_back(sample->token);
    seq->progressed_since_resume = true;
    if (seq->generated() == 1) {
      seq->first_token = now;
      observer_->OnFirstToken(*seq);
    }
    seq->last_token = now;
    FinishReason finish = sample->finish;
    if (finish == FinishReason::kNone &&
        static_cast<int>(seq->tokens.size()) >= options_.max_model_len) {
      finish = FinishReason::kLength;
    }
    TokenEvent event;
    event.tokens.push_back(
        SampledToken{sample->token, sample->logprob, std::move(sample->top_logprobs)});
    if (finish == FinishReason::kNone) {
      seq->stream->Push(std::move(event));
    } else {
      // Before the client can see the end, so a finished request holds no planner state.
      ReleaseSequenceState(*seq);
      event.finish = finish;
      event.stopped_by_token = finish == FinishReason::kStop;
      event.usage = Usage{seq->prompt_len, seq->generated(), seq->cached_tokens};
      seq->stream->Push(std::move(event));
      observer_->OnFinished(*seq, finish);
      scheduler_.Remove(seq);
    }
  }
  stats.running = static_cast<int>(scheduler_.running().size());
  stats.waiting = static_cast<int>(scheduler_.waiting().size());
  stats.step_seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  observer_->OnStep(stats);
}

SequenceHistory EngineLoop::HistoryOf(const Sequence& seq) {
  const std::span<const int32_t> all(seq.tokens);
  return {all.first(seq.prompt_len), all.subspan(seq.prompt_len), seq.seed};
}

std::vector<Result<SummaryPlan>> EngineLoop::PlanSummaries(const std::vector<ScheduledWork>& work,
                                                           BatchStep& batch) {
  const int vocab = runner_->config().vocab_size;
  std::vector<Result<SummaryPlan>> plans;
  LogitsSummaryRequest& request = batch.summary;
  request.top_k = 1;
  for (const ScheduledWork& w : work) {
    // A prefill chunk that does not end its prompt still returns a row; nothing reads it.
    Result<SummaryPlan> plan =
        w.samples ? sampler_.PlanSummary(w.seq->request.sampling, HistoryOf(*w.seq), vocab)
                  : Result<SummaryPlan>(SummaryPlan{});
    request.top_k = std::max(request.top_k, plan.ok() ? plan->top_k : 1);
    request.temperatures.push_back(plan.ok() ? plan->temperature : 1.0f);
    request.gather.push_back(plan.ok() ? plan->gather_tokens() : std::vector<int32_t>{});
    plans.push_back(std::move(plan));
  }
  return plans;
}

Result<SampleResult> EngineLoop::SampleRow(size_t row, const Sequence& seq, const StepOutput& out,
                                           const std::vector<Result<SummaryPlan>>& plans) {
  const SamplingParams& params = seq.request.sampling;
  const SequenceHistory history = HistoryOf(seq);
  if (out.summaries.empty()) {
    const size_t vocab = out.vocab_size;
    return sampler_.Sample(std::span<const float>(out.logits).subspan(row * vocab, vocab), params,
                           history);
  }
  if (!plans[row].ok()) return plans[row].status();
  SPC_ASSIGN_OR_RETURN(
      std::optional<SampleResult> settled,
      sampler_.SampleSummary(out.summaries[row], *plans[row], params, history, out.vocab_size));
  if (settled) return std::move(*settled);
  // The draw reached past the summary: sample the whole row, still on the device.
  std::vector<float> logits;
  SPC_RETURN_IF_ERROR(runner_->LogitsRow(static_cast<int>(row), &logits));
  return sampler_.Sample(logits, params, history);
}

Status EngineLoop::SampleStep(const std::vector<ScheduledWork>& work, const BatchStep& batch,
                              const StepOutput& out, const std::vector<Result<SummaryPlan>>& plans,
                              std::vector<std::optional<Result<SampleResult>>>* samples) {
  std::vector<size_t> unsure;
  for (size_t row = 0; row < work.size(); ++row) {
    if (!work[row].samples) continue;
    // The probability is read only where a re-run is possible: it costs a pass over the row.
    const double threshold = options_.planner == nullptr
                                 ? 0.0
                                 : work[row].seq->request.sparse_redo_probability.value_or(
                                       options_.planner->redo_probability());
    if (threshold > 0.0 && !batch.sequences[row].sparse_positions.empty() &&
        options_.planner->RedoDense(TopTokenProbability(out, row), threshold)) {
      unsure.push_back(row);
      continue;
    }
    (*samples)[row] = SampleRow(row, *work[row].seq, out, plans);
  }
  if (unsure.empty()) return Status::Ok();
  // The other rows are drawn first: a draw that needs a whole logits row reads the runner's
  // last step.
  const BatchStep dense = DenseRedoBatch(batch, unsure);
  std::vector<ScheduledWork> dense_work;
  std::vector<Result<SummaryPlan>> dense_plans;
  for (size_t row : unsure) {
    dense_work.push_back(work[row]);
    if (!plans.empty()) dense_plans.push_back(plans[row]);
  }
  StepOutput dense_out;
  SPC_RETURN_IF_ERROR(runner_->Step(dense, &dense_out));
  // The head reads these rows' states from the dense pass (they replace the sparse pass's).
  SPC_RETURN_IF_ERROR(ObserveHidden(dense_work, dense, dense_out));
  for (size_t i = 0; i < unsure.size(); ++i) {
    (*samples)[unsure[i]] = SampleRow(i, *work[unsure[i]].seq, dense_out, dense_plans);
  }
  return Status::Ok();
}

void EngineLoop::PlanStep(std::vector<ScheduledWork>& work, BatchStep& batch) {
  std::vector<PlanRow> rows;
  for (const ScheduledWork& w : work) {
    rows.push_back({.seq_id = w.seq->seq_id,
                    .mode = w.seq->request.attention,
                    .budget = w.seq->request.sparse_budget,
                    .context = std::span<const int32_t>(w.seq->tokens).first(w.seq->num_cached),
                    .prompt_chunk = w.seq->num_cached < w.seq->prompt_len});
  }
  batch.capture_layers = options_.planner->HiddenLayers(rows);
  const Status status = options_.planner->Plan(rows, &batch);
  if (status.ok()) return;
  // Find the rows at fault one at a time, so one request's bad state fails that request alone.
  // Re-planning a row is safe: a planner truncates state beyond a row's start_position.
  spdlog::warn("planning a step of {} sequences failed ({}); planning them one by one", work.size(),
               status.ToString());
  std::vector<ScheduledWork> kept_work;
  BatchStep kept;
  for (size_t row = 0; row < work.size(); ++row) {
    BatchStep one;
    one.sequences.push_back(std::move(batch.sequences[row]));
    one.sequences[0].sparse_positions.clear();
    if (Status st = options_.planner->Plan(std::span(&rows[row], 1), &one); !st.ok()) {
      spdlog::error("request {} failed: SpeContext planning: {}", work[row].seq->request.id,
                    st.ToString());
      Finish(work[row].seq, FinishReason::kError, st);
      continue;
    }
    kept_work.push_back(work[row]);
    kept.sequences.push_back(std::move(one.sequences[0]));
    kept.dense_layers = one.dense_layers;
    kept.hidden_on_device = one.hidden_on_device;
  }
  work = std::move(kept_work);
  kept.capture_layers = std::move(batch.capture_layers);
  batch = std::move(kept);
}

Status EngineLoop::ObserveHidden(const std::vector<ScheduledWork>& work, const BatchStep& batch,
                                 const StepOutput& out) {
  if (batch.capture_layers.empty()) return Status::Ok();
  if (batch.hidden_on_device) return options_.planner->ObserveStep(batch);
  const size_t width = batch.capture_layers.size() * runner_->config().hidden_size;
  size_t row = 0;
  for (size_t s = 0; s < work.size(); ++s) {
    const size_t n = batch.sequences[s].tokens.size();
    if ((row + n) * width > out.hidden.size()) {
      return Internal("the step returned " + std::to_string(out.hidden.size()) +
                      " hidden values, fewer than its tokens need");
    }
    SPC_RETURN_IF_ERROR(options_.planner->ObserveHidden(
        work[s].seq->seq_id, batch.sequences[s].start_position,
        std::span<const float>(out.hidden).subspan(row * width, n * width)));
    row += n;
  }
  return Status::Ok();
}

void EngineLoop::ReleaseSequenceState(const Sequence& seq) {
  if (options_.planner != nullptr) options_.planner->Release(seq.seq_id);
  runner_->ReleaseSequence(seq.seq_id);
}

void EngineLoop::Finish(Sequence* seq, FinishReason reason, Status error) {
  ReleaseSequenceState(*seq);
  TokenEvent event;
  event.finish = reason;
  event.error = std::move(error);
  event.usage = Usage{seq->prompt_len, seq->generated(), seq->cached_tokens};
  seq->stream->Push(std::move(event));
  observer_->OnFinished(*seq, reason);
  scheduler_.Remove(seq);
}

}  // namespace specontext
