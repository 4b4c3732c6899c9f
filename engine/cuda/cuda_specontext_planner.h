// The SpeContext planner on the GPU: the retrieval head's projection (embedding, RMSNorm, the
// embedding half of its Q/K projections, RoPE) for every token of the step, its K cache in
// device blocks, and the selection kernels for the decode rows that run sparse. Same policy and
// counters as the CPU planner (engine/specontext/specontext_planner.h); the hidden half of the
// head's input is zero here.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <span>
#include <vector>

#include "common/status.h"
#include "engine/cuda/cublas_gemm.h"
#include "engine/cuda/cuda_model_runner.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/head_k_pool.h"
#include "engine/cuda/paged_kv.h"
#include "engine/specontext/retrieval_head.h"
#include "engine/specontext/specontext_planner.h"

namespace specontext::cuda {

class CudaSpecontextPlanner final : public StepPlanner {
 public:
  // Runs on the runner's stream (its work is ordered before the step it plans) and reads the
  // runner's embedding table when the head has none of its own. cache_positions bounds the
  // positions every sequence's head cache holds together.
  static Result<std::unique_ptr<CudaSpecontextPlanner>> Create(
      const RetrievalHead& head, const CudaModelRunner& runner,
      const SpecontextPlannerOptions& options, int64_t cache_positions);
  ~CudaSpecontextPlanner() override;

  Status Plan(std::span<const PlanRow> rows, BatchStep* batch) override;
  void Release(uint64_t seq_id) override { cache_.Release(seq_id); }

  const SpecontextCounters& counters() const { return counters_; }
  int64_t CachedPositions(uint64_t seq_id) const { return cache_.Length(seq_id); }

 private:
  struct Weights {
    DeviceBuffer embedding;  // the head's own table; empty when it borrows the runner's
    DeviceBuffer input_norm, qk, qk_bias, q_norm, k_norm, inv_freq;
  };
  // One pass of head work in packed order: selecting decode rows first, then the other decode
  // rows, then prefill chunks (and, in a catch-up pass, context the head has not seen).
  struct Work {
    std::vector<int> rows;                         // batch row per packed sequence
    std::vector<uint64_t> seq_ids;                 // per packed sequence
    std::vector<std::span<const int32_t>> tokens;  // what the head projects now
    std::vector<int64_t> starts;                   // position of tokens[0]
    std::vector<int64_t> budgets;                  // per selecting sequence
    int selecting = 0;                             // packed sequences [0, selecting) run selection
    int total_tokens = 0;
    int max_blocks = 0;
    int max_length = 0;  // longest head cache among the selecting rows
    void Add(int row, uint64_t seq, std::span<const int32_t> t, int64_t start, int blocks);
  };

  CudaSpecontextPlanner(const SpecontextPlannerOptions& options, HeadKPool cache)
      : options_(options), cache_(std::move(cache)) {}
  Status Init(const RetrievalHead& head, const CudaModelRunner& runner);
  // Fills `catch_up` with context the head lacks and returns this step's work.
  Result<Work> Prepare(std::span<const PlanRow> rows, BatchStep& batch, Work* catch_up);
  Status Project(const Work& work);
  Status Select(const Work& work, BatchStep& batch);
  PagedKv HeadView(void* const* tables, int max_blocks) const;
  Status EnsureCapacity(DeviceBuffer& buffer, size_t bytes);
  Status EnsureStaging(size_t bytes);

  SpecontextPlannerOptions options_;
  HeadKPool cache_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<CublasGemm> gemm_;
  Weights weights_;
  const void* embedding_ = nullptr;
  int vocab_ = 0, hidden_ = 0, q_heads_ = 0, kv_heads_ = 0, head_dim_ = 0;
  float rms_eps_ = 1e-5f, rope_scale_ = 1.0f;
  bool qk_norm_ = false;
  // Step inputs: pinned staging and its device copy; activations; selection scratch/outputs.
  std::byte* staging_ = nullptr;
  size_t staging_bytes_ = 0;
  DeviceBuffer inputs_, gathered_, normed_, qk_out_, select_ws_;
  SpecontextCounters counters_;
};

}  // namespace specontext::cuda
