#include "loadtest/arrivals.h"

#include <cmath>
#include <string>

namespace specontext::loadtest {

Result<ArrivalProcess> ArrivalProcess::Create(double rate, double burstiness, uint64_t seed) {
  if (!(rate > 0)) {
    return InvalidArgument("request rate must be positive (inf for no pacing), got " +
                           std::to_string(rate));
  }
  if (!(burstiness > 0) || std::isinf(burstiness)) {
    return InvalidArgument("burstiness must be a positive finite number, got " +
                           std::to_string(burstiness));
  }
  return ArrivalProcess(rate, burstiness, seed);
}

ArrivalProcess::ArrivalProcess(double rate, double burstiness, uint64_t seed)
    : unpaced_(std::isinf(rate)),
      rng_(seed),
      // Mean gap = shape * scale = 1 / rate whatever the shape.
      gap_(burstiness, unpaced_ ? 1.0 : 1.0 / (rate * burstiness)) {}

double ArrivalProcess::NextGap() { return unpaced_ ? 0.0 : gap_(rng_); }

}  // namespace specontext::loadtest
