#include "loadtest/arrivals.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace specontext::loadtest {
namespace {

struct GapStats {
  double mean;
  double cv;  // standard deviation / mean
};

GapStats Sample(double rate, double burstiness, uint64_t seed, int n) {
  auto process = ArrivalProcess::Create(rate, burstiness, seed);
  EXPECT_TRUE(process.ok()) << process.status().ToString();
  std::vector<double> gaps;
  for (int i = 0; i < n; ++i) gaps.push_back(process->NextGap());
  double sum = 0, squares = 0;
  for (double gap : gaps) sum += gap;
  const double mean = sum / n;
  for (double gap : gaps) squares += (gap - mean) * (gap - mean);
  return {mean, std::sqrt(squares / n) / mean};
}

TEST(ArrivalsTest, PoissonGapsHaveMeanOneOverRateAndUnitVariation) {
  // 40000 exponential gaps: the sample mean's relative error is about 0.5%, so 3% is safe.
  const GapStats stats = Sample(/*rate=*/8.0, /*burstiness=*/1.0, /*seed=*/7, 40000);
  EXPECT_NEAR(stats.mean, 1.0 / 8.0, 0.03 / 8.0);
  EXPECT_NEAR(stats.cv, 1.0, 0.03);
}

TEST(ArrivalsTest, GammaShapeSetsBurstinessButNotRate) {
  // Gamma with shape k has a coefficient of variation of 1/sqrt(k).
  const GapStats bursty = Sample(4.0, 0.25, 11, 40000);
  EXPECT_NEAR(bursty.mean, 0.25, 0.25 * 0.05);
  EXPECT_NEAR(bursty.cv, 2.0, 0.1);
  const GapStats steady = Sample(4.0, 4.0, 11, 40000);
  EXPECT_NEAR(steady.mean, 0.25, 0.25 * 0.03);
  EXPECT_NEAR(steady.cv, 0.5, 0.03);
}

TEST(ArrivalsTest, SameSeedSameSchedule) {
  auto a = ArrivalProcess::Create(3.0, 1.0, 99);
  auto b = ArrivalProcess::Create(3.0, 1.0, 99);
  auto c = ArrivalProcess::Create(3.0, 1.0, 100);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const double gap = a->NextGap();
    EXPECT_EQ(gap, b->NextGap());
    differs |= gap != c->NextGap();
  }
  EXPECT_TRUE(differs);
}

TEST(ArrivalsTest, InfiniteRateSendsAtOnce) {
  auto process = ArrivalProcess::Create(std::numeric_limits<double>::infinity(), 1.0, 1);
  ASSERT_TRUE(process.ok());
  EXPECT_TRUE(process->unpaced());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(process->NextGap(), 0.0);
}

TEST(ArrivalsTest, RejectsBadParameters) {
  EXPECT_FALSE(ArrivalProcess::Create(0, 1, 1).ok());
  EXPECT_FALSE(ArrivalProcess::Create(-2, 1, 1).ok());
  EXPECT_FALSE(ArrivalProcess::Create(std::nan(""), 1, 1).ok());
  EXPECT_FALSE(ArrivalProcess::Create(1, 0, 1).ok());
  EXPECT_FALSE(ArrivalProcess::Create(1, std::numeric_limits<double>::infinity(), 1).ok());
}

}  // namespace
}  // namespace specontext::loadtest
