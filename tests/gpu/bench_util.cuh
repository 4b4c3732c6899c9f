// Helpers of the GPU micro-benchmarks: random bf16 fills, a checked CUDA call, the median
// time of a launch over repeats (CUDA events), the GPU check, and allocation that exits on
// failure.
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "engine/cuda/device_buffer.h"

namespace specontext::cuda {

static __global__ void FillRandom(__nv_bfloat16* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    p[i] = __float2bfloat16((h & 0xffff) / 32768.0f - 1.0f + 1e-3f);
  }
}

#define BENCH_CHECK(call)                                                    \
  do {                                                                       \
    cudaError_t e = (call);                                                  \
    if (e != cudaSuccess) {                                                  \
      std::fprintf(stderr, "%s failed: %s\n", #call, cudaGetErrorString(e)); \
      std::exit(1);                                                          \
    }                                                                        \
  } while (0)

template <typename Fn>
float MedianMs(Fn&& fn, int repeats) {
  cudaEvent_t start, stop;
  BENCH_CHECK(cudaEventCreate(&start));
  BENCH_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i) fn(i);
  std::vector<float> ms(repeats);
  for (int i = 0; i < repeats; ++i) {
    BENCH_CHECK(cudaEventRecord(start));
    fn(i);
    BENCH_CHECK(cudaEventRecord(stop));
    BENCH_CHECK(cudaEventSynchronize(stop));
    BENCH_CHECK(cudaEventElapsedTime(&ms[i], start, stop));
  }
  BENCH_CHECK(cudaGetLastError());
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[repeats / 2];
}

// False, with a note that `what` is skipped, on a machine without a GPU.
inline bool GpuPresent(const char* what) {
  int count = 0;
  if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0) return true;
  std::printf("no GPU: %s skipped\n", what);
  return false;
}

inline DeviceBuffer Alloc(size_t bytes) {
  auto b = DeviceBuffer::Allocate(bytes);
  if (!b.ok()) {
    std::fprintf(stderr, "%s\n", b.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(b).value();
}

}  // namespace specontext::cuda
