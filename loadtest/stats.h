// Summary statistics of latency samples, with percentiles interpolated linearly between order
// statistics (NumPy's default), so numbers line up with what other serving benchmarks print.
#pragma once

#include <span>
#include <vector>

namespace specontext::loadtest {

struct Summary {
  size_t count = 0;
  double mean = 0;
  double stddev = 0;
  double min = 0;
  double max = 0;
  double median = 0;
  double p90 = 0;
  double p99 = 0;
};

// `sorted` must be ascending and non-empty; `q` in [0, 100].
double Percentile(std::span<const double> sorted, double q);

// All zeros for an empty sample.
Summary Summarize(std::vector<double> samples);

}  // namespace specontext::loadtest
