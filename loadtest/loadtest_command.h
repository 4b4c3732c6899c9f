// The `specontext-loadtest` command line: options, wiring, and the final report.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace specontext::loadtest {

struct CommandOptions {
  std::string base_url = "http://127.0.0.1:8000";
  std::string endpoint = "completions";  // or "chat"
  std::string model;                     // empty: the first model /v1/models lists
  std::string tokenizer;                 // model directory or tokenizer.json
  std::string api_key;
  uint64_t num_requests = 0;
  double duration_s = 0;
  double request_rate = 0;  // 0 means no pacing
  double burstiness = 1;
  uint64_t max_concurrency = 0;
  std::string dataset = "random";
  std::string document;  // document dataset: the text file prompts are cut from
  int64_t input_len = 256;
  int64_t output_len = 128;
  double range_ratio = 0;
  int64_t prefix_len = 0;
  int64_t prefix_groups = 1;
  uint64_t seed = 0;
  double temperature = 0;
  bool ignore_eos = true;
  uint64_t warmup_requests = 0;
  std::vector<std::string> goodput;  // "ttft:MS", "tpot:MS", "e2el:MS"
  double request_timeout_s = 600;
  std::string output_json;
  bool json_stdout = false;
  bool progress = true;
};

void AddOptions(CLI::App& app, CommandOptions& options);

// The process exit code: 0 when at least one request completed, 1 otherwise; reasons on stderr.
int RunLoadTest(const CommandOptions& options);

}  // namespace specontext::loadtest
