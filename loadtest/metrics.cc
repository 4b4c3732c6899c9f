#include "loadtest/metrics.h"

#include <vector>

namespace specontext::loadtest {

namespace {

constexpr double kMs = 1000.0;

bool MeetsSlo(const RequestRecord& record, std::optional<double> tpot_ms, const SloTargets& slo) {
  if (slo.ttft_ms && record.ttft_s * kMs > *slo.ttft_ms) return false;
  if (slo.e2el_ms && record.e2e_s * kMs > *slo.e2el_ms) return false;
  // A single-token answer has no decode phase to hold to a TPOT target.
  if (slo.tpot_ms && tpot_ms && *tpot_ms > *slo.tpot_ms) return false;
  return true;
}

}  // namespace

BenchmarkResult ComputeResult(std::span<const RequestRecord> records, double duration_s,
                              const SloTargets& slo) {
  BenchmarkResult result;
  result.duration_s = duration_s;
  std::vector<double> ttft, tpot, itl, e2el;
  size_t scored = 0, correct = 0;
  for (const RequestRecord& record : records) {
    if (!record.success) {
      ++result.failed;
      ++result.errors[record.error];
      continue;
    }
    ++result.completed;
    result.total_input_tokens += record.prompt_tokens;
    result.total_output_tokens += record.output_tokens;
    ttft.push_back(record.ttft_s * kMs);
    e2el.push_back(record.e2e_s * kMs);
    for (double gap : record.itl_s) itl.push_back(gap * kMs);
    std::optional<double> request_tpot;
    if (record.output_tokens > 1) {
      request_tpot =
          (record.e2e_s - record.ttft_s) * kMs / static_cast<double>(record.output_tokens - 1);
      tpot.push_back(*request_tpot);
    }
    if (slo.any() && MeetsSlo(record, request_tpot, slo)) ++result.good_requests;
    if (record.expected_answer) {
      ++scored;
      if (record.generated_text.find(*record.expected_answer) != std::string::npos) ++correct;
    }
  }
  if (duration_s > 0) {
    result.request_throughput = static_cast<double>(result.completed) / duration_s;
    result.output_throughput = static_cast<double>(result.total_output_tokens) / duration_s;
    result.total_token_throughput =
        static_cast<double>(result.total_input_tokens + result.total_output_tokens) / duration_s;
    if (slo.any()) result.goodput = static_cast<double>(result.good_requests) / duration_s;
  }
  if (scored > 0) result.accuracy = static_cast<double>(correct) / static_cast<double>(scored);
  result.ttft_ms = Summarize(std::move(ttft));
  result.tpot_ms = Summarize(std::move(tpot));
  result.itl_ms = Summarize(std::move(itl));
  result.e2el_ms = Summarize(std::move(e2el));
  return result;
}

}  // namespace specontext::loadtest
