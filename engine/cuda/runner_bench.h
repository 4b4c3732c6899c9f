// Throughput of the CUDA forward pass at given shapes: prefill tokens/s at a prompt length,
// decode step time at (batch, context), peak GPU memory, and each decode point's HBM roofline
// (the bytes a decode step must move over the device-to-device copy bandwidth measured here).
// With a sparse budget B it also times SpeContext decode at each point: the step attending to B
// positions per KV head, and the selection that picks them from a head K cache of S positions.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/cuda/offload_bench.h"
#include "engine/model/model.h"

namespace specontext::cuda {

struct BenchOptions {
  std::vector<int> prefill_lens;
  std::vector<int> batches;
  std::vector<int> contexts;
  int steps = 20;               // timed decode steps per point (prefill: a third, at least 2)
  int sparse_budget = 0;        // B > 0: also time sparse decode where S > B
  int sparse_dense_layers = 0;  // sparse steps still attend densely in layers [0, N)
  double memory_decay = 0.0;    // > 0: the timed selection ranks through a selection memory
  // Decode steps return a summary of each logits row with this many top tokens, as serving asks
  // (1: greedy; sampled rows ask for 1024); each point is also timed with whole rows.
  int summary_top_k = 1;
  // When set: the layers the memory manager keeps on the GPU for R requests of S positions
  // (-1: it admits no such batch); the rest of their KV lives in pinned host memory and each
  // point is timed offloaded (OffloadPoint) instead of GPU-resident.
  std::function<int(int batch, int context)> gpu_layers;
  double reselect = 0.1;  // offloaded SpeContext steps: share of each selection new per step
};

struct PrefillPoint {
  int tokens = 0;
  double ms = 0;
  double tokens_per_s = 0;
  double tflops = 0;  // linear layers, causal attention and the one LM-head row
};

struct DecodePoint {
  int batch = 0;
  int context = 0;
  bool ran = false;
  std::string skipped;  // why not, when !ran
  double step_ms = 0;   // median over the timed steps, host-visible (summaries on the host)
  double whole_rows_step_ms = 0;  // the same step returning whole fp32 logits rows
  double tokens_per_s = 0;
  double bytes = 0;  // weights once + K/V of batch × context positions
  double roofline_ms = 0;
  size_t gpu_memory_used = 0;  // device memory in use at this point (all processes)
  // SpeContext at this point (sparse_budget > 0 and context > budget).
  bool sparse_ran = false;
  double sparse_step_ms = 0;       // the step attending to B positions per KV head
  double select_ms = 0;            // GPU selection over the head's K cache (device time)
  double sparse_tokens_per_s = 0;  // batch over sparse step plus selection
  double sparse_speedup = 0;       // dense step over sparse step plus selection
  double sparse_bytes = 0;         // weights once + K/V of batch × B positions (S in dense layers)
  double sparse_roofline_ms = 0;   // sparse_bytes over the copy bandwidth
  bool offloaded = false;          // timed with BenchOptions::gpu_layers
  OffloadPoint offload;
};

struct BenchReport {
  std::string device;
  std::string kv_fill;                    // how the KV cache was made
  double copy_bytes_per_s = 0;            // device-to-device, bytes read + written
  double host_to_device_bytes_per_s = 0;  // pinned host memory to the device
  size_t weight_bytes = 0;
  size_t peak_gpu_memory = 0;
  std::vector<PrefillPoint> prefill;
  std::vector<DecodePoint> decode;
};

Result<BenchReport> RunBench(const Model& model, const BenchOptions& options);

}  // namespace specontext::cuda
