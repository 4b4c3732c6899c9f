// Turns the LM head's fp32 logits rows on the device into LogitsSummary values on the host:
// row statistics, the top tokens and the gathered logits travel in one copy of a few KB per row
// instead of the vocabulary.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

#include "common/status.h"
#include "engine/batch.h"
#include "engine/cuda/device_buffer.h"

namespace specontext::cuda {

class LogitsSummarizer {
 public:
  LogitsSummarizer() = default;
  ~LogitsSummarizer();
  LogitsSummarizer(const LogitsSummarizer&) = delete;
  LogitsSummarizer& operator=(const LogitsSummarizer&) = delete;

  // `logits`: [rows][vocab] fp32 on the device, rows as the request lists them (validated by
  // ValidateBatch). Synchronises the stream.
  Status Summarize(const float* logits, int rows, int vocab, const LogitsSummaryRequest& request,
                   cudaStream_t stream, std::vector<LogitsSummary>* out);

 private:
  struct Layout {
    size_t temperatures = 0, flat_index = 0, inputs_end = 0;
    size_t stats = 0, values = 0, indices = 0, gathered = 0, end = 0;
  };
  static Layout LayoutFor(int rows, int top_k, size_t gathered);
  Status Reserve(size_t bytes);

  DeviceBuffer device_;
  DeviceBuffer scratch_;  // the row statistics' and TopK's partial results, one after the other
  std::byte* host_ = nullptr;  // pinned mirror of device_
  size_t capacity_ = 0;
};

}  // namespace specontext::cuda
