// Decode with part of the KV offloaded to pinned host memory, as the memory manager places it:
// layers [0, gpu_layers) on the GPU, the rest in host memory. Times the dense step (offloaded
// layers read in place over the host link), the SpeContext step reading them in place, and the
// SpeContext step through elastic slots while a fraction of each selection changes every step,
// with the bytes copied and the roofline over HBM and the host link.
#pragma once

#include <cuda_runtime_api.h>

#include "common/status.h"
#include "engine/cuda/cuda_model_runner.h"

namespace specontext::cuda {

struct OffloadOptions {
  int gpu_layers = 0;
  int budget = 0;         // B
  int dense_layers = 0;   // sparse steps attend densely in layers [0, dense_layers)
  double reselect = 0.1;  // fraction of each list replaced by new positions every step
  int steps = 20;
  double step_weights = 0;      // bytes of weights a decode step reads
  double copy_bytes_per_s = 0;  // device-to-device, read + write
  double host_to_device_bytes_per_s = 0;
};

struct OffloadPoint {
  int gpu_layers = 0;
  double host_kv_bytes = 0;       // KV held in host memory
  double dense_ms = 0;            // every position; offloaded layers read over the host link
  double sparse_in_place_ms = 0;  // B positions; offloaded layers read over the host link
  double elastic_ms = 0;          // B positions; offloaded layers through slots, `reselect` new
  double elastic_static_ms = 0;   // the same with fixed lists: no copies after the first step
  double loaded_fraction = 0;     // of the selected positions, copied per step
  double copied_bytes_per_step = 0;
  double reload_bytes_per_step = 0;  // copying every offloaded layer's whole selection instead
  double dense_roofline_ms = 0;      // max(HBM time, host-link time), overlapped
  double elastic_roofline_ms = 0;
};

// Positions one sparse step of one request reads, summed over layers: B in each sparse layer,
// the whole context in the dense ones.
double SparseLayerPositions(int layers, int budget, int context, int dense_layers);

Result<OffloadPoint> BenchOffloaded(CudaModelRunner& runner, int batch, int context,
                                    const OffloadOptions& options);

}  // namespace specontext::cuda
