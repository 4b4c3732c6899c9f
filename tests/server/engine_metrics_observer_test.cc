// The engine's per-step elastic-loading counters reach the Prometheus series the dashboards and
// recording rules read: bytes copied add up, the hit ratio is the last step's.
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

}  // namespace
}  // namespace specontext::server
