#include "loadtest/report.h"

#include <fmt/format.h>

namespace specontext::loadtest {

namespace {

boost::json::object SummaryToJson(const Summary& summary) {
  return {{"count", summary.count}, {"mean", summary.mean},    {"median", summary.median},
          {"p90", summary.p90},     {"p99", summary.p99},      {"min", summary.min},
          {"max", summary.max},     {"stddev", summary.stddev}};
}

void Line(std::string& out, std::string_view label, const std::string& value) {
  out += fmt::format("{:<40}{:>14}\n", label, value);
}

void Section(std::string& out, std::string_view title) {
  out += fmt::format("{:-^54}\n", fmt::format(" {} ", title));
}

void Distribution(std::string& out, std::string_view name, const Summary& summary) {
  Section(out, name);
  Line(out, fmt::format("Mean {} (ms):", name), fmt::format("{:.2f}", summary.mean));
  Line(out, fmt::format("Median {} (ms):", name), fmt::format("{:.2f}", summary.median));
  Line(out, fmt::format("P90 {} (ms):", name), fmt::format("{:.2f}", summary.p90));
  Line(out, fmt::format("P99 {} (ms):", name), fmt::format("{:.2f}", summary.p99));
}

}  // namespace

boost::json::object ResultToJson(const BenchmarkResult& result, boost::json::object config) {
  boost::json::object errors;
  for (const auto& [message, count] : result.errors) errors[message] = count;
  boost::json::object json{
      {"config", std::move(config)},
      {"completed", result.completed},
      {"failed", result.failed},
      {"duration_s", result.duration_s},
      {"total_input_tokens", result.total_input_tokens},
      {"total_output_tokens", result.total_output_tokens},
      {"request_throughput", result.request_throughput},
      {"output_throughput", result.output_throughput},
      {"total_token_throughput", result.total_token_throughput},
      {"ttft_ms", SummaryToJson(result.ttft_ms)},
      {"tpot_ms", SummaryToJson(result.tpot_ms)},
      {"itl_ms", SummaryToJson(result.itl_ms)},
      {"e2el_ms", SummaryToJson(result.e2el_ms)},
      {"errors", std::move(errors)},
  };
  if (result.goodput) {
    json["goodput"] = *result.goodput;
    json["good_requests"] = result.good_requests;
  }
  if (result.accuracy) json["accuracy"] = *result.accuracy;
  return json;
}

std::string FormatTable(const BenchmarkResult& result, const std::string& title) {
  std::string out;
  out += fmt::format("{:=^54}\n", fmt::format(" {} ", title));
  Line(out, "Successful requests:", std::to_string(result.completed));
  Line(out, "Failed requests:", std::to_string(result.failed));
  Line(out, "Benchmark duration (s):", fmt::format("{:.2f}", result.duration_s));
  Line(out, "Total input tokens:", std::to_string(result.total_input_tokens));
  Line(out, "Total generated tokens:", std::to_string(result.total_output_tokens));
  Line(out, "Request throughput (req/s):", fmt::format("{:.2f}", result.request_throughput));
  if (result.goodput) {
    Line(out, "Request goodput (req/s):", fmt::format("{:.2f}", *result.goodput));
  }
  Line(out, "Output token throughput (tok/s):", fmt::format("{:.2f}", result.output_throughput));
  Line(out,
       "Total token throughput (tok/s):", fmt::format("{:.2f}", result.total_token_throughput));
  if (result.accuracy) {
    Line(out, "Pass key accuracy:", fmt::format("{:.1f}%", *result.accuracy * 100));
  }
  Distribution(out, "TTFT", result.ttft_ms);
  Distribution(out, "TPOT", result.tpot_ms);
  Distribution(out, "ITL", result.itl_ms);
  Distribution(out, "E2EL", result.e2el_ms);
  if (!result.errors.empty()) {
    Section(out, "Errors");
    for (const auto& [message, count] : result.errors) {
      out += fmt::format("{:>6} x {}\n", count, message);
    }
  }
  out += std::string(54, '=') + "\n";
  return out;
}

}  // namespace specontext::loadtest
