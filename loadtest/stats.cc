#include "loadtest/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace specontext::loadtest {

double Percentile(std::span<const double> sorted, double q) {
  const double rank = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = rank - static_cast<double>(below);
  return sorted[below] + (sorted[above] - sorted[below]) * fraction;
}

Summary Summarize(std::vector<double> samples) {
  Summary summary;
  if (samples.empty()) return summary;
  std::sort(samples.begin(), samples.end());
  const auto n = static_cast<double>(samples.size());
  summary.count = samples.size();
  summary.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / n;
  double squares = 0;
  for (double x : samples) squares += (x - summary.mean) * (x - summary.mean);
  summary.stddev = std::sqrt(squares / n);
  summary.min = samples.front();
  summary.max = samples.back();
  summary.median = Percentile(samples, 50);
  summary.p90 = Percentile(samples, 90);
  summary.p99 = Percentile(samples, 99);
  return summary;
}

}  // namespace specontext::loadtest
