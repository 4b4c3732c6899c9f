// Aggregates per-request records into the numbers a serving benchmark reports: latency
// distributions, throughput, and goodput (requests per second that met every SLO given).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "loadtest/request_record.h"
#include "loadtest/stats.h"

namespace specontext::loadtest {

// Milliseconds; an unset target is not checked.
struct SloTargets {
  std::optional<double> ttft_ms;
  std::optional<double> tpot_ms;
  std::optional<double> e2el_ms;

  bool any() const { return ttft_ms || tpot_ms || e2el_ms; }
};

struct BenchmarkResult {
  size_t completed = 0;
  size_t failed = 0;
  double duration_s = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  double request_throughput = 0;      // completed requests / s
  double output_throughput = 0;       // output tokens / s
  double total_token_throughput = 0;  // (input + output) tokens / s
  size_t good_requests = 0;
  std::optional<double> goodput;  // good requests / s, when SLOs were given
  Summary ttft_ms;
  Summary tpot_ms;  // (e2e - ttft) / (output tokens - 1), requests with more than one token
  Summary itl_ms;   // every gap between text chunks of every request
  Summary e2el_ms;
  std::map<std::string, size_t> errors;  // failure message -> count
  std::optional<double> accuracy;        // fraction of scored answers found in the output
};

BenchmarkResult ComputeResult(std::span<const RequestRecord> records, double duration_s,
                              const SloTargets& slo);

}  // namespace specontext::loadtest
