#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/serving_model.h"

namespace specontext::server {

struct ThroughputOptions {
  ServingModelOptions model;
  std::string backend = "auto";
  std::string attention = "dense";
  int input_len = 1024;
  int output_len = 128;
  int num_prompts = 16;
  uint64_t seed = 0;
};

struct ThroughputResult {
  int requests = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double seconds = 0.0;  // from the submission of every request to the last one's end
  // Steps with decode rows only (every admitted prompt prefilled): the steady state.
  int64_t decode_steps = 0;
  int64_t decode_tokens = 0;
  double decode_seconds = 0.0;
  int peak_running = 0;
  int64_t preemptions = 0;
  std::vector<double> ttft_seconds;  // per request, from submission to its first token
  ElasticLoadStats elastic;
  SpecontextCounters specontext;
};

// Submits `num_prompts` requests of `input_len` random token ids at once, each generating exactly
// `output_len` tokens greedily (EOS ignored), to the engine in-process: the scheduler admits as
// many as the KV store and its memory manager allow, and the rest wait, as in serving.
Result<ThroughputResult> RunThroughput(ThroughputOptions options);

// `specontext throughput`: end-to-end offline throughput, prefill and decode mixed
// (docs/performance.md).
void AddThroughputCommand(CLI::App& app);

}  // namespace specontext::server
