// What one benchmark request measured, in seconds relative to the moment it was sent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace specontext::loadtest {

struct RequestRecord {
  bool success = false;
  std::string error;           // why it failed, empty on success
  double start_s = 0;          // when it was sent, from the start of the benchmark
  double ttft_s = 0;           // until the first chunk that carried text
  double e2e_s = 0;            // until the end of the stream
  std::vector<double> itl_s;   // gaps between successive chunks that carried text
  int64_t prompt_tokens = 0;   // from `usage`, else the synthesized length
  int64_t output_tokens = 0;   // from `usage`, else the number of chunks that carried text
  std::string generated_text;  // kept only when there is an answer to score
  std::optional<std::string> expected_answer;
};

}  // namespace specontext::loadtest
