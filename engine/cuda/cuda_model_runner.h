// The CUDA forward pass: BF16 weights and KV, fp32 accumulation, one step over a batch that
// mixes prefill chunks and decode tokens. Pure-decode steps replay CUDA graphs captured per
// (batch bucket, context bucket, sparse-list bucket), so a step costs one launch instead of
// hundreds. Decode rows with SpeContext position lists attend to those positions only.
#pragma once

#include <cuda_runtime_api.h>

#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "engine/cpu/rope.h"
#include "engine/cuda/cuda_weights.h"
#include "engine/cuda/decode_attention.h"
#include "engine/cuda/device_block_tables.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/elastic_kv.h"
#include "engine/cuda/linear.h"
#include "engine/cuda/logits_summarizer.h"
#include "engine/cuda/sparse_index_inputs.h"
#include "engine/cuda/step_inputs.h"
#include "engine/model/model.h"
#include "engine/model_runner.h"

namespace specontext::cuda {

struct CudaRunnerOptions {
  int block_tokens = 16;
  int max_tokens = 8192;     // rows of one step: prefill tokens plus decode tokens
  int max_sequences = 256;   // sequences of one step
  int max_logit_rows = 256;  // LM-head rows per pass; more logits are produced in passes
  int max_graph_batch = 64;  // decode steps above this batch run without a graph
  bool use_graphs = true;
  // GPU memory elastic slots may hold, in bytes (0: as much as the device gives). A row whose
  // slots do not fit attends its host layers in place for that step.
  size_t elastic_slot_bytes = 0;
};

class CudaModelRunner : public ModelRunner {
 public:
  // Uploads the weights; `model` may be released afterwards.
  static Result<std::unique_ptr<CudaModelRunner>> Create(const Model& model,
                                                         const CudaRunnerOptions& options = {});
  ~CudaModelRunner() override;

  const ModelConfig& config() const override { return config_; }
  // BF16 blocks in device memory, or in mapped pinned host memory for the layers a step marks
  // in SequenceStep::host_layers (attended in place, or through slots when sparse).
  KvLayout kv_layout() const override { return layout_; }
  // Errors (nothing is run): a token outside the vocabulary, a bad position range, a short or
  // null block table, or a step larger than the options allow.
  // With BatchStep::summary, rows are summarised on the device when the step's logits fit one
  // LM-head pass (max_logit_rows) and top_k is at most kMaxTopK; otherwise whole rows return.
  Status Step(const BatchStep& batch, StepOutput* out) override;
  Status LogitsRow(int row, std::vector<float>* out) override;
  bool summarises_logits() const override { return true; }
  void ReleaseSequence(uint64_t seq_id) override {
    elastic_.Release(seq_id);
    tables_.Release(seq_id);
  }

  cudaStream_t stream() const { return stream_; }
  // The token embedding table on the device ([vocab][hidden], BF16), for a retrieval head that
  // shares it.
  const void* embedding() const { return weights_.embed; }
  size_t weight_bytes() const { return weights_.storage.bytes(); }
  int graphs_captured() const { return static_cast<int>(graphs_.size()); }
  // After a step with BatchStep::hidden_on_device: sequence `sequence`'s captured states, its
  // tokens' rows of [capture layers][hidden] BF16 in the step's order, on the device until the
  // next step overwrites them (work queued on stream() after this step reads them safely);
  // nullptr past the step's sequences.
  const uint16_t* CapturedHidden(size_t sequence) const;
  ElasticLoadStats elastic_stats() const override { return elastic_.stats(); }
  // Block-table entries copied to the device so far (only new ones for vouched tables).
  int64_t table_entries_uploaded() const { return tables_.entries_uploaded(); }

 private:
  struct Workspace {
    DeviceBuffer resid, normed, qkv, attn, delta, gate_up, act, lm_in, logits, logits_f32, inv_freq,
        attention;
    DeviceBuffer hidden;  // captured layer inputs: [rows][capture layers][hidden], packed order
  };
  struct GraphKey {
    int batch = 0;
    int context = 0;
    int attend = 0;        // what the attention plan is cut for
    int index_stride = 0;  // SpeContext lists per (row, KV head); 0 when dense
    int stride = 0;        // block-table row: longer when elastic slots follow the blocks
    int first_layer = 0;   // the graph runs layers [first_layer, end_layer), the LM head after
    int end_layer = 0;     // the last
    int slot_layer = 0;    // layers from here on wait on slot copies (ElasticKv::first_layer)
    int dense_layers = 0;  // layers below it attend densely in sparse rows too
    std::vector<int> capture_layers;
    auto operator<=>(const GraphKey&) const = default;
  };

  CudaModelRunner(ModelConfig config, KvLayout layout, CudaRunnerOptions options,
                  CudaWeights weights, cpu::Rope rope);
  Status Init();
  // Step after validation; on failure the caller forgets every elastic slot it planned.
  Status RunStep(const BatchStep& batch, StepOutput* out);
  // Layers [first_layer, end_layer) of the step after the inputs are on the device, the
  // embedding before layer 0 and the final norm after the last; graph-capturable.
  Status Forward(const StepShape& shape, int first_layer, int end_layer);
  PagedKv LayerKv(int layer, const StepShape& shape) const;
  // q/k norm and RoPE in place, then the K/V write into the step's blocks.
  Status RotateAndStore(int layer, const StepShape& shape);
  // Decode rows through decode attention, prefill rows through prefill attention.
  Status AttendAll(int layer, const StepShape& shape);
  Status LmHead(int first, int count);
  Status FetchLogits(int count, float* dst);
  // The step's logits rows, as whole rows or summaries (BatchStep::summary). A decode graph
  // runs the LM head itself.
  Status ReturnLogits(const BatchStep& batch, const StepShape& shape, bool graph_ran_lm_head,
                      StepOutput* out);
  Status EnsureAttentionWorkspace(size_t bytes);
  // The copy of the residual stream entering `layer` for every capture slot that asks for it.
  Status CaptureHidden(int layer, int rows);
  // StepOutput::hidden in the caller's token order, from the packed rows.
  Status FetchHidden(const BatchStep& batch, const StepShape& shape, std::vector<float>* hidden);
  // A decode step's layers [first_layer, end_layer), with the LM head after the last layer.
  Status DecodeLayers(const StepShape& shape, int first_layer, int end_layer);
  Status CaptureDecodeGraph(const StepShape& shape, int first_layer, int end_layer,
                            cudaGraphExec_t* exec);
  Status RunDecodeGraph(const StepShape& shape, int first_layer, int end_layer);
  void DropGraphs();

  ModelConfig config_;
  KvLayout layout_;
  CudaRunnerOptions options_;
  CudaWeights weights_;
  cpu::Rope rope_;
  float rope_scale_ = 1.0f;
  cudaStream_t stream_ = nullptr;
  cudaStream_t copy_stream_ = nullptr;
  std::vector<cudaEvent_t> layer_copied_;  // per layer, on copy_stream_
  std::unique_ptr<Linear> linear_;
  Workspace ws_;
  StepInputs inputs_;
  SparseIndexInputs sparse_inputs_;
  SparseShape sparse_shape_;
  ElasticKv elastic_;
  DeviceBlockTables tables_;
  DecodeAttentionPlan decode_plan_;
  // BatchStep::dense_layers of a step with sparse rows (0 otherwise), and the plan those
  // layers attend with: cut for the whole context rather than the lists.
  int dense_layers_ = 0;
  DecodeAttentionPlan dense_plan_;
  std::vector<int> capture_layers_;      // this step's BatchStep::capture_layers
  std::vector<int> captured_first_row_;  // its sequences' first rows, when they stay on the device
  LogitsSummarizer summarizer_;
  int summarised_rows_ = 0;  // rows of ws_.logits_f32 that LogitsRow may read
  std::map<GraphKey, cudaGraphExec_t> graphs_;
  std::map<GraphKey, int> eager_runs_;
  std::set<GraphKey> uncapturable_;
};

Result<std::unique_ptr<ModelRunner>> CreateCudaModelRunner(const Model& model,
                                                           const CudaRunnerOptions& options = {});

}  // namespace specontext::cuda
