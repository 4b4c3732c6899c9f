// Drives the benchmark: sends requests at the arrival process's times, holds at most
// `max_concurrency` in flight, stops after `num_requests` or once `duration_s` has passed, and
// waits for every request it sent.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "common/status.h"
#include "loadtest/arrivals.h"
#include "loadtest/progress_bar.h"
#include "loadtest/prompt_synthesizer.h"
#include "loadtest/request_body.h"
#include "loadtest/request_record.h"
#include "loadtest/stream_client.h"

namespace specontext::loadtest {

struct LoadOptions {
  std::string path = "/v1/completions";
  ApiKind api = ApiKind::kCompletions;
  SamplingOptions sampling;
  uint64_t num_requests = 0;     // 0: until the duration ends
  double duration_s = 0;         // 0: until num_requests were sent
  uint64_t max_concurrency = 0;  // 0: no limit
  uint64_t warmup_requests = 0;  // sent one at a time before the clock starts; not counted
};

struct RunOutput {
  std::deque<RequestRecord> records;  // in the order sent
  double duration_s = 0;              // first send to last completion
};

class LoadRunner {
 public:
  LoadRunner(const StreamClient& client, const PromptSynthesizer& prompts, ArrivalProcess arrivals,
             LoadOptions options, ProgressBar& progress);

  Result<RunOutput> Run();

 private:
  class Session;

  const StreamClient& client_;
  const PromptSynthesizer& prompts_;
  ArrivalProcess arrivals_;
  LoadOptions options_;
  ProgressBar& progress_;
};

}  // namespace specontext::loadtest
