#include "server/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace specontext::server {

namespace prom = prometheus;

namespace {

// vLLM's bucket boundaries, so its dashboards' quantile queries read the same.
const prom::Histogram::BucketBoundaries kTtftBuckets = {
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
    1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
const prom::Histogram::BucketBoundaries kItlBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
                                                       0.3,  0.4,   0.5,  0.75,  1.0, 2.5,  5.0,
                                                       7.5,  10.0,  20.0, 40.0,  80.0};
const prom::Histogram::BucketBoundaries kRequestBuckets = {
    0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
    30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
const prom::Histogram::BucketBoundaries kRetrievalBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};

constexpr const char* kFinishedReasons[] = {"stop", "length", "abort", "error"};

}  // namespace

ServingMetrics::ServingMetrics(std::string model_name)
    : model_name_(std::move(model_name)), registry_(std::make_shared<prom::Registry>()) {
  const prom::Labels model{{"model_name", model_name_}};
  auto& reg = *registry_;
  const auto gauge = [&](const char* name, const char* help) {
    return &prom::BuildGauge().Name(name).Help(help).Register(reg).Add(model);
  };
  const auto counter = [&](const char* name, const char* help) {
    return &prom::BuildCounter().Name(name).Help(help).Register(reg).Add(model);
  };
  const auto histogram = [&](const char* name, const char* help,
                             const prom::Histogram::BucketBoundaries& buckets) {
    return &prom::BuildHistogram().Name(name).Help(help).Register(reg).Add(model, buckets);
  };

  running_ = gauge("vllm:num_requests_running", "Requests in the running batch.");
  waiting_ = gauge("vllm:num_requests_waiting", "Requests waiting to be admitted.");
  kv_usage_ = gauge("vllm:kv_cache_usage_perc", "Fraction of GPU KV blocks in use (0 to 1).");
  prompt_tokens_ = counter("vllm:prompt_tokens_total", "Prefill tokens processed.");
  generation_tokens_ = counter("vllm:generation_tokens_total", "Tokens generated.");
  success_family_ = &prom::BuildCounter()
                         .Name("vllm:request_success_total")
                         .Help("Finished requests by finish reason.")
                         .Register(reg);
  for (const char* reason : kFinishedReasons) {
    success_family_->Add({{"model_name", model_name_}, {"finished_reason", reason}});
  }
  preemptions_ = counter("vllm:num_preemptions_total", "Requests preempted by the scheduler.");
  prefix_queries_ =
      counter("vllm:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.");
  prefix_hits_ =
      counter("vllm:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.");
  ttft_ = histogram("vllm:time_to_first_token_seconds", "Time to first token.", kTtftBuckets);
  itl_ = histogram("vllm:inter_token_latency_seconds", "Time between output tokens.", kItlBuckets);
  e2e_ = histogram("vllm:e2e_request_latency_seconds", "Request latency from arrival to finish.",
                   kRequestBuckets);
  queue_ = histogram("vllm:request_queue_time_seconds", "Time spent waiting for admission.",
                     kRequestBuckets);
  prefill_ =
      histogram("vllm:request_prefill_time_seconds", "Time spent in prefill.", kRequestBuckets);
  decode_ = histogram("vllm:request_decode_time_seconds", "Time spent in decode.", kRequestBuckets);

  cancellations_ = counter("specontext_request_cancellations_total",
                           "Requests cancelled because the client went away.");
  tier_bytes_family_ = &prom::BuildGauge()
                            .Name("specontext_kv_tier_bytes")
                            .Help("KV cache bytes held per tier.")
                            .Register(reg);
  tier_tokens_family_ = &prom::BuildGauge()
                             .Name("specontext_kv_tier_tokens")
                             .Help("KV cache token positions held per tier.")
                             .Register(reg);
  prefetch_bytes_ = counter("specontext_prefetch_bytes_total",
                            "KV bytes copied in ahead of use by retrieval prefetch.");
  head_prefix_tokens_ =
      counter("specontext_retrieval_head_prefix_tokens_total",
              "Positions whose retrieval-head K was taken from a shared prompt prefix.");
  head_unknown_inputs_ =
      counter("specontext_retrieval_head_unknown_inputs_total",
              "Positions whose retrieval-head K was projected without the target's hidden state "
              "(a cached prompt prefix no shared head block covered).");
  elastic_hit_ratio_ = gauge("specontext_elastic_load_hit_ratio",
                             "Fraction of retrieved KV positions already resident on the GPU.");
  retrieval_ = histogram("specontext_retrieval_seconds", "Retrieval head time per decode step.",
                         kRetrievalBuckets);
  auto& decode_rows = prom::BuildCounter()
                          .Name("specontext_decode_rows_total")
                          .Help(
                              "SpeContext decode rows by how they attended: sparse, short "
                              "(context within the budget) or dense_fallback; dense_redo counts "
                              "sparse rows run again densely (the target was unsure).")
                          .Register(reg);
  const char* kinds[] = {"sparse", "short", "dense_fallback", "dense_redo"};
  for (size_t i = 0; i < decode_rows_.size(); ++i) {
    decode_rows_[i] = &decode_rows.Add({{"model_name", model_name_}, {"attention", kinds[i]}});
  }
  layers_offloaded_ = gauge("specontext_layers_offloaded", "Layers whose KV is offloaded.");
  kv_slot_bytes_ = gauge("specontext_kv_slot_bytes",
                         "GPU KV tier bytes lent to offloaded layers as SpeContext elastic slots.");
  decisions_family_ = &prom::BuildCounter()
                           .Name("specontext_memory_decisions_total")
                           .Help("KV memory manager decisions by kind.")
                           .Register(reg);
}

void ServingMetrics::RequestFinished(FinishedReason reason) {
  success_family_
      ->Add({{"model_name", model_name_},
             {"finished_reason", kFinishedReasons[static_cast<int>(reason)]}})
      .Increment();
}

void ServingMetrics::PrefixCacheLookup(int64_t queried_tokens, int64_t hit_tokens) {
  prefix_queries_->Increment(static_cast<double>(queried_tokens));
  prefix_hits_->Increment(static_cast<double>(hit_tokens));
}

void ServingMetrics::SetKvTier(std::string_view tier, int64_t bytes, int64_t tokens) {
  const prom::Labels labels{{"model_name", model_name_}, {"tier", std::string(tier)}};
  tier_bytes_family_->Add(labels).Set(static_cast<double>(bytes));
  tier_tokens_family_->Add(labels).Set(static_cast<double>(tokens));
}

void ServingMetrics::AddMemoryDecisions(std::string_view decision, int64_t count) {
  decisions_family_->Add({{"model_name", model_name_}, {"decision", std::string(decision)}})
      .Increment(static_cast<double>(count));
}

void ServingMetrics::AddDecodeRows(int64_t sparse, int64_t short_rows, int64_t dense_fallback,
                                   int64_t dense_redo) {
  const int64_t rows[] = {sparse, short_rows, dense_fallback, dense_redo};
  for (size_t i = 0; i < decode_rows_.size(); ++i) {
    decode_rows_[i]->Increment(static_cast<double>(rows[i]));
  }
}

std::string ServingMetrics::Scrape() const {
  std::ostringstream out;
  prom::TextSerializer().Serialize(out, registry_->Collect());
  return std::move(out).str();
}

}  // namespace specontext::server
