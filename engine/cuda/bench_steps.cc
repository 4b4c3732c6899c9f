#include "engine/cuda/bench_steps.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/random_fill_kernels.h"

namespace specontext::cuda {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

Result<size_t> FreeMemory(size_t* total) {
  size_t free = 0, all = 0;
  SPC_CUDA(cudaMemGetInfo(&free, &all));
  if (total != nullptr) *total = all;
  return free;
}

Result<double> MedianDeviceMs(cudaStream_t stream, const std::function<Status()>& launch) {
  cudaEvent_t start, stop;
  SPC_CUDA(cudaEventCreate(&start));
  SPC_CUDA(cudaEventCreate(&stop));
  std::vector<double> ms;
  Status status;
  for (int i = 0; i < 23 && status.ok(); ++i) {
    status = [&]() -> Status {
      SPC_CUDA(cudaEventRecord(start, stream));
      SPC_RETURN_IF_ERROR(launch());
      SPC_CUDA(cudaEventRecord(stop, stream));
      SPC_CUDA(cudaEventSynchronize(stop));
      float elapsed = 0;
      SPC_CUDA(cudaEventElapsedTime(&elapsed, start, stop));
      if (i >= 3) ms.push_back(elapsed);
      return Status::Ok();
    }();
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  SPC_RETURN_IF_ERROR(status);
  return Median(ms);
}

Result<double> CopyBandwidth(cudaStream_t stream) {
  constexpr size_t kBytes = size_t(1) << 30;
  SPC_ASSIGN_OR_RETURN(DeviceBuffer src, DeviceBuffer::Allocate(kBytes));
  SPC_ASSIGN_OR_RETURN(DeviceBuffer dst, DeviceBuffer::Allocate(kBytes));
  SPC_RETURN_IF_ERROR(FillRandomDevice(DType::kBF16, src.data(), kBytes / 2, 1, 1.0f, stream));
  SPC_ASSIGN_OR_RETURN(
      const double ms, MedianDeviceMs(stream, [&]() -> Status {
        SPC_CUDA(cudaMemcpyAsync(dst.data(), src.data(), kBytes, cudaMemcpyDeviceToDevice, stream));
        return Status::Ok();
      }));
  return 2.0 * kBytes / (ms * 1e-3);
}

Result<double> HostToDeviceBandwidth(cudaStream_t stream) {
  constexpr size_t kBytes = size_t(256) << 20;
  SPC_ASSIGN_OR_RETURN(PinnedBuffer src, PinnedBuffer::Allocate(kBytes));
  SPC_ASSIGN_OR_RETURN(DeviceBuffer dst, DeviceBuffer::Allocate(kBytes));
  SPC_ASSIGN_OR_RETURN(
      const double ms, MedianDeviceMs(stream, [&]() -> Status {
        SPC_CUDA(cudaMemcpyAsync(dst.data(), src.data(), kBytes, cudaMemcpyHostToDevice, stream));
        return Status::Ok();
      }));
  return kBytes / (ms * 1e-3);
}

Result<KvPool> MakeKvPool(const KvLayout& layout, int vocab, int seqs, int positions,
                          int tokens_per_seq, int start, int host_from_layer, cudaStream_t stream) {
  const size_t blocks = layout.BlocksFor(positions);
  const int layers = layout.num_layers;
  const int host_from = host_from_layer < 0 ? layers : std::min(host_from_layer, layers);
  const size_t layer_bytes = blocks * layout.BlockBytes();
  KvPool pool;
  SPC_ASSIGN_OR_RETURN(pool.storage, DeviceBuffer::Allocate(layer_bytes * host_from * seqs));
  SPC_ASSIGN_OR_RETURN(pool.host, PinnedBuffer::Allocate(layer_bytes * (layers - host_from) * seqs,
                                                         cudaHostAllocMapped));
  for (void* base : {pool.storage.data(), pool.host.data()}) {
    const size_t bytes = base == pool.storage.data() ? pool.storage.bytes() : pool.host.bytes();
    if (base == nullptr) continue;
    SPC_RETURN_IF_ERROR(FillRandomDevice(layout.dtype, base, bytes / 2, 42, 1.0f, stream));
  }
  SPC_CUDA(cudaStreamSynchronize(stream));
  static std::atomic<uint64_t> pools{0};
  const uint64_t pool_version = ++pools;
  for (int s = 0; s < seqs; ++s) {
    SequenceStep step;
    step.tokens.assign(tokens_per_seq, 0);
    for (int i = 0; i < tokens_per_seq; ++i)
      step.tokens[i] = static_cast<int32_t>((int64_t{s} * 7919 + int64_t{i} * 104729) % vocab);
    step.start_position = start;
    step.seq_id = static_cast<uint64_t>(s) + 1;
    // The pool's blocks never move; a new pool's sequences reuse the ids with other blocks.
    step.table_version = pool_version;
    for (int l = 0; l < layers; ++l) {
      std::byte* base =
          l < host_from ? pool.storage.as<std::byte>() + (size_t(s) * host_from + l) * layer_bytes
                        : pool.host.as<std::byte>() +
                              (size_t(s) * (layers - host_from) + l - host_from) * layer_bytes;
      std::vector<std::byte*> table(blocks);
      for (size_t b = 0; b < blocks; ++b) table[b] = base + b * layout.BlockBytes();
      step.block_table.push_back(std::move(table));
    }
    pool.batch.sequences.push_back(std::move(step));
  }
  return pool;
}

Result<std::vector<double>> TimeSteps(ModelRunner& runner, const BatchStep& batch, int warmup,
                                      int steps, const std::function<void(int)>& before_step) {
  StepOutput out;
  std::vector<double> ms;
  for (int i = 0; i < warmup + steps; ++i) {
    if (before_step) before_step(i);
    const auto t0 = std::chrono::steady_clock::now();
    SPC_RETURN_IF_ERROR(runner.Step(batch, &out));
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return ms;
}

void SetSparsePositions(int budget, int kv_heads, SequenceStep* step) {
  const int32_t self = step->start_position;
  const int32_t sinks = std::min(4, budget - 1);
  const int32_t spread = budget - 1 - sinks;
  step->sparse_positions.assign(kv_heads, {});
  for (int h = 0; h < kv_heads; ++h) {
    std::vector<int32_t>& list = step->sparse_positions[h];
    for (int32_t p = 0; p < sinks; ++p) list.push_back(p);
    const double gap = double(self - sinks) / std::max(spread, 1);
    for (int32_t i = 0; i < spread; ++i) {
      list.push_back(sinks + static_cast<int32_t>((i + double(h) / kv_heads) * gap));
    }
    list.push_back(self);
  }
}

}  // namespace specontext::cuda
