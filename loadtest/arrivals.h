// When requests are sent: gaps between arrivals drawn from a Gamma distribution whose mean is
// 1/rate. Shape 1 is a Poisson process; a smaller shape ("burstiness" below 1) clusters arrivals,
// a larger one spaces them more evenly. An infinite rate sends everything at once, leaving the
// concurrency limit to pace the run.
#pragma once

#include <cstdint>
#include <random>

#include "common/status.h"

namespace specontext::loadtest {

class ArrivalProcess {
 public:
  // `rate` in requests per second (> 0, may be infinity); `burstiness` > 0.
  static Result<ArrivalProcess> Create(double rate, double burstiness, uint64_t seed);

  // Seconds from the previous arrival to the next one.
  double NextGap();

  bool unpaced() const { return unpaced_; }

 private:
  ArrivalProcess(double rate, double burstiness, uint64_t seed);

  bool unpaced_;
  std::mt19937_64 rng_;
  std::gamma_distribution<double> gap_;
};

}  // namespace specontext::loadtest
