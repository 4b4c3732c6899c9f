// The adaptive memory model: how much GPU memory a batch's KV needs as a function of how many
// layers of each request keep their full KV on the GPU, and the decisions built on it
// (admission, per-request layer thresholds, which layers to demote, what spills to NVMe).
// Every decision carries a reason string for logs and metrics. docs/kv_store.md derives the
// formulas.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv_store/tier.h"

namespace specontext {

struct MemoryModelConfig {
  int num_layers = 0;         // L
  int kv_heads = 0;           // H
  int head_dim = 0;           // D
  int bytes_per_element = 2;  // of stored K and V
  double weight_bytes = 0;    // M_O
  double head_bytes = 0;      // M_D, the retrieval head's weights
  double gpu_bytes = 0;       // Mem_GPU
  double host_bytes = 0;      // pinned host memory for offloaded KV
  double nvme_bytes = 0;      // NVMe space for offloaded KV
  // B; 0 runs dense: no retrieval head, and an offloaded layer is attended in place from host
  // memory (mapped pinned memory on CUDA), so it keeps nothing on the GPU.
  int64_t sparse_budget = 0;
  int repeat_kv_buffers = 0;  // alpha: 0 for a GQA-native attention kernel
  double activation_factor = 1.3;
};

using RequestKey = uint64_t;

struct RequestLoad {
  RequestKey key = 0;
  int64_t length = 0;      // S: positions held now
  int64_t max_length = 0;  // prompt + max new tokens: the most it can grow to
  int gpu_layers = 0;      // layers [0, gpu_layers) on the GPU now, the rest offloaded
  bool running = true;
  // Positions each offloaded layer keeps on the GPU (elastic slots) at `length` and at
  // `max_length`, when the caller knows them (the serving path's per-request budgets); unset:
  // min(S, B) of the config.
  std::optional<int64_t> slots;
  std::optional<int64_t> max_slots;
};

struct AdmissionDecision {
  bool admit = false;
  double gpu_bytes_needed = 0;
  double gpu_bytes_available = 0;
  std::string reason;
};

struct ThresholdPlan {
  // thresholds[i] (S_i): the longest length at which L - i layers stay on the GPU, for a batch
  // of R equal requests; past it one more layer (the last on the GPU) is offloaded. Dense runs
  // have no limit with every layer offloaded: S_L is then INT64_MAX.
  std::vector<int64_t> thresholds;
  std::string reason;
};

struct LayerMove {
  RequestKey key = 0;
  int layer = 0;
  Tier from = Tier::kGpu;
  Tier to = Tier::kHost;
  std::string reason;
};

struct PlacementPlan {
  bool feasible = false;
  std::vector<int> gpu_layers;  // target per request, in input order
  std::vector<LayerMove> moves;
  std::string reason;
};

struct HostLayer {
  RequestKey key = 0;
  int layer = 0;
  double bytes = 0;
  bool running = true;
  int64_t last_used_step = 0;
};

struct SpillPlan {
  bool enough = false;
  double bytes = 0;
  std::vector<LayerMove> moves;
  std::string reason;
};

class MemoryManager {
 public:
  static Result<MemoryManager> Create(const MemoryModelConfig& config);

  const MemoryModelConfig& config() const { return config_; }
  bool sparse() const { return config_.sparse_budget > 0; }
  // 1.3 (M_O + M_D): weights plus activations.
  double FixedBytes() const;
  // Mem_GPU minus the fixed part: what KV may use.
  double KvBudgetBytes() const { return config_.gpu_bytes - FixedBytes(); }
  // 2 (K and V) x bytes per element x H x D: one position of one layer.
  double UnitBytes() const;
  // GPU bytes of one request of `length` positions with `gpu_layers` layers on the GPU:
  // unit x [(gpu_layers + 1 + alpha) S + (L - gpu_layers) min(S, B)], or `slots` in place of
  // min(S, B) when given.
  double GpuBytes(int64_t length, int gpu_layers, std::optional<int64_t> slots = {}) const;

  // Most GPU layers for R equal requests of `length`; -1 when not even zero fit (sparse only:
  // dense requests can always run with every layer offloaded).
  int MaxGpuLayers(int64_t length, int batch) const;
  // Longest length with every layer on the GPU for R equal requests.
  int64_t MaxLengthAllGpu(int batch) const;
  ThresholdPlan Thresholds(int batch) const;

  // Admits when every request, at its maximum length and with all layers offloaded, still fits
  // the GPU together, and the offloaded KV fits host plus NVMe (dense: plus the GPU's KV room,
  // since nothing of an offloaded layer stays there).
  AdmissionDecision Admit(const std::vector<RequestLoad>& running,
                          const RequestLoad& candidate) const;
  // Chooses GPU layers per request to maximise the GPU layers of the whole batch (each one
  // saves the same elastic-load traffic; the shortest requests' layers are the cheapest), and
  // the moves from the current placement: demotions take the last GPU layer first.
  PlacementPlan Place(const std::vector<RequestLoad>& requests) const;
  // Host layers to push to NVMe to free `bytes_needed`: idle requests first, then the least
  // recently used, then the deepest layer.
  SpillPlan PlanSpill(std::vector<HostLayer> host_layers, double bytes_needed) const;

 private:
  explicit MemoryManager(const MemoryModelConfig& config) : config_(config) {}
  int64_t Budget(int64_t length) const;
  double HeadTerm() const;
  MemoryModelConfig config_;
};

}  // namespace specontext
