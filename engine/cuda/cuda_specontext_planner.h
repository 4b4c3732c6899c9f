// The SpeContext planner on the GPU: the retrieval head's projection (embedding and, with the
// hidden path, fc over the target's fused states of the previous position; RMSNorms; Q/K
// projections; RoPE), its K cache in device blocks, and the selection kernels for the decode rows
// that run sparse. Same policy, timing of projections and counters as the CPU planner
// (engine/specontext/specontext_planner.h). The target's fused states stay on the device: the
// planner copies them out of the runner's capture buffer after each step (ObserveStep).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/cuda/cuda_model_runner.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/device_fused_history.h"
#include "engine/cuda/head_k_pool.h"
#include "engine/cuda/linear.h"
#include "engine/cuda/paged_kv.h"
#include "engine/specontext/plan_policy.h"
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
  void Release(uint64_t seq_id) override;
  std::vector<int> HiddenLayers(std::span<const PlanRow> rows) const override {
    return AnySparse(rows, options_) ? aux_layer_ids_ : std::vector<int>();
  }
  // States handed over from the host (tests; the engine keeps them on the device).
  Status ObserveHidden(uint64_t seq_id, int64_t start_position,
                       std::span<const float> states) override;
  // Copies each sparse sequence's states out of the runner's capture buffer.
  Status ObserveStep(const BatchStep& batch) override;

  SpecontextCounters counters() const override { return counters_; }
  bool RedoDense(double probability, double threshold) override;
  double redo_probability() const override { return options_.redo_probability; }
  int64_t SparseBudget(AttentionMode mode, int64_t budget) const override;
  int64_t CachedPositions(uint64_t seq_id) const { return cache_.Length(seq_id); }

 private:
  struct Weights {
    DeviceBuffer embedding;  // the head's own table; empty when it borrows the runner's
    DeviceBuffer input_norm, qk, qk_bias, q_norm, k_norm, inv_freq;
    // The hidden path: fc, hidden_norm, and q_proj/k_proj over [embedding ; hidden] (2H wide).
    DeviceBuffer fc, hidden_norm, qk_full;
  };
  // One pass of head work in packed order: selecting decode rows first, then the other decode
  // rows (or, in a catch-up pass, positions the head has not projected yet: earlier prefill
  // chunks and adopted prefixes).
  struct Work {
    std::vector<int> rows;                         // batch row per packed sequence
    std::vector<uint64_t> seq_ids;                 // per packed sequence
    std::vector<std::span<const int32_t>> tokens;  // what the head projects now
    std::vector<int64_t> starts;                   // position of tokens[0]
    std::vector<int64_t> budgets;                  // per selecting sequence
    // Per packed sequence: its history when the head's input there reads any known state.
    std::vector<const DeviceFusedHistory*> hidden;
    int selecting = 0;  // packed sequences [0, selecting) run selection
    int total_tokens = 0;
    int max_blocks = 0;
    int max_length = 0;  // longest head cache among the selecting rows
    // Per selecting sequence, with the selection memory: its ranking weights and how many
    // positions of them the previous selection left.
    std::vector<float*> memory;
    std::vector<int32_t> remembered;
    void Add(int row, uint64_t seq, std::span<const int32_t> t, int64_t start, int blocks,
             const DeviceFusedHistory* history);
  };

  CudaSpecontextPlanner(const SpecontextPlannerOptions& options, HeadKPool cache)
      : options_(options), cache_(std::move(cache)) {}
  Status Init(const RetrievalHead& head, const CudaModelRunner& runner);
  // A step's decode rows: those that run selection, and the short ones (S <= B).
  struct DecodeRows {
    struct Entry {
      int row;
      uint64_t seq;
      int64_t budget;
    };
    std::vector<Entry> selecting, short_rows;
    int max_length = 0;
  };
  // Fills `catch_up` with context the head lacks and returns this step's work. Sequences new to
  // the planner that start past a cached prefix are prepared last, after the others' catch-up
  // is projected and published, so they can adopt what those publish in this step.
  Result<Work> Prepare(std::span<const PlanRow> rows, BatchStep& batch, Work* catch_up);
  Status PrepareRow(const PlanRow& row, int index, const RowPolicy& policy, SequenceStep& step,
                    Work* catch_up, DecodeRows* decode);
  Status Project(const Work& work);
  // The head's input rows [normalised embedding ; normalised fc(hidden)] for a pass with hidden
  // inputs, from the fused states written at `fused`.
  Status HiddenInput(const Work& work, const std::byte* fused);
  // `history` when the head's input for positions [first, first + count) reads a known state.
  const DeviceFusedHistory* KnownHistory(const DeviceFusedHistory& history, int64_t first,
                                         int64_t count) const {
    return fused_width_ > 0 && history.Knows(first, count) ? &history : nullptr;
  }
  // fused_width_ when any row of the pass has hidden inputs, else 0 (the embedding-only path).
  int PassFusedWidth(const Work& work) const;
  // The selection memory of every selecting row, with room for its length (options_.memory_decay
  // > 0).
  Status PrepareMemory(Work& work);
  Status Select(const Work& work, BatchStep& batch);
  PagedKv HeadView(void* const* tables, int max_blocks) const;
  Status EnsureCapacity(DeviceBuffer& buffer, size_t bytes);
  Status EnsureStaging(size_t bytes);
  // Per sequence planned sparse: the prefix keys of its full blocks hashed so far, how many of
  // those blocks are published (or were adopted), and the first position whose K was projected
  // without its hidden input: blocks from there are never published.
  struct Prefix {
    std::vector<uint64_t> keys;
    int64_t published = 0;
    int64_t exact_end = INT64_MAX;
  };
  // A sequence the head holds nothing of starts from the published blocks of its context, and
  // the fused state of their last position from that block's tail.
  Status AdoptPrefix(const PlanRow& row, int64_t start, DeviceFusedHistory& fused, Prefix& prefix);
  // Publishes every row's full blocks whose K is exact and final, with their tails.
  Status PublishBlocks(std::span<const PlanRow> rows);
  // Pinned host row holding the fused state of pool block `block`'s last position.
  Result<uint16_t*> TailRow(int64_t block);

  SpecontextPlannerOptions options_;
  HeadKPool cache_;
  std::unordered_map<uint64_t, DeviceFusedHistory> fused_;  // sequences planned sparse
  // The selection memory per sequence: [position][kv_heads] floats, valid below `remembered`.
  struct Memory {
    DeviceBuffer weights;
    int64_t remembered = 0;
  };
  std::unordered_map<uint64_t, Memory> memory_;
  std::unordered_map<uint64_t, Prefix> prefix_;
  // Tails of published blocks (hidden path only), in pinned chunks allocated as first needed.
  std::vector<std::byte*> tail_chunks_;
  // DropBefore calls of the step being planned, applied once its passes have read the states.
  std::vector<std::pair<uint64_t, int64_t>> drops_;
  const CudaModelRunner* runner_ = nullptr;
  std::vector<int> aux_layer_ids_;
  int fused_width_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<Linear> linear_;
  Weights weights_;
  const void* embedding_ = nullptr;
  int vocab_ = 0, hidden_ = 0, q_heads_ = 0, kv_heads_ = 0, head_dim_ = 0;
  float rms_eps_ = 1e-5f, rope_scale_ = 1.0f;
  bool qk_norm_ = false;
  // Step inputs: pinned staging and its device copy; activations; selection scratch/outputs.
  std::byte* staging_ = nullptr;
  size_t staging_bytes_ = 0;
  DeviceBuffer inputs_, gathered_, normed_, qk_out_, select_ws_, fc_out_, head_in_;
  SpecontextCounters counters_;
};

}  // namespace specontext::cuda
