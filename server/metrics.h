// The daemon's Prometheus metrics, exposed at GET /metrics in the text format. Request and cache
// series use vLLM's names and its `model_name` label so stock dashboards, KEDA scalers and the
// Gateway API inference extension work unchanged; our own series live under `specontext_`.
// Every method is thread-safe and cheap enough to call from the engine loop.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>

namespace specontext::server {

// Why a request ended, as the finished_reason label spells it.
enum class FinishedReason { kStop, kLength, kAbort, kError };

class ServingMetrics {
 public:
  explicit ServingMetrics(std::string model_name);
  ServingMetrics(const ServingMetrics&) = delete;
  ServingMetrics& operator=(const ServingMetrics&) = delete;

  // Scheduler state, set once per engine step.
  void SetRequestsRunning(int count) { running_->Set(count); }
  void SetRequestsWaiting(int count) { waiting_->Set(count); }
  void SetKvCacheUsage(double fraction) { kv_usage_->Set(fraction); }

  void AddPromptTokens(int64_t tokens) { prompt_tokens_->Increment(static_cast<double>(tokens)); }
  void AddGenerationTokens(int64_t tokens) {
    generation_tokens_->Increment(static_cast<double>(tokens));
  }
  void RequestFinished(FinishedReason reason);
  void Preempted() { preemptions_->Increment(); }
  void PrefixCacheLookup(int64_t queried_tokens, int64_t hit_tokens);
  // A client went away and its request was cancelled.
  void Cancelled() { cancellations_->Increment(); }

  void ObserveTimeToFirstToken(double seconds) { ttft_->Observe(seconds); }
  void ObserveInterTokenLatency(double seconds) { itl_->Observe(seconds); }
  void ObserveEndToEndLatency(double seconds) { e2e_->Observe(seconds); }
  void ObserveQueueTime(double seconds) { queue_->Observe(seconds); }
  void ObservePrefillTime(double seconds) { prefill_->Observe(seconds); }
  void ObserveDecodeTime(double seconds) { decode_->Observe(seconds); }

  // The tiered KV store, per tier ("gpu", "host", "nvme").
  void SetKvTier(std::string_view tier, int64_t bytes, int64_t tokens);
  void AddPrefetchBytes(int64_t bytes) { prefetch_bytes_->Increment(static_cast<double>(bytes)); }
  void AddHeadPrefixTokens(int64_t tokens) {
    head_prefix_tokens_->Increment(static_cast<double>(tokens));
  }
  void AddHeadUnknownInputs(int64_t tokens) {
    head_unknown_inputs_->Increment(static_cast<double>(tokens));
  }
  void SetElasticLoadHitRatio(double ratio) { elastic_hit_ratio_->Set(ratio); }
  void ObserveRetrievalTime(double seconds) { retrieval_->Observe(seconds); }
  // SpeContext decode rows by how they attended: sparse, short (S <= B) or dense fallback; and
  // the sparse ones run again densely.
  void AddDecodeRows(int64_t sparse, int64_t short_rows, int64_t dense_fallback,
                     int64_t dense_redo);
  void SetLayersOffloaded(int layers) { layers_offloaded_->Set(layers); }
  void SetKvSlotBytes(int64_t bytes) { kv_slot_bytes_->Set(static_cast<double>(bytes)); }
  // The memory manager's decisions by kind ("admit", "defer", "reject", "demote", "promote",
  // "spill"); a count of zero makes the series visible before the first decision.
  void AddMemoryDecisions(std::string_view decision, int64_t count);

  // The whole registry in the Prometheus text exposition format.
  std::string Scrape() const;

 private:
  const std::string model_name_;
  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Gauge* running_;
  prometheus::Gauge* waiting_;
  prometheus::Gauge* kv_usage_;
  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generation_tokens_;
  prometheus::Family<prometheus::Counter>* success_family_;
  prometheus::Counter* preemptions_;
  prometheus::Counter* prefix_queries_;
  prometheus::Counter* prefix_hits_;
  prometheus::Counter* cancellations_;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* itl_;
  prometheus::Histogram* e2e_;
  prometheus::Histogram* queue_;
  prometheus::Histogram* prefill_;
  prometheus::Histogram* decode_;
  prometheus::Family<prometheus::Gauge>* tier_bytes_family_;
  prometheus::Family<prometheus::Gauge>* tier_tokens_family_;
  prometheus::Counter* prefetch_bytes_;
  prometheus::Counter* head_prefix_tokens_;
  prometheus::Counter* head_unknown_inputs_;
  prometheus::Gauge* elastic_hit_ratio_;
  prometheus::Histogram* retrieval_;
  std::array<prometheus::Counter*, 4> decode_rows_;  // sparse, short, dense_fallback, dense_redo
  prometheus::Gauge* layers_offloaded_;
  prometheus::Gauge* kv_slot_bytes_;
  prometheus::Family<prometheus::Counter>* decisions_family_;
};

}  // namespace specontext::server
