// Turns the engine thread's hooks into Prometheus series: scheduler gauges and elastic-loading
// copies per step, TTFT and queue time at the first token, latency breakdown and token counts
// when a request ends, and the KV placement's tier usage and memory decisions.
#pragma once

#include "scheduler/engine_observer.h"
#include "scheduler/kv_placement.h"
#include "server/metrics.h"

namespace specontext::server {

class EngineMetricsObserver : public EngineObserver, public PlacementObserver {
 public:
  explicit EngineMetricsObserver(ServingMetrics* metrics);

  void OnStep(const StepStats& stats) override;
  void OnFirstToken(const Sequence& seq) override;
  void OnPreempted(const Sequence& seq) override;
  void OnFinished(const Sequence& seq, FinishReason reason) override;
  void OnMemoryDecision(MemoryDecision decision, int64_t count) override;
  void OnKvTiers(const KvTierSnapshot& snapshot) override;

 private:
  ServingMetrics* metrics_;
};

}  // namespace specontext::server
