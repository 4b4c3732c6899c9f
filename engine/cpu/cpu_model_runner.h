// The CPU reference forward pass: every CUDA kernel is checked against it, and it serves when no
// GPU is present. fp32 weights (converted once), fp32 KV blocks, fp32 accumulation.
#pragma once

#include <memory>
#include <vector>

#include "engine/attention_probe.h"
#include "engine/cpu/attention.h"
#include "engine/cpu/cpu_weights.h"
#include "engine/cpu/rope.h"
#include "engine/cpu/thread_pool.h"
#include "engine/model/model.h"
#include "engine/model_runner.h"

namespace specontext::cpu {

struct CpuRunnerOptions {
  int block_tokens = 16;
  ThreadPool* pool = nullptr;  // nullptr: ThreadPool::Shared()
  // Shown every sparse decode row's dense attention weights (recall measurement); it costs a
  // second, dense pass over those rows' KV, so serving leaves it unset. Must outlive the runner.
  AttentionProbe* probe = nullptr;
};

class CpuModelRunner : public ModelRunner {
 public:
  // Converts the weights; `model` may be released afterwards.
  static Result<std::unique_ptr<CpuModelRunner>> Create(const Model& model,
                                                        const CpuRunnerOptions& options = {});

  const ModelConfig& config() const override { return config_; }
  KvLayout kv_layout() const override { return layout_; }
  // Errors (nothing is written): a token id outside the vocabulary, a negative position, a
  // block table that is short, null or has the wrong number of layers, or malformed sparse
  // positions (engine/batch_validation.h). A decode row with sparse_positions attends, in every
  // layer, to exactly the listed positions of each KV head.
  Status Step(const BatchStep& batch, StepOutput* out) override;

 private:
  CpuModelRunner(ModelConfig config, KvLayout layout, CpuWeights weights, Rope rope,
                 ThreadPool& pool, AttentionProbe* probe)
      : config_(std::move(config)),
        layout_(layout),
        weights_(std::move(weights)),
        rope_(std::move(rope)),
        pool_(pool),
        probe_(probe) {}

  // Every token of the step as one row, so each matmul covers the whole batch.
  struct Rows {
    std::vector<int> sequence, position, token;
    std::vector<int> logit_rows;  // rows whose logits the step returns
    std::vector<AttentionSpan> spans;
    // RoPE frequencies: one per sequence for dynamic NTK (length-dependent), else one shared.
    std::vector<std::vector<float>> inv_freq;
  };

  Rows Pack(const BatchStep& batch) const;
  // Projects, normalises and rotates q/k for every row, then stores k/v in the blocks.
  void PrepareAttention(int layer, const BatchStep& batch, const Rows& rows, const float* normed,
                        std::vector<float>& qkv) const;
  // Shows the probe this layer's sparse decode rows.
  void ProbeSparseRows(int layer, const BatchStep& batch, const Rows& rows,
                       const AttentionShape& shape, const float* qkv) const;

  ModelConfig config_;
  KvLayout layout_;
  CpuWeights weights_;
  Rope rope_;
  ThreadPool& pool_;
  AttentionProbe* probe_;
};

}  // namespace specontext::cpu
