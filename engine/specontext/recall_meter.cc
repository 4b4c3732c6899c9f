#include "engine/specontext/recall_meter.h"

#include <algorithm>
#include <cmath>

namespace specontext {
namespace {

// The lower edge of the bin where the cumulative count first reaches `fraction` of all samples.
double Percentile(const std::array<int64_t, kRecallBins>& histogram, int64_t samples,
                  double fraction) {
  const auto rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(fraction * samples)));
  int64_t seen = 0;
  for (int bin = 0; bin < kRecallBins; ++bin) {
    seen += histogram[bin];
    if (seen >= rank) return static_cast<double>(bin) / kRecallBins;
  }
  return 1.0;
}

}  // namespace

void RecallMeter::Observe(const SparseAttentionSample& sample) {
  const int64_t stride = static_cast<int64_t>(sample.position) + 1;
  const bool shaped = sample.layer >= 0 && sample.position >= 0 && sample.num_heads > 0 &&
                      sample.num_kv_heads > 0 && sample.num_heads % sample.num_kv_heads == 0 &&
                      sample.attended.size() == static_cast<size_t>(sample.num_kv_heads) &&
                      (sample.dense_layer || sample.dense_weights.size() ==
                                                 static_cast<size_t>(sample.num_heads * stride));
  if (!shaped) {
    std::lock_guard<std::mutex> lock(mutex_);
    malformed_++;
    return;
  }
  const int group = sample.num_heads / sample.num_kv_heads;
  std::vector<double> mass(sample.num_heads, sample.dense_layer ? 1.0 : 0.0);
  if (!sample.dense_layer) {
    for (int head = 0; head < sample.num_heads; ++head) {
      const float* weights = sample.dense_weights.data() + head * stride;
      for (int32_t position : sample.attended[head / group]) {
        if (position >= 0 && position < stride) mass[head] += weights[position];
      }
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (int head = 0; head < sample.num_heads; ++head) Add(sample.layer, head, mass[head]);
}

void RecallMeter::Add(int layer, int head, double mass) {
  // Float sums of a full selection can land a hair above 1.
  mass = std::clamp(mass, 0.0, 1.0);
  if (sum_.size() <= static_cast<size_t>(layer)) {
    sum_.resize(layer + 1);
    count_.resize(layer + 1);
  }
  if (sum_[layer].size() <= static_cast<size_t>(head)) {
    sum_[layer].resize(head + 1, 0.0);
    count_[layer].resize(head + 1, 0);
  }
  sum_[layer][head] += mass;
  count_[layer][head]++;
  histogram_[std::min(kRecallBins - 1, static_cast<int>(mass * kRecallBins))]++;
  samples_++;
  total_ += mass;
  min_ = std::min(min_, mass);
  max_ = std::max(max_, mass);
}

RecallSummary RecallMeter::Summarize() const {
  std::lock_guard<std::mutex> lock(mutex_);
  RecallSummary summary;
  summary.samples = samples_;
  summary.malformed = malformed_;
  if (samples_ == 0) return summary;
  summary.mean = total_ / samples_;
  summary.min = min_;
  summary.max = max_;
  const auto percentile = [&](double fraction) {
    return std::clamp(Percentile(histogram_, samples_, fraction), min_, max_);
  };
  summary.p1 = percentile(0.01);
  summary.p5 = percentile(0.05);
  summary.p50 = percentile(0.5);
  for (size_t layer = 0; layer < sum_.size(); ++layer) {
    double layer_sum = 0.0;
    int64_t layer_count = 0;
    std::vector<double>& heads = summary.per_layer_head.emplace_back();
    for (size_t head = 0; head < sum_[layer].size(); ++head) {
      const int64_t n = count_[layer][head];
      heads.push_back(n > 0 ? sum_[layer][head] / n : 0.0);
      layer_sum += sum_[layer][head];
      layer_count += n;
    }
    summary.per_layer.push_back(layer_count > 0 ? layer_sum / layer_count : 0.0);
  }
  return summary;
}

void RecallMeter::Reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  sum_.clear();
  count_.clear();
  histogram_.fill(0);
  samples_ = 0;
  malformed_ = 0;
  total_ = 0.0;
  min_ = 1.0;
  max_ = 0.0;
}

}  // namespace specontext
