#include "engine/specontext/selector.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "engine/cpu/matmul.h"

namespace specontext {
namespace {

// The group-max softmax weights of one KV head over all S positions, from the raw q·k products
// of its `group` query heads ([group][count]); false when a score is not finite (std::max would
// silently drop a NaN).
bool GroupMaxWeights(std::vector<float>& scores, int group, int64_t count, int head_dim,
                     std::vector<float>& weights) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::fill(weights.begin(), weights.end(), 0.0f);
  for (int g = 0; g < group; ++g) {
    float* s = scores.data() + g * count;
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < count; ++j) {
      s[j] *= scale;
      max_score = std::max(max_score, s[j]);
    }
    double sum = 0.0;
    for (int64_t j = 0; j < count; ++j) {
      s[j] = std::exp(s[j] - max_score);
      sum += s[j];
    }
    if (!std::isfinite(sum)) return false;
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < count; ++j) weights[j] = std::max(weights[j], s[j] * inv);
  }
  return true;
}

// Raises each weight to `decay` times its remembered ranking weight, then remembers the result.
void ApplyMemory(double decay, std::vector<float>& remembered, std::vector<float>& ranking) {
  if (remembered.size() > ranking.size()) remembered.resize(ranking.size());
  const float d = static_cast<float>(decay);
  for (size_t j = 0; j < remembered.size(); ++j) {
    ranking[j] = std::max(ranking[j], d * remembered[j]);
  }
  remembered = ranking;
}

// Fills `chosen` (ascending) with the top of `ranking` and returns the share of `weights` the
// choice carries.
double ChooseTopB(const std::vector<float>& ranking, const std::vector<float>& weights,
                  const SelectionOptions& options, std::vector<int32_t>& chosen) {
  const int64_t count = static_cast<int64_t>(ranking.size());
  const int64_t budget = std::min(options.budget, count);
  std::vector<char> forced(static_cast<size_t>(count), 0);
  int64_t forced_count = 0;
  const auto force = [&](int64_t j) {
    if (forced_count < budget && !forced[j]) {
      forced[j] = 1;
      ++forced_count;
    }
  };
  for (int64_t j = 0; j < std::min(options.sink_tokens, count); ++j) force(j);
  for (int64_t j = count - 1; j >= std::max<int64_t>(0, count - options.recent_window); --j) {
    force(j);
  }
  std::vector<int32_t> candidates;
  candidates.reserve(static_cast<size_t>(count - forced_count));
  double total = 0.0;
  for (int64_t j = 0; j < count; ++j) {
    total += weights[j];
    if (!forced[j]) candidates.push_back(static_cast<int32_t>(j));
  }
  const int64_t free_slots = budget - forced_count;
  const auto before = [&](int32_t a, int32_t b) {
    return ranking[a] > ranking[b] || (ranking[a] == ranking[b] && a < b);
  };
  std::nth_element(candidates.begin(), candidates.begin() + free_slots, candidates.end(), before);
  chosen.clear();
  chosen.reserve(static_cast<size_t>(budget));
  chosen.insert(chosen.end(), candidates.begin(), candidates.begin() + free_slots);
  for (int64_t j = 0; j < count; ++j) {
    if (forced[j]) chosen.push_back(static_cast<int32_t>(j));
  }
  std::sort(chosen.begin(), chosen.end());
  double mass = 0.0;
  for (int32_t j : chosen) mass += weights[j];
  return total > 0.0 ? mass / total : 0.0;
}

}  // namespace

Status SelectPositions(std::span<const float> q, int num_heads, const HeadKvCache& cache,
                       const SelectionOptions& options, cpu::ThreadPool& pool, Selection* out,
                       SelectionMemory* memory) {
  const int kv_heads = cache.num_kv_heads();
  const int head_dim = cache.head_dim();
  const int64_t count = cache.size();
  if (num_heads <= 0 || num_heads % kv_heads != 0) {
    return InvalidArgument("selector: " + std::to_string(num_heads) +
                           " query heads is not a multiple of " + std::to_string(kv_heads) +
                           " KV heads");
  }
  if (q.size() != static_cast<size_t>(num_heads) * head_dim) {
    return InvalidArgument("selector: q has " + std::to_string(q.size()) + " values, expected " +
                           std::to_string(num_heads) + " × " + std::to_string(head_dim));
  }
  if (options.budget <= 0 || options.sink_tokens < 0 || options.recent_window < 0) {
    return InvalidArgument("selector: budget must be > 0, sinks and window >= 0");
  }
  if (!(options.memory_decay >= 0.0 && options.memory_decay <= 1.0)) {
    return InvalidArgument("selector: memory_decay must be in [0, 1]");
  }
  if (count == 0) return FailedPrecondition("selector: the K cache is empty");
  if (count > std::numeric_limits<int32_t>::max()) {
    return OutOfRange("selector: more positions than int32 can index");
  }
  const int group = num_heads / kv_heads;
  out->positions.assign(static_cast<size_t>(kv_heads), {});
  // Heads one after another: the q·Kᵀ product spreads each head's positions over the pool.
  std::vector<float> scores(static_cast<size_t>(group * count));
  std::vector<float> weights(static_cast<size_t>(count));
  std::vector<float> ranking;
  const bool remember = memory != nullptr && options.memory_decay > 0.0;
  if (remember) memory->weights.resize(static_cast<size_t>(kv_heads));
  double sum = 0.0;
  for (int h = 0; h < kv_heads; ++h) {
    cpu::MatmulNT(pool, q.data() + static_cast<size_t>(h) * group * head_dim, cache.Head(h),
                  scores.data(), group, static_cast<int>(count), head_dim);
    if (!GroupMaxWeights(scores, group, count, head_dim, weights)) {
      return InvalidArgument("selector: attention scores are not finite");
    }
    if (!remember) {
      sum += ChooseTopB(weights, weights, options, out->positions[h]);
      continue;
    }
    ranking = weights;
    ApplyMemory(options.memory_decay, memory->weights[h], ranking);
    sum += ChooseTopB(ranking, weights, options, out->positions[h]);
  }
  out->selected_mass = sum / kv_heads;
  return Status::Ok();
}

}  // namespace specontext
