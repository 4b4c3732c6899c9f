// The paper's recall metric, measured on the target model: for each sparse decode row, layer
// and query head, the fraction of the dense softmax mass that falls on the positions the row
// attended to. Given to a backend as its AttentionProbe (e.g. CpuRunnerOptions::probe), it
// accumulates per layer, per head and overall; summaries can be read from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include "engine/attention_probe.h"

namespace specontext {

struct RecallSummary {
  int64_t samples = 0;    // (row, layer, query head) observations
  int64_t malformed = 0;  // samples skipped because their shapes did not agree
  double mean = 0.0;
  double min = 0.0;
  double max = 0.0;
  // From a histogram of kRecallBins bins over [0, 1], clamped to [min, max]: each is at most
  // one bin width below the exact percentile.
  double p1 = 0.0;
  double p5 = 0.0;
  double p50 = 0.0;
  std::vector<double> per_layer;                    // [layer]: mean over heads and rows
  std::vector<std::vector<double>> per_layer_head;  // [layer][query head]
};

inline constexpr int kRecallBins = 1000;

class RecallMeter final : public AttentionProbe {
 public:
  void Observe(const SparseAttentionSample& sample) override;
  RecallSummary Summarize() const;
  void Reset();

 private:
  void Add(int layer, int head, double mass);

  mutable std::mutex mutex_;
  std::vector<std::vector<double>> sum_;     // [layer][head]
  std::vector<std::vector<int64_t>> count_;  // [layer][head]
  std::array<int64_t, kRecallBins> histogram_{};
  int64_t samples_ = 0;
  int64_t malformed_ = 0;
  double total_ = 0.0;
  double min_ = 1.0;
  double max_ = 0.0;
};

}  // namespace specontext
