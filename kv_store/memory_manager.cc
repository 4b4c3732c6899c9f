#include "kv_store/memory_manager.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

namespace specontext {
namespace {

std::string Gb(double bytes) { return fmt::format("{:.3f} GB", bytes / 1e9); }

}  // namespace

Result<MemoryManager> MemoryManager::Create(const MemoryModelConfig& config) {
  if (config.num_layers <= 0 || config.kv_heads <= 0 || config.head_dim <= 0 ||
      config.bytes_per_element <= 0) {
    return InvalidArgument(
        "memory model needs positive layers, KV heads, head dim and element size");
  }
  if (config.sparse_budget < 0 || config.repeat_kv_buffers < 0 || config.weight_bytes < 0 ||
      config.head_bytes < 0 || config.host_bytes < 0 || config.nvme_bytes < 0 ||
      config.activation_factor < 1.0) {
    return InvalidArgument(
        "memory model: negative size, budget or alpha, or activation factor < 1");
  }
  MemoryManager manager(config);
  // Zero KV room is a store without a GPU tier: every layer offloaded, dense runs only.
  if (manager.KvBudgetBytes() < 0) {
    return InvalidArgument("memory model: weights and activations (" + Gb(manager.FixedBytes()) +
                           ") exceed the " + Gb(config.gpu_bytes) + " of GPU memory");
  }
  return manager;
}

double MemoryManager::FixedBytes() const {
  return config_.activation_factor * (config_.weight_bytes + (sparse() ? config_.head_bytes : 0));
}

double MemoryManager::UnitBytes() const {
  return 2.0 * config_.bytes_per_element * config_.kv_heads * config_.head_dim;
}

// Positions an offloaded layer keeps on the GPU: its elastic slot buffer, never more than S.
int64_t MemoryManager::Budget(int64_t length) const {
  return std::min(length, config_.sparse_budget);
}

// The retrieval head's own K cache (+1, sparse only) and the repeat-KV buffer (alpha).
double MemoryManager::HeadTerm() const {
  return (sparse() ? 1.0 : 0.0) + config_.repeat_kv_buffers;
}

double MemoryManager::GpuBytes(int64_t length, int gpu_layers, std::optional<int64_t> slots) const {
  const double s = static_cast<double>(length);
  const int offloaded = config_.num_layers - gpu_layers;
  return UnitBytes() * ((gpu_layers + HeadTerm()) * s +
                        offloaded * static_cast<double>(slots.value_or(Budget(length))));
}

int MemoryManager::MaxGpuLayers(int64_t length, int batch) const {
  for (int k = config_.num_layers; k >= 0; --k) {
    if (batch * GpuBytes(length, k) <= KvBudgetBytes()) return k;
  }
  return -1;
}

int64_t MemoryManager::MaxLengthAllGpu(int batch) const {
  const double per_position = batch * UnitBytes() * (config_.num_layers + HeadTerm());
  return static_cast<int64_t>(std::floor(KvBudgetBytes() / per_position));
}

ThresholdPlan MemoryManager::Thresholds(int batch) const {
  ThresholdPlan plan;
  const int L = config_.num_layers;
  const int64_t s0 = MaxLengthAllGpu(batch);
  plan.thresholds.push_back(s0);
  // Per request, in position-layers: (L - i + h) S + i min(S, B) <= budget / (R unit), with
  // h = 1 + alpha sparse (head K cache) and alpha dense.
  const double per_request = KvBudgetBytes() / (batch * UnitBytes());
  const double b = static_cast<double>(config_.sparse_budget);
  for (int i = 1; i <= L; ++i) {
    if (L - i + HeadTerm() == 0) {
      // Dense, every layer offloaded: nothing of the request stays on the GPU.
      plan.thresholds.push_back(std::numeric_limits<int64_t>::max());
      continue;
    }
    auto s = static_cast<int64_t>(std::floor((per_request - i * b) / (L - i + HeadTerm())));
    // Below B an offloaded layer keeps all S positions in its slots and saves nothing.
    if (s < config_.sparse_budget) s = s0;
    // Guard the floor against rounding: the exact check decides.
    while (s > s0 && MaxGpuLayers(s, batch) < L - i) --s;
    while (MaxGpuLayers(s + 1, batch) >= L - i) ++s;
    plan.thresholds.push_back(s);
  }
  plan.reason = fmt::format(
      "R = {}, B = {}: {:.2f} position-layers per request; all {} layers on the GPU up to "
      "S_0 = {}, all offloaded up to S_{} = {}",
      batch, config_.sparse_budget, per_request, L, s0, L,
      sparse() ? std::to_string(plan.thresholds.back()) : std::string("any length"));
  return plan;
}

AdmissionDecision MemoryManager::Admit(const std::vector<RequestLoad>& running,
                                       const RequestLoad& candidate) const {
  AdmissionDecision d;
  d.gpu_bytes_available = KvBudgetBytes();
  if (candidate.max_length <= 0) {
    d.reason = fmt::format("request {} has no positions to hold", candidate.key);
    return d;
  }
  // The floor of every request: all layers offloaded.
  double offloaded = 0;
  auto add = [&](const RequestLoad& r) {
    d.gpu_bytes_needed += GpuBytes(r.max_length, 0, r.max_slots);
    offloaded += UnitBytes() * config_.num_layers * r.max_length;
  };
  for (const RequestLoad& r : running) add(r);
  add(candidate);
  const double offload_room = config_.host_bytes + config_.nvme_bytes +
                              (sparse() ? 0.0 : d.gpu_bytes_available - d.gpu_bytes_needed);
  const size_t batch = running.size() + 1;
  if (d.gpu_bytes_needed > d.gpu_bytes_available) {
    d.reason = fmt::format(
        "request {} waits: {} requests at their maximum lengths need {} of GPU KV{} but {} is "
        "left after weights",
        candidate.key, batch, Gb(d.gpu_bytes_needed), sparse() ? " with every layer offloaded" : "",
        Gb(d.gpu_bytes_available));
  } else if (offloaded > offload_room) {
    d.reason = fmt::format(
        "request {} waits: offloaded KV of {} requests would be {}, host + NVMe hold {}",
        candidate.key, batch, Gb(offloaded), Gb(offload_room));
  } else {
    d.admit = true;
    d.reason = fmt::format("request {} admitted: batch of {} needs at most {} of {} GPU KV",
                           candidate.key, batch, Gb(d.gpu_bytes_needed), Gb(d.gpu_bytes_available));
  }
  return d;
}

PlacementPlan MemoryManager::Place(const std::vector<RequestLoad>& requests) const {
  PlacementPlan plan;
  const int L = config_.num_layers;
  plan.gpu_layers.assign(requests.size(), 0);
  double left = KvBudgetBytes();
  for (const RequestLoad& r : requests) left -= GpuBytes(r.length, 0, r.slots);
  if (left < 0) {
    plan.reason =
        fmt::format("over budget by {} even with every layer offloaded: preempt", Gb(-left));
    return plan;
  }
  plan.feasible = true;
  // One layer at a time to the request whose next GPU layer is cheapest (it costs S less
  // what the layer keeps offloaded, min(S, B) or its slots; dense, B = 0: S); ties go to the
  // request with fewest GPU layers, so equal requests end up within one layer of each other,
  // as in the paper's uniform split.
  std::vector<double> marginal(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const int64_t s = requests[i].length;
    marginal[i] = UnitBytes() * static_cast<double>(s - requests[i].slots.value_or(Budget(s)));
  }
  for (;;) {
    std::optional<size_t> best;
    for (size_t i = 0; i < requests.size(); ++i) {
      if (plan.gpu_layers[i] == L || marginal[i] > left) continue;
      if (!best || marginal[i] < marginal[*best] ||
          (marginal[i] == marginal[*best] && plan.gpu_layers[i] < plan.gpu_layers[*best])) {
        best = i;
      }
    }
    if (!best) break;
    ++plan.gpu_layers[*best];
    left -= marginal[*best];
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    const RequestLoad& r = requests[i];
    const int target = plan.gpu_layers[i];
    const std::string why = fmt::format("request {} at S = {} keeps {} of {} layers on the GPU",
                                        r.key, r.length, target, L);
    for (int layer = r.gpu_layers - 1; layer >= target; --layer) {
      plan.moves.push_back(LayerMove{r.key, layer, Tier::kGpu, Tier::kHost, why});
    }
    for (int layer = std::max(r.gpu_layers, 0); layer < target; ++layer) {
      plan.moves.push_back(LayerMove{r.key, layer, Tier::kHost, Tier::kGpu, why});
    }
  }
  plan.reason = fmt::format("{} requests fit with {} of GPU KV to spare; {} layer moves",
                            requests.size(), Gb(left), plan.moves.size());
  return plan;
}

SpillPlan MemoryManager::PlanSpill(std::vector<HostLayer> host_layers, double bytes_needed) const {
  SpillPlan plan;
  std::stable_sort(host_layers.begin(), host_layers.end(),
                   [](const HostLayer& a, const HostLayer& b) {
                     if (a.running != b.running) return !a.running;
                     if (a.last_used_step != b.last_used_step) {
                       return a.last_used_step < b.last_used_step;
                     }
                     return a.layer > b.layer;
                   });
  for (const HostLayer& h : host_layers) {
    if (plan.bytes >= bytes_needed) break;
    plan.bytes += h.bytes;
    plan.moves.push_back(
        LayerMove{h.key, h.layer, Tier::kHost, Tier::kNvme,
                  fmt::format("host full: request {} layer {} ({}, last used at step {})", h.key,
                              h.layer, h.running ? "running" : "idle", h.last_used_step)});
  }
  plan.enough = plan.bytes >= bytes_needed;
  plan.reason =
      fmt::format("{} of {} needed freed by {} host layers moving to NVMe{}", Gb(plan.bytes),
                  Gb(bytes_needed), plan.moves.size(), plan.enough ? "" : ": not enough, preempt");
  return plan;
}

}  // namespace specontext
