#include "engine/cuda/runner_bench.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>

#include "engine/cuda/bench_steps.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_model_runner.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/random_fill_kernels.h"
#include "engine/cuda/selection_kernels.h"

namespace specontext::cuda {
namespace {

// Device time of one selection for `batch` rows over a head K cache of `context` positions
// with the target's head shape, ranking through a selection memory when memory_decay > 0.
Result<double> TimeSelection(const ModelConfig& c, const KvLayout& layout, int batch, int context,
                             int budget, double memory_decay, cudaStream_t stream) {
  KvLayout head = layout;
  head.num_layers = 1;
  const int max_blocks = static_cast<int>(head.BlocksFor(context));
  SPC_ASSIGN_OR_RETURN(DeviceBuffer k,
                       DeviceBuffer::Allocate(size_t(batch) * max_blocks * head.BlockBytes()));
  SPC_RETURN_IF_ERROR(FillRandomDevice(head.dtype, k.data(), k.bytes() / 2, 7, 1.0f, stream));
  std::vector<void*> table(size_t(batch) * max_blocks);
  for (size_t b = 0; b < table.size(); ++b) table[b] = k.as<std::byte>() + b * head.BlockBytes();
  const int width = c.num_heads * c.head_dim;
  SPC_ASSIGN_OR_RETURN(DeviceBuffer tables, DeviceBuffer::Allocate(table.size() * sizeof(void*)));
  SPC_ASSIGN_OR_RETURN(DeviceBuffer q, DeviceBuffer::Allocate(size_t(batch) * width * 2));
  SPC_ASSIGN_OR_RETURN(DeviceBuffer lengths, DeviceBuffer::Allocate(batch * sizeof(int32_t)));
  const size_t slots = size_t(batch) * c.num_kv_heads;
  SPC_ASSIGN_OR_RETURN(DeviceBuffer out, DeviceBuffer::Allocate(slots * (budget + 2) * 4));
  const size_t workspace_bytes =
      SelectionWorkspaceBytes(batch, c.num_heads, c.num_kv_heads, context);
  SPC_ASSIGN_OR_RETURN(DeviceBuffer workspace, DeviceBuffer::Allocate(workspace_bytes));
  SPC_RETURN_IF_ERROR(
      FillRandomDevice(head.dtype, q.data(), size_t(batch) * width, 8, 1.0f, stream));
  const std::vector<int32_t> host_lengths(batch, context);
  SPC_CUDA(cudaMemcpy(tables.data(), table.data(), tables.bytes(), cudaMemcpyHostToDevice));
  SPC_CUDA(
      cudaMemcpy(lengths.data(), host_lengths.data(), lengths.bytes(), cudaMemcpyHostToDevice));
  // Every row remembers all its positions but the newest: the most the memory reads.
  const bool remember = memory_decay > 0.0;
  const size_t memory_floats = size_t(context) * c.num_kv_heads;
  DeviceBuffer memory, memory_rows, remembered;
  if (remember) {
    SPC_ASSIGN_OR_RETURN(memory, DeviceBuffer::Allocate(batch * memory_floats * sizeof(float)));
    SPC_CUDA(cudaMemset(memory.data(), 0, memory.bytes()));
    std::vector<float*> rows(batch);
    for (int b = 0; b < batch; ++b) rows[b] = memory.as<float>() + b * memory_floats;
    const std::vector<int32_t> held(batch, context - 1);
    SPC_ASSIGN_OR_RETURN(memory_rows, DeviceBuffer::Allocate(batch * sizeof(float*)));
    SPC_ASSIGN_OR_RETURN(remembered, DeviceBuffer::Allocate(batch * sizeof(int32_t)));
    SPC_CUDA(
        cudaMemcpy(memory_rows.data(), rows.data(), memory_rows.bytes(), cudaMemcpyHostToDevice));
    SPC_CUDA(
        cudaMemcpy(remembered.data(), held.data(), remembered.bytes(), cudaMemcpyHostToDevice));
  }
  auto* counts = out.as<int32_t>();
  const SelectionArgs args{.q = q.data(),
                           .q_stride = width,
                           .rows = batch,
                           .num_q_heads = c.num_heads,
                           .scale = 1.0f / std::sqrt(float(c.head_dim)),
                           .lengths = lengths.as<int32_t>(),
                           .max_length = context,
                           .budget = budget,
                           .sinks = std::min(4, budget),
                           .window = 0,
                           .indices = counts + 2 * slots,
                           .counts = counts,
                           .mass = reinterpret_cast<float*>(counts + slots),
                           .memory_decay = static_cast<float>(memory_decay),
                           .memory = memory_rows.as<float*>(),
                           .remembered = remembered.as<int32_t>()};
  const PagedKv view{.block_table = tables.as<void*>(),
                     .max_blocks = max_blocks,
                     .num_kv_heads = head.num_kv_heads,
                     .head_dim = head.head_dim,
                     .block_tokens = head.block_tokens,
                     .dtype = head.dtype};
  return MedianDeviceMs(stream, [&] {
    return SelectPositions(args, view, workspace.data(), workspace_bytes, stream);
  });
}

// The point with the memory manager's placement: part of the KV in pinned host memory.
Status TimeOffloadedPoint(CudaModelRunner& runner, const BenchOptions& options,
                          const BenchReport& report, double step_weights, DecodePoint* p) {
  const int gpu_layers = options.gpu_layers(p->batch, p->context);
  if (gpu_layers < 0) {
    p->skipped = "the memory manager admits no such batch";
    return Status::Ok();
  }
  SPC_ASSIGN_OR_RETURN(p->offload, BenchOffloaded(runner, p->batch, p->context,
                                                  {.gpu_layers = gpu_layers,
                                                   .budget = options.sparse_budget,
                                                   .dense_layers = options.sparse_dense_layers,
                                                   .reselect = options.reselect,
                                                   .steps = options.steps,
                                                   .step_weights = step_weights,
                                                   .copy_bytes_per_s = report.copy_bytes_per_s,
                                                   .host_to_device_bytes_per_s =
                                                       report.host_to_device_bytes_per_s}));
  p->ran = p->offloaded = true;
  p->step_ms = p->offload.dense_ms;
  p->roofline_ms = p->offload.dense_roofline_ms;
  p->tokens_per_s = p->batch / (p->step_ms * 1e-3);
  if (p->offload.elastic_ms > 0) {
    SPC_ASSIGN_OR_RETURN(
        p->select_ms, TimeSelection(runner.config(), runner.kv_layout(), p->batch, p->context,
                                    options.sparse_budget, options.memory_decay, runner.stream()));
    p->sparse_ran = true;
    p->sparse_step_ms = p->offload.elastic_ms;
    p->sparse_roofline_ms = p->offload.elastic_roofline_ms;
    p->sparse_tokens_per_s = p->batch / ((p->sparse_step_ms + p->select_ms) * 1e-3);
    p->sparse_speedup = p->step_ms / (p->sparse_step_ms + p->select_ms);
  }
  return Status::Ok();
}

double PrefillFlops(const ModelConfig& c, int n) {
  const double hidden = c.hidden_size, q = c.q_size(), kv = c.kv_size();
  const double linear = hidden * (q + 2 * kv) + q * hidden + 3.0 * hidden * c.intermediate_size;
  // Causal attention: q·k and p·v over n²/2 pairs, 2 flops per multiply-add each.
  const double attention = 2.0 * double(n) * n * q;
  return c.num_layers * (2.0 * n * linear + attention) + 2.0 * hidden * c.vocab_size;
}

}  // namespace

Result<BenchReport> RunBench(const Model& model, const BenchOptions& options) {
  const ModelConfig& c = model.config;
  int max_batch = 1, max_prefill = 1;
  for (int b : options.batches) max_batch = std::max(max_batch, b);
  for (int n : options.prefill_lens) max_prefill = std::max(max_prefill, n);
  CudaRunnerOptions runner_options{.max_tokens = std::max(max_prefill, max_batch),
                                   .max_sequences = max_batch,
                                   .max_logit_rows = std::max(64, max_batch),
                                   .max_graph_batch = std::min(64, max_batch)};
  SPC_ASSIGN_OR_RETURN(auto runner, CudaModelRunner::Create(model, runner_options));
  const KvLayout layout = runner->kv_layout();
  cudaStream_t stream = runner->stream();

  BenchReport report;
  cudaDeviceProp prop{};
  SPC_CUDA(cudaGetDeviceProperties(&prop, 0));
  report.device = prop.name;
  report.kv_fill = "random BF16 values written straight into the KV blocks (no prefill run)";
  report.weight_bytes = runner->weight_bytes();
  SPC_ASSIGN_OR_RETURN(report.copy_bytes_per_s, CopyBandwidth(stream));
  SPC_ASSIGN_OR_RETURN(report.host_to_device_bytes_per_s, HostToDeviceBandwidth(stream));
  size_t total = 0;
  auto sample = [&]() -> Result<size_t> {
    SPC_ASSIGN_OR_RETURN(size_t free, FreeMemory(&total));
    report.peak_gpu_memory = std::max(report.peak_gpu_memory, total - free);
    return total - free;
  };

  for (int n : options.prefill_lens) {
    SPC_ASSIGN_OR_RETURN(KvPool pool, MakeKvPool(layout, c.vocab_size, 1, n, n, 0, -1, stream));
    SPC_ASSIGN_OR_RETURN(std::vector<double> ms,
                         TimeSteps(*runner, pool.batch, 1, std::max(2, options.steps / 3)));
    SPC_RETURN_IF_ERROR(sample().status());
    PrefillPoint p{.tokens = n, .ms = Median(ms)};
    p.tokens_per_s = n / (p.ms * 1e-3);
    p.tflops = PrefillFlops(c, n) / (p.ms * 1e-3) / 1e12;
    report.prefill.push_back(p);
  }

  // Weights every decode step reads: all but the embedding table, of which it reads a few rows
  // (tied embeddings are read whole by the LM head).
  const double embed_bytes = 2.0 * c.vocab_size * c.hidden_size;
  const double step_weights = report.weight_bytes - (c.tie_word_embeddings ? 0.0 : embed_bytes);
  for (int batch : options.batches) {
    for (int context : options.contexts) {
      DecodePoint p{.batch = batch, .context = context};
      p.bytes = step_weights + double(batch) * context * layout.TokenBytes();
      p.roofline_ms = p.bytes / report.copy_bytes_per_s * 1e3;
      if (options.gpu_layers) {
        SPC_RETURN_IF_ERROR(TimeOffloadedPoint(*runner, options, report, step_weights, &p));
        report.decode.push_back(p);
        continue;
      }
      const size_t kv_bytes =
          size_t(batch) * layout.BlocksFor(context) * layout.num_layers * layout.BlockBytes();
      SPC_ASSIGN_OR_RETURN(size_t free, FreeMemory());
      constexpr size_t kHeadroom = size_t(2) << 30;
      if (kv_bytes + kHeadroom > free) {
        p.skipped = "KV of " + std::to_string(kv_bytes >> 20) + " MiB does not fit in " +
                    std::to_string(free >> 20) + " MiB free";
        report.decode.push_back(p);
        continue;
      }
      // The new token sits at position context - 1, so each step attends to `context` keys.
      SPC_ASSIGN_OR_RETURN(KvPool pool, MakeKvPool(layout, c.vocab_size, batch, context, 1,
                                                   context - 1, -1, stream));
      SPC_ASSIGN_OR_RETURN(std::vector<double> whole_ms,
                           TimeSteps(*runner, pool.batch, 3, options.steps));
      p.whole_rows_step_ms = Median(whole_ms);
      if (options.summary_top_k > 0) {
        pool.batch.summary = {.top_k = options.summary_top_k,
                              .temperatures = std::vector<float>(batch, 1.0f),
                              .gather = std::vector<std::vector<int32_t>>(batch)};
      }
      SPC_ASSIGN_OR_RETURN(std::vector<double> ms,
                           TimeSteps(*runner, pool.batch, 3, options.steps));
      SPC_ASSIGN_OR_RETURN(p.gpu_memory_used, sample());
      p.ran = true;
      p.step_ms = Median(ms);
      p.tokens_per_s = batch / (p.step_ms * 1e-3);
      const int budget = options.sparse_budget;
      if (budget > 0 && context > budget) {
        for (SequenceStep& step : pool.batch.sequences) {
          SetSparsePositions(budget, layout.num_kv_heads, &step);
        }
        pool.batch.dense_layers = options.sparse_dense_layers;
        SPC_ASSIGN_OR_RETURN(std::vector<double> sparse_ms,
                             TimeSteps(*runner, pool.batch, 3, options.steps));
        p.sparse_step_ms = Median(sparse_ms);
        SPC_ASSIGN_OR_RETURN(p.select_ms, TimeSelection(c, layout, batch, context, budget,
                                                        options.memory_decay, stream));
        // The selection runs once per step, before layer 0, so it adds to the sparse step.
        p.sparse_tokens_per_s = batch / ((p.sparse_step_ms + p.select_ms) * 1e-3);
        p.sparse_speedup = p.step_ms / (p.sparse_step_ms + p.select_ms);
        p.sparse_bytes = step_weights + double(batch) *
                                            SparseLayerPositions(layout.num_layers, budget, context,
                                                                 options.sparse_dense_layers) *
                                            layout.TokenBytes() / layout.num_layers;
        p.sparse_roofline_ms = p.sparse_bytes / report.copy_bytes_per_s * 1e3;
        p.sparse_ran = true;
      }
      report.decode.push_back(p);
    }
  }
  return report;
}

}  // namespace specontext::cuda
