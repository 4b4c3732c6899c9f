#include "engine/cuda/cuda_model_runner.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

#include "engine/batch_validation.h"
#include "engine/cuda/bias_kernels.h"
#include "engine/cuda/convert_kernels.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/elementwise_kernels.h"
#include "engine/cuda/prefill_attention.h"
#include "engine/cuda/rope_kv_kernels.h"
#include "engine/cuda/topk_kernels.h"

namespace specontext::cuda {
namespace {

constexpr DType kAct = DType::kBF16;
// Graph context buckets start here so short decodes do not capture one graph per block.
constexpr int kMinGraphContext = 256;

int NextPow2(int v) { return static_cast<int>(std::bit_ceil(static_cast<unsigned>(v))); }

Result<DeviceBuffer> Bf16Buffer(size_t elements) {
  return DeviceBuffer::Allocate(elements * sizeof(uint16_t));
}

}  // namespace

CudaModelRunner::CudaModelRunner(ModelConfig config, KvLayout layout, CudaRunnerOptions options,
                                 CudaWeights weights, cpu::Rope rope)
    : config_(std::move(config)),
      layout_(layout),
      options_(options),
      weights_(std::move(weights)),
      rope_(std::move(rope)) {
  rope_scale_ = rope_.attention_factor();
}

CudaModelRunner::~CudaModelRunner() {
  DropGraphs();
  linear_.reset();
  for (cudaEvent_t event : layer_copied_) cudaEventDestroy(event);
  if (copy_stream_ != nullptr) cudaStreamDestroy(copy_stream_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

Result<std::unique_ptr<CudaModelRunner>> CudaModelRunner::Create(const Model& model,
                                                                 const CudaRunnerOptions& options) {
  const ModelConfig& config = model.config;
  SPC_RETURN_IF_ERROR(config.Validate().WithContext("CUDA backend"));
  if (config.num_heads % config.num_kv_heads != 0) {
    return InvalidArgument("CUDA backend: num_heads must be a multiple of num_kv_heads");
  }
  if (config.head_dim != 64 && config.head_dim != 128) {
    return Unimplemented("CUDA backend: head_dim " + std::to_string(config.head_dim) +
                         " is not supported (64 or 128)");
  }
  if (config.sliding_window > 0) {
    return Unimplemented("CUDA backend: sliding-window attention is not supported");
  }
  if (options.max_graph_batch > options.max_logit_rows ||
      options.max_graph_batch > options.max_sequences || options.max_logit_rows <= 0) {
    return InvalidArgument(
        "CUDA backend: max_graph_batch must not exceed max_logit_rows and "
        "max_sequences");
  }
  const KvLayout layout{.num_layers = config.num_layers,
                        .num_kv_heads = config.num_kv_heads,
                        .head_dim = config.head_dim,
                        .block_tokens = options.block_tokens,
                        .dtype = DType::kBF16};
  // Only the header's inline offsets are used, so the backend need not link the KV store.
  if (options.block_tokens <= 0 ||
      !std::has_single_bit(static_cast<unsigned>(options.block_tokens))) {
    return InvalidArgument("CUDA backend: block_tokens must be a power of two");
  }
  SPC_ASSIGN_OR_RETURN(cpu::Rope rope, cpu::Rope::Create(config));
  SPC_ASSIGN_OR_RETURN(CudaWeights weights, UploadWeights(model));
  std::unique_ptr<CudaModelRunner> runner(
      new CudaModelRunner(config, layout, options, std::move(weights), std::move(rope)));
  SPC_RETURN_IF_ERROR(runner->Init().WithContext("CUDA backend"));
  return runner;
}

Status CudaModelRunner::Init() {
  SPC_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  SPC_ASSIGN_OR_RETURN(linear_, Linear::Create(stream_));
  // The copies wait on the host link and would otherwise get SMs only between the forward
  // pass's full-device kernels: the highest priority lets their CTAs in first.
  int least = 0, greatest = 0;
  SPC_CUDA(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  SPC_CUDA(cudaStreamCreateWithPriority(&copy_stream_, cudaStreamNonBlocking, greatest));
  layer_copied_.assign(config_.num_layers, nullptr);
  for (cudaEvent_t& event : layer_copied_) {
    SPC_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  }
  SPC_ASSIGN_OR_RETURN(
      elastic_, ElasticKv::Create(layout_, options_.max_sequences, options_.elastic_slot_bytes));
  SPC_ASSIGN_OR_RETURN(tables_, DeviceBlockTables::Create(layout_, options_.max_sequences));
  const size_t t = options_.max_tokens, hidden = config_.hidden_size;
  const size_t width = config_.q_size() + 2 * config_.kv_size();
  const size_t inter = config_.intermediate_size;
  SPC_ASSIGN_OR_RETURN(ws_.resid, Bf16Buffer(t * hidden));
  SPC_ASSIGN_OR_RETURN(ws_.normed, Bf16Buffer(t * hidden));
  SPC_ASSIGN_OR_RETURN(ws_.delta, Bf16Buffer(t * hidden));
  SPC_ASSIGN_OR_RETURN(ws_.qkv, Bf16Buffer(t * width));
  SPC_ASSIGN_OR_RETURN(ws_.attn, Bf16Buffer(t * config_.q_size()));
  SPC_ASSIGN_OR_RETURN(ws_.gate_up, Bf16Buffer(t * 2 * inter));
  SPC_ASSIGN_OR_RETURN(ws_.act, Bf16Buffer(t * inter));
  const size_t logit_rows = options_.max_logit_rows, vocab = config_.vocab_size;
  SPC_ASSIGN_OR_RETURN(ws_.lm_in, Bf16Buffer(logit_rows * hidden));
  SPC_ASSIGN_OR_RETURN(ws_.logits, Bf16Buffer(logit_rows * vocab));
  SPC_ASSIGN_OR_RETURN(ws_.logits_f32, DeviceBuffer::Allocate(logit_rows * vocab * sizeof(float)));
  // Every rope variant but dynamic NTK has one set of frequencies for the model's lifetime.
  const std::vector<float> inv_freq = rope_.InvFreq(1);
  SPC_ASSIGN_OR_RETURN(ws_.inv_freq, DeviceBuffer::Allocate(inv_freq.size() * sizeof(float)));
  SPC_CUDA(cudaMemcpy(ws_.inv_freq.data(), inv_freq.data(), inv_freq.size() * sizeof(float),
                      cudaMemcpyHostToDevice));
  SPC_ASSIGN_OR_RETURN(inputs_,
                       StepInputs::Create(config_, options_.max_tokens, options_.max_sequences));
  SPC_ASSIGN_OR_RETURN(sparse_inputs_,
                       SparseIndexInputs::Create(options_.max_sequences, config_.num_kv_heads));
  return Status::Ok();
}

void CudaModelRunner::DropGraphs() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
  eager_runs_.clear();
}

Status CudaModelRunner::EnsureAttentionWorkspace(size_t bytes) {
  if (bytes <= ws_.attention.bytes()) return Status::Ok();
  // Graphs hold the old address; they are captured again on later steps.
  SPC_CUDA(cudaStreamSynchronize(stream_));
  DropGraphs();
  ws_.attention = DeviceBuffer();
  SPC_ASSIGN_OR_RETURN(ws_.attention, DeviceBuffer::Allocate(bytes));
  return Status::Ok();
}

PagedKv CudaModelRunner::LayerKv(int layer, const StepShape& shape) const {
  return {.block_table = inputs_.LayerTable(layer, shape),
          .max_blocks = shape.stride,
          .num_kv_heads = config_.num_kv_heads,
          .head_dim = config_.head_dim,
          .block_tokens = layout_.block_tokens,
          .dtype = kAct};
}

Status CudaModelRunner::RotateAndStore(int layer, const StepShape& shape) {
  const CudaLayerWeights& w = weights_.layers[layer];
  const StepDeviceArrays& in = inputs_.device();
  const int q_size = config_.q_size(), kv_size = config_.kv_size();
  const int width = q_size + 2 * kv_size;
  auto* qkv = ws_.qkv.as<uint16_t>();
  const PagedKv kv = LayerKv(layer, shape);
  RopeKvArgs rope{.q = qkv,
                  .k = qkv + q_size,
                  .v = qkv + q_size + kv_size,
                  .q_stride = width,
                  .k_stride = width,
                  .v_stride = width,
                  .num_tokens = shape.rows,
                  .num_q_heads = config_.num_heads,
                  .positions = in.positions,
                  .token_seq = in.token_seq,
                  .inv_freq = ws_.inv_freq.as<float>(),
                  .rope_scale = rope_scale_,
                  .q_norm_weight = w.q_norm,
                  .k_norm_weight = w.k_norm,
                  .norm_eps = static_cast<float>(config_.rms_norm_eps)};
  if (!shape.per_sequence_rope) return RopeAndWriteKv(rope, kv, stream_);
  // Dynamic NTK: each sequence rotates with its own frequencies, one launch per sequence.
  const int half = config_.head_dim / 2;
  for (size_t s = 0; s + 1 < shape.seq_rows.size(); ++s) {
    const int first = shape.seq_rows[s];
    RopeKvArgs part = rope;
    part.q = qkv + static_cast<size_t>(first) * width;
    part.k = static_cast<uint16_t*>(part.q) + q_size;
    part.v = static_cast<uint16_t*>(part.q) + q_size + kv_size;
    part.num_tokens = shape.seq_rows[s + 1] - first;
    part.positions = in.positions + first;
    part.token_seq = in.token_seq + first;
    part.inv_freq = in.inv_freq + s * half;
    SPC_RETURN_IF_ERROR(RopeAndWriteKv(part, kv, stream_));
  }
  return Status::Ok();
}

Status CudaModelRunner::AttendAll(int layer, const StepShape& shape) {
  const StepDeviceArrays& in = inputs_.device();
  const int q_size = config_.q_size(), kv_size = config_.kv_size();
  const int width = q_size + 2 * kv_size;
  auto* qkv = ws_.qkv.as<uint16_t>();
  auto* attn = ws_.attn.as<uint16_t>();
  const PagedKv kv = LayerKv(layer, shape);
  const float scale = 1.0f / std::sqrt(static_cast<float>(config_.head_dim));
  if (shape.decode > 0) {
    const bool sparse = sparse_shape_.index_stride > 0 && layer >= dense_layers_;
    const ElasticLayerView slots = sparse ? elastic_.View(layer) : ElasticLayerView{};
    const DecodeAttentionArgs args{.q = qkv,
                                   .out = attn,
                                   .q_stride = width,
                                   .out_stride = q_size,
                                   .batch = shape.decode,
                                   .num_q_heads = config_.num_heads,
                                   .scale = scale,
                                   .seq_lens = in.seq_lens,
                                   .indices = sparse ? sparse_inputs_.indices() : nullptr,
                                   .index_counts = sparse_inputs_.counts(),
                                   .index_stride = sparse_shape_.index_stride,
                                   .slot_rows = slots.slot_rows,
                                   .slot_indices = slots.slot_lists};
    SPC_RETURN_IF_ERROR(DecodeAttention(
        args, kv, sparse || sparse_shape_.index_stride == 0 ? decode_plan_ : dense_plan_,
        ws_.attention.data(), stream_));
  }
  if (shape.prefill > 0) {
    PagedKv prefill_kv = kv;
    prefill_kv.block_table = kv.block_table + static_cast<size_t>(shape.decode) * shape.stride;
    const PrefillAttentionArgs args{.q = qkv + static_cast<size_t>(shape.decode) * width,
                                    .out = attn + static_cast<size_t>(shape.decode) * q_size,
                                    .q_stride = width,
                                    .out_stride = q_size,
                                    .num_seqs = shape.prefill,
                                    .num_q_heads = config_.num_heads,
                                    .scale = scale,
                                    .q_start = in.q_start,
                                    .q_len = in.q_len,
                                    .kv_len = in.kv_len,
                                    .max_q_len = shape.max_q_len};
    SPC_RETURN_IF_ERROR(PrefillAttention(args, prefill_kv, stream_));
  }
  return Status::Ok();
}

Status CudaModelRunner::Forward(const StepShape& shape, int first_layer, int end_layer) {
  const int rows = shape.rows, hidden = config_.hidden_size, inter = config_.intermediate_size;
  const int width = config_.q_size() + 2 * config_.kv_size();
  const float eps = static_cast<float>(config_.rms_norm_eps);
  if (first_layer == 0) {
    SPC_RETURN_IF_ERROR(EmbeddingGather(kAct, inputs_.device().tokens, rows, weights_.embed,
                                        config_.vocab_size, hidden, ws_.resid.data(), stream_));
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  SPC_CUDA(cudaStreamIsCapturing(stream_, &capture));
  // A graph waits on the copy events as recorded when it is launched, after ElasticKv::Load.
  const unsigned wait =
      capture == cudaStreamCaptureStatusNone ? cudaEventWaitDefault : cudaEventWaitExternal;
  for (int layer = first_layer; layer < end_layer; ++layer) {
    const CudaLayerWeights& w = weights_.layers[layer];
    // The first layer normalises the embedding; later ones fold in the last MLP's output.
    if (layer == 0) {
      SPC_RETURN_IF_ERROR(AddRmsNorm(kAct, ws_.resid.data(), nullptr, w.input_norm,
                                     ws_.normed.data(), rows, hidden, eps, stream_));
    } else {
      SPC_RETURN_IF_ERROR(AddRmsNorm(kAct, ws_.delta.data(), ws_.resid.data(), w.input_norm,
                                     ws_.normed.data(), rows, hidden, eps, stream_));
    }
    SPC_RETURN_IF_ERROR(CaptureHidden(layer, rows));
    SPC_RETURN_IF_ERROR(
        linear_->Forward(kAct, ws_.normed.data(), w.qkv, ws_.qkv.data(), rows, width, hidden));
    if (w.qkv_bias != nullptr) {
      SPC_RETURN_IF_ERROR(AddBias(kAct, ws_.qkv.data(), w.qkv_bias, rows, width, stream_));
    }
    SPC_RETURN_IF_ERROR(RotateAndStore(layer, shape));
    if (layer >= elastic_.first_layer()) {
      SPC_CUDA(cudaStreamWaitEvent(stream_, layer_copied_[layer], wait));
    }
    SPC_RETURN_IF_ERROR(AttendAll(layer, shape));
    SPC_RETURN_IF_ERROR(linear_->Forward(kAct, ws_.attn.data(), w.o, ws_.delta.data(), rows, hidden,
                                         config_.q_size()));
    SPC_RETURN_IF_ERROR(AddRmsNorm(kAct, ws_.delta.data(), ws_.resid.data(), w.post_norm,
                                   ws_.normed.data(), rows, hidden, eps, stream_));
    SPC_RETURN_IF_ERROR(linear_->Forward(kAct, ws_.normed.data(), w.gate_up, ws_.gate_up.data(),
                                         rows, 2 * inter, hidden));
    auto* gate_up = ws_.gate_up.as<uint16_t>();
    SPC_RETURN_IF_ERROR(
        SiluMul(kAct, gate_up, gate_up + inter, 2 * inter, ws_.act.data(), rows, inter, stream_));
    SPC_RETURN_IF_ERROR(
        linear_->Forward(kAct, ws_.act.data(), w.down, ws_.delta.data(), rows, hidden, inter));
  }
  if (end_layer < config_.num_layers) return Status::Ok();
  SPC_RETURN_IF_ERROR(AddRmsNorm(kAct, ws_.delta.data(), ws_.resid.data(), weights_.final_norm,
                                 ws_.normed.data(), rows, hidden, eps, stream_));
  return CaptureHidden(config_.num_layers, rows);
}

Status CudaModelRunner::CaptureHidden(int layer, int rows) {
  const size_t row_bytes = static_cast<size_t>(config_.hidden_size) * 2;
  const size_t slots = capture_layers_.size();
  for (size_t j = 0; j < slots; ++j) {
    if (capture_layers_[j] != layer) continue;
    SPC_CUDA(cudaMemcpy2DAsync(ws_.hidden.as<std::byte>() + j * row_bytes, slots * row_bytes,
                               ws_.resid.data(), row_bytes, row_bytes, rows,
                               cudaMemcpyDeviceToDevice, stream_));
  }
  return Status::Ok();
}

const uint16_t* CudaModelRunner::CapturedHidden(size_t sequence) const {
  if (sequence >= captured_first_row_.size()) return nullptr;
  const size_t width = capture_layers_.size() * config_.hidden_size;
  return ws_.hidden.as<uint16_t>() + static_cast<size_t>(captured_first_row_[sequence]) * width;
}

Status CudaModelRunner::FetchHidden(const BatchStep& batch, const StepShape& shape,
                                    std::vector<float>* hidden) {
  const size_t width = capture_layers_.size() * config_.hidden_size;
  std::vector<uint16_t> packed(static_cast<size_t>(shape.rows) * width);
  SPC_CUDA(cudaMemcpyAsync(packed.data(), ws_.hidden.data(), packed.size() * 2,
                           cudaMemcpyDeviceToHost, stream_));
  SPC_CUDA(cudaStreamSynchronize(stream_));
  size_t tokens = 0;
  for (const SequenceStep& seq : batch.sequences) tokens += seq.tokens.size();
  hidden->resize(tokens * width);
  size_t out_row = 0;
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    for (size_t i = 0; i < batch.sequences[s].tokens.size(); ++i, ++out_row) {
      const uint16_t* src = packed.data() + (shape.first_row[s] + i) * width;
      std::transform(src, src + width, hidden->data() + out_row * width, Bf16ToFloat);
    }
  }
  return Status::Ok();
}

Status CudaModelRunner::LmHead(int first, int count) {
  const int hidden = config_.hidden_size;
  // Gathering the logit rows is an embedding lookup into the normalised activations.
  SPC_RETURN_IF_ERROR(EmbeddingGather(kAct, inputs_.device().logit_rows + first, count,
                                      ws_.normed.data(), options_.max_tokens, hidden,
                                      ws_.lm_in.data(), stream_));
  SPC_RETURN_IF_ERROR(linear_->Forward(kAct, ws_.lm_in.data(), weights_.lm_head, ws_.logits.data(),
                                       count, config_.vocab_size, hidden));
  return WidenToFloat(kAct, ws_.logits.data(), ws_.logits_f32.as<float>(),
                      static_cast<size_t>(count) * config_.vocab_size, stream_);
}

Status CudaModelRunner::FetchLogits(int count, float* dst) {
  const size_t n = static_cast<size_t>(count) * config_.vocab_size;
  SPC_CUDA(cudaMemcpyAsync(dst, ws_.logits_f32.data(), n * sizeof(float), cudaMemcpyDeviceToHost,
                           stream_));
  SPC_CUDA(cudaStreamSynchronize(stream_));
  return Status::Ok();
}

Status CudaModelRunner::ReturnLogits(const BatchStep& batch, const StepShape& shape,
                                     bool graph_ran_lm_head, StepOutput* out) {
  const int rows = shape.returned_rows, vocab = config_.vocab_size;
  // Deeper summaries than TopK serves, or more rows than one LM-head pass: whole rows.
  if (batch.summary.top_k > 0 && batch.summary.top_k <= kMaxTopK &&
      rows <= options_.max_logit_rows) {
    if (!graph_ran_lm_head) SPC_RETURN_IF_ERROR(LmHead(0, rows));
    SPC_RETURN_IF_ERROR(summarizer_.Summarize(ws_.logits_f32.as<float>(), rows, vocab,
                                              batch.summary, stream_, &out->summaries));
    summarised_rows_ = rows;
    return Status::Ok();
  }
  out->logits.resize(static_cast<size_t>(rows) * vocab);
  if (graph_ran_lm_head) return FetchLogits(rows, out->logits.data());
  for (int first = 0; first < rows; first += options_.max_logit_rows) {
    const int count = std::min(options_.max_logit_rows, rows - first);
    SPC_RETURN_IF_ERROR(LmHead(first, count));
    SPC_RETURN_IF_ERROR(
        FetchLogits(count, out->logits.data() + static_cast<size_t>(first) * vocab));
  }
  return Status::Ok();
}

Status CudaModelRunner::LogitsRow(int row, std::vector<float>* out) {
  if (row < 0 || row >= summarised_rows_) {
    return OutOfRange("logits row " + std::to_string(row) + ": the last step summarised " +
                      std::to_string(summarised_rows_) + " rows");
  }
  out->resize(config_.vocab_size);
  const size_t offset = static_cast<size_t>(row) * config_.vocab_size;
  SPC_CUDA(cudaMemcpyAsync(out->data(), ws_.logits_f32.as<float>() + offset,
                           config_.vocab_size * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  SPC_CUDA(cudaStreamSynchronize(stream_));
  return Status::Ok();
}

Status CudaModelRunner::DecodeLayers(const StepShape& shape, int first_layer, int end_layer) {
  SPC_RETURN_IF_ERROR(Forward(shape, first_layer, end_layer));
  return end_layer == config_.num_layers ? LmHead(0, shape.logit_rows) : Status::Ok();
}

Status CudaModelRunner::CaptureDecodeGraph(const StepShape& shape, int first_layer, int end_layer,
                                           cudaGraphExec_t* exec) {
  cudaGraph_t graph = nullptr;
  SPC_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  const Status status = DecodeLayers(shape, first_layer, end_layer);
  const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
  SPC_RETURN_IF_ERROR(status);
  SPC_CUDA(end);
  const cudaError_t inst = cudaGraphInstantiate(exec, graph, 0);
  cudaGraphDestroy(graph);
  SPC_CUDA(inst);
  return Status::Ok();
}

Status CudaModelRunner::RunDecodeGraph(const StepShape& shape, int first_layer, int end_layer) {
  const GraphKey key{shape.decode,
                     shape.max_context,
                     sparse_shape_.max_attend,
                     sparse_shape_.index_stride,
                     shape.stride,
                     first_layer,
                     end_layer,
                     elastic_.first_layer(),
                     dense_layers_,
                     capture_layers_};
  auto found = graphs_.find(key);
  // Captured on the second sighting: cuBLAS has picked its kernels and the workspace is sized.
  if (found == graphs_.end() && !uncapturable_.contains(key) && eager_runs_[key]++ > 0) {
    cudaGraphExec_t exec = nullptr;
    if (CaptureDecodeGraph(shape, first_layer, end_layer, &exec).ok()) {
      found = graphs_.emplace(key, exec).first;
    } else {
      // A library call that refuses capture costs launch overhead, not correctness.
      cudaGetLastError();
      uncapturable_.insert(key);
    }
  }
  if (found != graphs_.end()) {
    SPC_CUDA(cudaGraphLaunch(found->second, stream_));
    return Status::Ok();
  }
  return DecodeLayers(shape, first_layer, end_layer);
}

Status CudaModelRunner::Step(const BatchStep& batch, StepOutput* out) {
  if (out == nullptr) return InvalidArgument("CUDA backend: no output given");
  SPC_RETURN_IF_ERROR(ValidateBatch(batch, config_, layout_, NullBlockCheck::kByBackend)
                          .WithContext("CUDA backend"));
  const Status status = RunStep(batch, out);
  // The slot maps and the device tables assumed this step's copies ran; without them neither
  // can be trusted.
  if (!status.ok()) {
    elastic_.ReleaseAll();
    tables_.InvalidateAll();
  }
  return status;
}

Status CudaModelRunner::RunStep(const BatchStep& batch, StepOutput* out) {
  out->vocab_size = config_.vocab_size;
  out->logits.clear();
  out->summaries.clear();
  summarised_rows_ = 0;
  if (batch.sequences.empty()) return Status::Ok();

  const bool dynamic = config_.rope_scaling.type == RopeScaling::Type::kDynamic;
  const bool pure_decode = std::all_of(batch.sequences.begin(), batch.sequences.end(),
                                       [](const SequenceStep& s) { return s.tokens.size() == 1; });
  int graph_batch = 0, graph_context = 0;
  if (options_.use_graphs && !dynamic && pure_decode &&
      static_cast<int>(batch.sequences.size()) <= options_.max_graph_batch) {
    // Padded to a power of two so few graphs serve every batch size, but never past the rows
    // and sequences a step may hold.
    const int n = static_cast<int>(batch.sequences.size());
    graph_batch = std::max(n, std::min({NextPow2(n), options_.max_sequences, options_.max_tokens}));
    int longest = 0;
    for (const SequenceStep& s : batch.sequences) longest = std::max(longest, s.start_position + 1);
    graph_context = std::max(kMinGraphContext, NextPow2(longest));
  }
  if (!batch.capture_layers.empty()) {
    const size_t bytes =
        batch.capture_layers.size() * options_.max_tokens * config_.hidden_size * 2;
    if (bytes > ws_.hidden.bytes()) {
      SPC_CUDA(cudaStreamSynchronize(stream_));
      DropGraphs();  // they hold the old address
      ws_.hidden = DeviceBuffer();
      SPC_ASSIGN_OR_RETURN(ws_.hidden, DeviceBuffer::Allocate(bytes));
    }
  }
  capture_layers_ = batch.capture_layers;
  const int generation = inputs_.generation(), sparse_generation = sparse_inputs_.generation(),
            elastic_generation = elastic_.generation();
  SPC_ASSIGN_OR_RETURN(const int slot_blocks, elastic_.Plan(batch));
  SPC_ASSIGN_OR_RETURN(StepShape shape, inputs_.Pack(batch, layout_, rope_, dynamic, graph_batch,
                                                     graph_context, slot_blocks));
  SPC_ASSIGN_OR_RETURN(sparse_shape_,
                       sparse_inputs_.Pack(batch, config_.num_kv_heads, shape.decode,
                                           graph_batch > 0 ? kMinGraphContext : 0, graph_context));
  dense_layers_ =
      sparse_shape_.index_stride > 0 ? std::min(batch.dense_layers, config_.num_layers) : 0;
  const int rows = shape.decode + shape.prefill;
  SPC_RETURN_IF_ERROR(tables_.Stage(batch, shape.order, rows));
  SPC_RETURN_IF_ERROR(elastic_.Fill(tables_.slot_ranges(), rows, shape.slot_block,
                                    sparse_shape_.index_stride, stream_));
  if (inputs_.generation() != generation || sparse_inputs_.generation() != sparse_generation ||
      elastic_.generation() != elastic_generation) {
    DropGraphs();
  }
  if (shape.decode > 0) {
    const int attend =
        sparse_shape_.index_stride > 0 ? sparse_shape_.max_attend : shape.max_context;
    SPC_ASSIGN_OR_RETURN(decode_plan_, PlanDecodeAttention(LayerKv(0, shape), shape.decode,
                                                           config_.num_heads, attend));
    size_t workspace = decode_plan_.workspace_bytes;
    if (dense_layers_ > 0) {
      SPC_ASSIGN_OR_RETURN(dense_plan_, PlanDecodeAttention(LayerKv(0, shape), shape.decode,
                                                            config_.num_heads, shape.max_context));
      workspace = std::max(workspace, dense_plan_.workspace_bytes);
    }
    SPC_RETURN_IF_ERROR(EnsureAttentionWorkspace(workspace));
  }
  SPC_RETURN_IF_ERROR(inputs_.Upload(stream_));
  SPC_RETURN_IF_ERROR(
      tables_.Assemble(inputs_.device().block_tables, shape.stride, shape.slot_block, stream_));
  SPC_RETURN_IF_ERROR(sparse_inputs_.Upload(sparse_shape_, shape.decode, stream_));
  out->hidden.clear();
  // Layers every row reads from the GPU run while the host gathers the slot copies of the
  // rest; those layers are queued after the copies, each waiting on its own layer's.
  const int split = elastic_.first_layer(), layers = config_.num_layers;
  auto run = [&](int first, int end) {
    return graph_batch > 0 ? RunDecodeGraph(shape, first, end) : Forward(shape, first, end);
  };
  if (split > 0) SPC_RETURN_IF_ERROR(run(0, split));
  SPC_RETURN_IF_ERROR(elastic_.Load(layer_copied_, copy_stream_));
  if (split < layers) SPC_RETURN_IF_ERROR(run(split, layers));
  SPC_RETURN_IF_ERROR(ReturnLogits(batch, shape, graph_batch > 0, out));
  if (capture_layers_.empty()) return Status::Ok();
  if (batch.hidden_on_device) {
    captured_first_row_ = shape.first_row;
    return Status::Ok();
  }
  return FetchHidden(batch, shape, &out->hidden);
}

Result<std::unique_ptr<ModelRunner>> CreateCudaModelRunner(const Model& model,
                                                           const CudaRunnerOptions& options) {
  SPC_ASSIGN_OR_RETURN(std::unique_ptr<CudaModelRunner> runner,
                       CudaModelRunner::Create(model, options));
  return std::unique_ptr<ModelRunner>(std::move(runner));
}

}  // namespace specontext::cuda
