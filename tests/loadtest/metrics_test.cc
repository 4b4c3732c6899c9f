#include "loadtest/metrics.h"

#include <gtest/gtest.h>

#include <vector>

namespace specontext::loadtest {
namespace {

RequestRecord Done(double ttft, double e2e, int64_t out, std::vector<double> itl) {
  RequestRecord record;
  record.success = true;
  record.ttft_s = ttft;
  record.e2e_s = e2e;
  record.prompt_tokens = 10;
  record.output_tokens = out;
  record.itl_s = std::move(itl);
  return record;
}

TEST(MetricsTest, TpotItlThroughputAndGoodput) {
  std::vector<RequestRecord> records = {
      Done(0.1, 0.4, 4, {0.1, 0.1, 0.1}),       // TPOT (0.4 - 0.1) / 3 = 100 ms
      Done(0.3, 1.1, 5, {0.2, 0.2, 0.2, 0.2}),  // TPOT 200 ms
      Done(0.2, 0.2, 1, {}),                    // one token: no TPOT
  };
  RequestRecord failed;
  failed.error = "HTTP 503: busy";
  records.push_back(failed);
  records.push_back(failed);

  const BenchmarkResult result = ComputeResult(records, 2.0, {.ttft_ms = 250, .tpot_ms = 150});
  EXPECT_EQ(result.completed, 3u);
  EXPECT_EQ(result.failed, 2u);
  EXPECT_EQ(result.errors.at("HTTP 503: busy"), 2u);
  EXPECT_EQ(result.total_output_tokens, 10);
  EXPECT_EQ(result.total_input_tokens, 30);
  EXPECT_DOUBLE_EQ(result.request_throughput, 1.5);
  EXPECT_DOUBLE_EQ(result.output_throughput, 5.0);
  EXPECT_DOUBLE_EQ(result.total_token_throughput, 20.0);
  EXPECT_EQ(result.tpot_ms.count, 2u);
  EXPECT_NEAR(result.tpot_ms.mean, 150.0, 1e-9);
  EXPECT_EQ(result.itl_ms.count, 7u);
  EXPECT_NEAR(result.itl_ms.median, 200.0, 1e-9);
  EXPECT_NEAR(result.ttft_ms.median, 200.0, 1e-9);
  // Good: the first (TTFT 100, TPOT 100) and the single-token one (TTFT 200, no TPOT).
  EXPECT_EQ(result.good_requests, 2u);
  ASSERT_TRUE(result.goodput);
  EXPECT_DOUBLE_EQ(*result.goodput, 1.0);
  EXPECT_FALSE(result.accuracy);
}

TEST(MetricsTest, NoSloNoGoodputAndAnswersAreScored) {
  RequestRecord hit = Done(0.1, 0.2, 2, {0.1});
  hit.expected_answer = "12345";
  hit.generated_text = " 12345.";
  RequestRecord miss = hit;
  miss.generated_text = " 54321";
  const std::vector<RequestRecord> records = {hit, miss};
  const BenchmarkResult result = ComputeResult(records, 1.0, {});
  EXPECT_FALSE(result.goodput);
  ASSERT_TRUE(result.accuracy);
  EXPECT_DOUBLE_EQ(*result.accuracy, 0.5);
}

}  // namespace
}  // namespace specontext::loadtest
