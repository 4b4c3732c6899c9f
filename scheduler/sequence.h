// One request as the engine thread tracks it: its tokens, how much of it is in the KV cache,
// and the timestamps the metrics need.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "scheduler/request.h"

namespace specontext {

using SteadyClock = std::chrono::steady_clock;

struct Sequence {
  uint64_t seq_id = 0;
  GenerationRequest request;
  std::shared_ptr<RequestStream> stream;
  std::vector<int32_t> tokens;  // prompt followed by generated tokens
  int prompt_len = 0;
  // B of its sparse decode rows, 0 when it attends densely (StepPlanner::SparseBudget): the
  // KV placement keeps GPU slots for its offloaded layers by it.
  int64_t sparse_budget = 0;
  int num_cached = 0;     // leading positions whose KV is written
  int cached_tokens = 0;  // prompt positions served by the prefix cache at first admission
  uint64_t seed = 0;      // request seed, or one drawn at arrival
  int preemptions = 0;
  // A resumed sequence is not preempted again before it generates a token (no thrashing).
  bool progressed_since_resume = true;

  SteadyClock::time_point arrival;
  SteadyClock::time_point first_scheduled;
  SteadyClock::time_point first_token;
  SteadyClock::time_point last_token;

  int generated() const { return static_cast<int>(tokens.size()) - prompt_len; }
  // Tokens whose KV still has to be computed before the next token can be sampled.
  int pending() const { return static_cast<int>(tokens.size()) - num_cached; }
};

}  // namespace specontext
