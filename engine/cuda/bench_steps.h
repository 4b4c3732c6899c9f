// What the GPU benchmarks share: timing helpers, bandwidth probes, and KV blocks made of random
// values (as valid as what a prefill would leave, at a fraction of the time), on the device or,
// for offloaded layers, in mapped pinned host memory.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <vector>

#include "common/status.h"
#include "engine/batch.h"
#include "engine/cuda/device_buffer.h"
#include "engine/model_runner.h"
#include "kv_store/kv_layout.h"

namespace specontext::cuda {

double Median(std::vector<double> v);
Result<size_t> FreeMemory(size_t* total = nullptr);
// Device time of `launch` on `stream`, median of 20 runs after 3 warm-ups.
Result<double> MedianDeviceMs(cudaStream_t stream, const std::function<Status()>& launch);
// A large device-to-device copy: bytes read plus written per second.
Result<double> CopyBandwidth(cudaStream_t stream);
// A large pinned host-to-device copy: bytes per second over the host link.
Result<double> HostToDeviceBandwidth(cudaStream_t stream);

struct KvPool {
  DeviceBuffer storage;
  PinnedBuffer host;  // layers from host_from_layer on
  BatchStep batch;    // one sequence per request, seq_id s + 1, block tables filled
};

// `seqs` sequences of `positions` each, stepping `tokens_per_seq` tokens from `start`; layers
// from `host_from_layer` on (-1: none) live in mapped pinned host memory.
Result<KvPool> MakeKvPool(const KvLayout& layout, int vocab, int seqs, int positions,
                          int tokens_per_seq, int start, int host_from_layer, cudaStream_t stream);

// Host-visible wall time of each of `steps` steps after `warmup` untimed ones. `before_step`
// (untimed) sees each step's index first and may change the batch.
Result<std::vector<double>> TimeSteps(ModelRunner& runner, const BatchStep& batch, int warmup,
                                      int steps,
                                      const std::function<void(int)>& before_step = nullptr);

// B positions per KV head for a token at position context - 1: the first four (sinks), the
// token itself, and the rest spread evenly between, shifted per head so heads differ. Which
// positions does not change the step's cost, only how many.
void SetSparsePositions(int budget, int kv_heads, SequenceStep* step);

}  // namespace specontext::cuda
