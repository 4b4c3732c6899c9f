#include "loadtest/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace specontext::loadtest {
namespace {

TEST(StatsTest, PercentilesInterpolateLikeNumpy) {
  // numpy.percentile([1, 2, 3, 4], q) for q = 0, 50, 90, 99, 100.
  const std::vector<double> sorted = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(Percentile(sorted, 0), 1.0);
  EXPECT_DOUBLE_EQ(Percentile(sorted, 50), 2.5);
  EXPECT_DOUBLE_EQ(Percentile(sorted, 90), 3.7);
  EXPECT_DOUBLE_EQ(Percentile(sorted, 99), 3.97);
  EXPECT_DOUBLE_EQ(Percentile(sorted, 100), 4.0);
}

TEST(StatsTest, SummarizeSortsAndDescribes) {
  const Summary summary = Summarize({9, 1, 5, 3, 7});
  EXPECT_EQ(summary.count, 5u);
  EXPECT_DOUBLE_EQ(summary.mean, 5.0);
  EXPECT_DOUBLE_EQ(summary.median, 5.0);
  EXPECT_DOUBLE_EQ(summary.min, 1.0);
  EXPECT_DOUBLE_EQ(summary.max, 9.0);
  EXPECT_DOUBLE_EQ(summary.p90, 8.2);
  EXPECT_DOUBLE_EQ(summary.stddev, std::sqrt(8.0));
}

TEST(StatsTest, SingleSampleAndEmpty) {
  const Summary one = Summarize({42});
  EXPECT_DOUBLE_EQ(one.median, 42);
  EXPECT_DOUBLE_EQ(one.p99, 42);
  const Summary none = Summarize({});
  EXPECT_EQ(none.count, 0u);
  EXPECT_DOUBLE_EQ(none.mean, 0);
}

}  // namespace
}  // namespace specontext::loadtest
