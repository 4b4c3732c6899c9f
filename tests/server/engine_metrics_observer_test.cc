// The engine's per-step elastic-loading and retrieval counters reach the Prometheus series the
// dashboards and recording rules read: bytes copied and decode rows add up, the hit ratio is the
// last step's, and the retrieval histogram sees each step that ran the head on a decode row.
#include "server/engine_metrics_observer.h"

#include <gtest/gtest.h>

namespace specontext::server {
namespace {

TEST(EngineMetricsObserverTest, ElasticCopiesFeedPrefetchBytesAndHitRatio) {
  ServingMetrics metrics("smol");
  EngineMetricsObserver observer(&metrics);
  StepStats step;
  step.elastic = {.steps = 1, .positions_reused = 90, .positions_loaded = 10, .bytes_copied = 5120};
  observer.OnStep(step);
  step.elastic = {.steps = 1, .positions_reused = 75, .positions_loaded = 25, .bytes_copied = 1024};
  observer.OnStep(step);
  observer.OnStep(StepStats{});  // a dense step changes neither
  const std::string scrape = metrics.Scrape();
  EXPECT_NE(scrape.find("specontext_prefetch_bytes_total{model_name=\"smol\"} 6144"),
            std::string::npos)
      << scrape;
  EXPECT_NE(scrape.find("specontext_elastic_load_hit_ratio{model_name=\"smol\"} 0.75"),
            std::string::npos)
      << scrape;
}

TEST(EngineMetricsObserverTest, RetrievalCountersFeedDecodeRowsHeadTimeAndPrefixReuse) {
  ServingMetrics metrics("smol");
  EngineMetricsObserver observer(&metrics);
  StepStats step;
  step.specontext = {.decode_steps = 5,
                     .sparse_steps = 3,
                     .short_steps = 1,
                     .fallback_steps = 1,
                     .retrieval_seconds = 0.004};
  observer.OnStep(step);
  step.specontext = {
      .decode_steps = 2, .sparse_steps = 2, .redo_steps = 1, .retrieval_seconds = 0.002};
  observer.OnStep(step);
  step.specontext = {.tokens_projected = 512, .retrieval_seconds = 0.01};  // prefill only
  observer.OnStep(step);
  step.specontext = {.tokens_projected = 16, .tokens_adopted = 480};  // a shared prefix
  observer.OnStep(step);
  step.specontext = {.tokens_projected = 64, .tokens_unknown_input = 48};  // one not shared
  observer.OnStep(step);
  const std::string scrape = metrics.Scrape();
  for (const char* line : {
           "specontext_decode_rows_total{attention=\"sparse\",model_name=\"smol\"} 5",
           "specontext_decode_rows_total{attention=\"short\",model_name=\"smol\"} 1",
           "specontext_decode_rows_total{attention=\"dense_fallback\",model_name=\"smol\"} 1",
           "specontext_decode_rows_total{attention=\"dense_redo\",model_name=\"smol\"} 1",
           "specontext_retrieval_seconds_count{model_name=\"smol\"} 2",
           "specontext_retrieval_seconds_sum{model_name=\"smol\"} 0.006",
           "specontext_retrieval_head_prefix_tokens_total{model_name=\"smol\"} 480",
           "specontext_retrieval_head_unknown_inputs_total{model_name=\"smol\"} 48",
       }) {
    EXPECT_NE(scrape.find(line), std::string::npos) << "missing: " << line << "\n" << scrape;
  }
}

}  // namespace
}  // namespace specontext::server
