#include "server/metrics.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace specontext::server {
namespace {

ServingMetrics& Populated() {
  static ServingMetrics metrics("smol");
  static const bool filled = [] {
    metrics.SetRequestsRunning(3);
    metrics.SetRequestsWaiting(2);
    metrics.SetKvCacheUsage(0.25);
    metrics.AddPromptTokens(100);
    metrics.AddGenerationTokens(40);
    metrics.RequestFinished(FinishedReason::kStop);
    metrics.RequestFinished(FinishedReason::kLength);
    metrics.RequestFinished(FinishedReason::kLength);
    metrics.Preempted();
    metrics.PrefixCacheLookup(64, 48);
    metrics.Cancelled();
    metrics.ObserveTimeToFirstToken(0.03);
    metrics.ObserveInterTokenLatency(0.012);
    metrics.ObserveEndToEndLatency(1.2);
    metrics.ObserveQueueTime(0.1);
    metrics.ObservePrefillTime(0.05);
    metrics.ObserveDecodeTime(1.0);
    metrics.SetKvTier("gpu", 1 << 20, 512);
    metrics.SetKvTier("host", 4 << 20, 2048);
    metrics.AddPrefetchBytes(4096);
    metrics.SetElasticLoadHitRatio(0.9);
    metrics.ObserveRetrievalTime(0.002);
    metrics.SetLayersOffloaded(4);
    metrics.SetKvSlotBytes(1 << 20);
    return true;
  }();
  (void)filled;
  return metrics;
}

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(MetricsTest, ExposesVllmNamesWithModelLabel) {
  const std::string text = Populated().Scrape();
  for (const char* line : {
           "vllm:num_requests_running{model_name=\"smol\"} 3",
           "vllm:num_requests_waiting{model_name=\"smol\"} 2",
           "vllm:kv_cache_usage_perc{model_name=\"smol\"} 0.25",
           "vllm:prompt_tokens_total{model_name=\"smol\"} 100",
           "vllm:generation_tokens_total{model_name=\"smol\"} 40",
           "vllm:num_preemptions_total{model_name=\"smol\"} 1",
           "vllm:prefix_cache_queries_total{model_name=\"smol\"} 64",
           "vllm:prefix_cache_hits_total{model_name=\"smol\"} 48",
           "vllm:time_to_first_token_seconds_count{model_name=\"smol\"} 1",
           "vllm:inter_token_latency_seconds_bucket{model_name=\"smol\",le=\"0.025\"} 1",
           "vllm:e2e_request_latency_seconds_sum{model_name=\"smol\"} 1.2",
           "vllm:request_queue_time_seconds_count{model_name=\"smol\"} 1",
           "vllm:request_prefill_time_seconds_count{model_name=\"smol\"} 1",
           "vllm:request_decode_time_seconds_count{model_name=\"smol\"} 1",
           "specontext_request_cancellations_total{model_name=\"smol\"} 1",
           "specontext_kv_tier_tokens{model_name=\"smol\",tier=\"host\"} 2048",
           "specontext_prefetch_bytes_total{model_name=\"smol\"} 4096",
           "specontext_elastic_load_hit_ratio{model_name=\"smol\"} 0.9",
           "specontext_retrieval_seconds_count{model_name=\"smol\"} 1",
           "specontext_layers_offloaded{model_name=\"smol\"} 4",
           "specontext_kv_slot_bytes{model_name=\"smol\"} 1048576",
       }) {
    EXPECT_TRUE(Contains(text, line)) << "missing: " << line << "\n" << text;
  }
  EXPECT_TRUE(Contains(text, "finished_reason=\"length\",model_name=\"smol\"} 2") ||
              Contains(text, "model_name=\"smol\",finished_reason=\"length\"} 2"))
      << text;
  // Reasons that never happened are still exported, at zero.
  EXPECT_TRUE(Contains(text, "finished_reason=\"abort\"")) << text;
}

// promtool lints the exposition; the only complaint tolerated is the ':' in vLLM's names, which
// stock dashboards need.
TEST(MetricsTest, ScrapePassesPromtool) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not found on PATH (Debian package 'prometheus')";
  }
  const auto dir = std::filesystem::temp_directory_path();
  const auto input = dir / ("specontext_metrics_" + std::to_string(::getpid()) + ".prom");
  const auto output = dir / ("specontext_metrics_" + std::to_string(::getpid()) + ".out");
  std::ofstream(input) << Populated().Scrape();
  const std::string command =
      "promtool check metrics < " + input.string() + " > " + output.string() + " 2>&1";
  const int rc = std::system(command.c_str());
  std::ifstream in(output);
  std::stringstream report;
  report << in.rdbuf();
  std::filesystem::remove(input);
  std::filesystem::remove(output);
  ASSERT_NE(rc, -1);
  const int exit_code = WEXITSTATUS(rc);
  // 0: clean; 3: lint findings only (1 would be a parse error).
  ASSERT_TRUE(exit_code == 0 || exit_code == 3) << report.str();
  std::string line;
  while (std::getline(report, line)) {
    if (line.empty()) continue;
    EXPECT_TRUE(line.starts_with("vllm:") && line.ends_with("metric names should not contain ':'"))
        << line;
  }
}

}  // namespace
}  // namespace specontext::server
