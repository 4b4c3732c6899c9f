#include "server/engine_metrics_observer.h"

namespace specontext::server {

namespace {

double Seconds(SteadyClock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

// A timestamp the engine never set (request ended before reaching that stage).
bool Unset(SteadyClock::time_point time) { return time == SteadyClock::time_point{}; }

}  // namespace

EngineMetricsObserver::EngineMetricsObserver(ServingMetrics* metrics) : metrics_(metrics) {
  for (int d = 0; d < kNumMemoryDecisions; ++d) {
    metrics_->AddMemoryDecisions(MemoryDecisionName(static_cast<MemoryDecision>(d)), 0);
  }
}

void EngineMetricsObserver::OnMemoryDecision(MemoryDecision decision, int64_t count) {
  metrics_->AddMemoryDecisions(MemoryDecisionName(decision), count);
}

void EngineMetricsObserver::OnKvTiers(const KvTierSnapshot& snapshot) {
  for (Tier tier : kAllTiers) {
    const PoolUsage& usage = snapshot.usage[static_cast<int>(tier)];
    metrics_->SetKvTier(TierName(tier), static_cast<int64_t>(usage.used_bytes), usage.tokens);
  }
  metrics_->SetLayersOffloaded(static_cast<int>(snapshot.layers_offloaded));
  metrics_->SetKvSlotBytes(snapshot.slot_bytes);
  // vLLM's gauge is about the fastest tier: the GPU, or host memory without one.
  const PoolUsage& gpu = snapshot.usage[static_cast<int>(Tier::kGpu)];
  const PoolUsage& primary =
      gpu.total_blocks > 0 ? gpu : snapshot.usage[static_cast<int>(Tier::kHost)];
  if (primary.total_blocks > 0) {
    metrics_->SetKvCacheUsage(static_cast<double>(primary.used_blocks) /
                              static_cast<double>(primary.total_blocks));
  }
}

void EngineMetricsObserver::OnStep(const StepStats& stats) {
  metrics_->SetRequestsRunning(stats.running);
  metrics_->SetRequestsWaiting(stats.waiting);
  const ElasticLoadStats& e = stats.elastic;
  metrics_->AddPrefetchBytes(e.bytes_copied);
  // Per step: the share of the selected positions already in their GPU slots.
  if (const int64_t listed = e.positions_reused + e.positions_loaded; listed > 0) {
    metrics_->SetElasticLoadHitRatio(static_cast<double>(e.positions_reused) /
                                     static_cast<double>(listed));
  }
  const SpecontextCounters& s = stats.specontext;
  metrics_->AddHeadPrefixTokens(s.tokens_adopted);
  metrics_->AddHeadUnknownInputs(s.tokens_unknown_input);
  if (s.decode_steps > 0) {
    metrics_->ObserveRetrievalTime(s.retrieval_seconds);
    metrics_->AddDecodeRows(s.sparse_steps, s.short_steps, s.fallback_steps, s.redo_steps);
  }
}

void EngineMetricsObserver::OnFirstToken(const Sequence& seq) {
  metrics_->ObserveTimeToFirstToken(Seconds(seq.first_token - seq.arrival));
  metrics_->AddPromptTokens(seq.prompt_len);
}

void EngineMetricsObserver::OnPreempted(const Sequence& /*seq*/) { metrics_->Preempted(); }

void EngineMetricsObserver::OnFinished(const Sequence& seq, FinishReason reason) {
  const auto now = SteadyClock::now();
  metrics_->ObserveEndToEndLatency(Seconds(now - seq.arrival));
  if (!Unset(seq.first_scheduled)) {
    metrics_->ObserveQueueTime(Seconds(seq.first_scheduled - seq.arrival));
    if (!Unset(seq.first_token)) {
      metrics_->ObservePrefillTime(Seconds(seq.first_token - seq.first_scheduled));
      metrics_->ObserveDecodeTime(Seconds(seq.last_token - seq.first_token));
    }
  }
  metrics_->AddGenerationTokens(seq.generated());
  switch (reason) {
    case FinishReason::kStop:
      metrics_->RequestFinished(FinishedReason::kStop);
      break;
    case FinishReason::kLength:
      metrics_->RequestFinished(FinishedReason::kLength);
      break;
    case FinishReason::kAbort:
      metrics_->RequestFinished(FinishedReason::kAbort);
      break;
    case FinishReason::kError:
    case FinishReason::kNone:
      metrics_->RequestFinished(FinishedReason::kError);
      break;
  }
}

}  // namespace specontext::server
