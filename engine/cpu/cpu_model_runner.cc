#include "engine/cpu/cpu_model_runner.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "engine/batch_validation.h"
#include "engine/cpu/attention.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/mlp.h"
#include "engine/cpu/rmsnorm.h"

namespace specontext::cpu {
namespace {

void AddInPlace(float* x, const float* delta, size_t count) {
  for (size_t i = 0; i < count; ++i) x[i] += delta[i];
}

}  // namespace

Result<std::unique_ptr<CpuModelRunner>> CpuModelRunner::Create(const Model& model,
                                                               const CpuRunnerOptions& options) {
  const ModelConfig& config = model.config;
  SPC_RETURN_IF_ERROR(config.Validate().WithContext("CPU backend"));
  if (config.num_heads % config.num_kv_heads != 0) {
    return InvalidArgument("CPU backend: num_heads must be a multiple of num_kv_heads");
  }
  const KvLayout layout{.num_layers = config.num_layers,
                        .num_kv_heads = config.num_kv_heads,
                        .head_dim = config.head_dim,
                        .block_tokens = options.block_tokens,
                        .dtype = DType::kF32};
  // Only the header's inline offsets are used, so the engine need not link the KV store.
  if (options.block_tokens <= 0) return InvalidArgument("CPU backend: block_tokens must be > 0");
  SPC_ASSIGN_OR_RETURN(Rope rope, Rope::Create(config));
  ThreadPool& pool = options.pool != nullptr ? *options.pool : ThreadPool::Shared();
  SPC_ASSIGN_OR_RETURN(CpuWeights weights, ConvertWeights(model, pool));
  return std::unique_ptr<CpuModelRunner>(
      new CpuModelRunner(config, layout, std::move(weights), std::move(rope), pool, options.probe));
}

CpuModelRunner::Rows CpuModelRunner::Pack(const BatchStep& batch) const {
  Rows rows;
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    const SequenceStep& seq = batch.sequences[s];
    const int n = static_cast<int>(seq.tokens.size());
    const int first = static_cast<int>(rows.sequence.size());
    rows.spans.push_back(
        {.first_row = first, .num_tokens = n, .start_position = seq.start_position});
    for (int i = 0; i < n; ++i) {
      if (seq.all_logits || i == n - 1) rows.logit_rows.push_back(first + i);
      rows.sequence.push_back(static_cast<int>(s));
      rows.position.push_back(seq.start_position + i);
      rows.token.push_back(seq.tokens[i]);
    }
    if (config_.rope_scaling.type == RopeScaling::Type::kDynamic || s == 0) {
      rows.inv_freq.push_back(rope_.InvFreq(static_cast<int64_t>(seq.start_position) + n));
    }
  }
  return rows;
}

void CpuModelRunner::PrepareAttention(int layer, const BatchStep& batch, const Rows& rows,
                                      const float* normed, std::vector<float>& qkv) const {
  const CpuLayerWeights& w = weights_.layers[layer];
  const int count = static_cast<int>(rows.sequence.size());
  const int q_size = config_.q_size(), kv_size = config_.kv_size();
  const int width = q_size + 2 * kv_size;
  MatmulNT(pool_, normed, w.qkv.data(), qkv.data(), count, width, config_.hidden_size);
  const float eps = static_cast<float>(config_.rms_norm_eps);
  pool_.ParallelFor(count, 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* q = qkv.data() + r * width;
      float* k = q + q_size;
      const float* v = k + kv_size;
      if (!w.qkv_bias.empty()) AddInPlace(q, w.qkv_bias.data(), width);
      if (!w.q_norm.empty()) {
        RmsNorm(q, w.q_norm.data(), q, config_.num_heads, config_.head_dim, eps);
        RmsNorm(k, w.k_norm.data(), k, config_.num_kv_heads, config_.head_dim, eps);
      }
      const int seq = rows.sequence[r];
      const std::vector<float>& freq = rows.inv_freq[rows.inv_freq.size() == 1 ? 0 : seq];
      rope_.Apply(q, config_.num_heads, rows.position[r], freq);
      rope_.Apply(k, config_.num_kv_heads, rows.position[r], freq);
      WriteKv(layout_, batch.sequences[seq].block_table[layer], rows.position[r], k, v);
    }
  });
}

void CpuModelRunner::ProbeSparseRows(int layer, const BatchStep& batch, const Rows& rows,
                                     const AttentionShape& shape, const float* qkv) const {
  const int width = config_.q_size() + 2 * config_.kv_size();
  std::vector<float> weights;
  for (size_t s = 0; s < rows.spans.size(); ++s) {
    const AttentionSpan& span = rows.spans[s];
    const std::vector<std::vector<int32_t>>& lists = batch.sequences[s].sparse_positions;
    if (lists.empty()) continue;
    const bool dense_layer = layer < batch.dense_layers;
    // A dense layer keeps all of its mass by construction: its weights need not be computed.
    weights.clear();
    if (!dense_layer) DenseAttentionWeights(pool_, layout_, shape, span, qkv, width, weights);
    probe_->Observe({.sequence = static_cast<int>(s),
                     .layer = layer,
                     .position = span.start_position,
                     .num_heads = config_.num_heads,
                     .num_kv_heads = config_.num_kv_heads,
                     .dense_weights = weights,
                     .attended = lists,
                     .dense_layer = dense_layer});
  }
}

Status CpuModelRunner::Step(const BatchStep& batch, StepOutput* out) {
  if (out == nullptr) return InvalidArgument("CPU backend: no output given");
  SPC_RETURN_IF_ERROR(ValidateBatch(batch, config_, layout_).WithContext("CPU backend"));
  const int hidden = config_.hidden_size;
  const int width = config_.q_size() + 2 * config_.kv_size();
  Rows packed = Pack(batch);
  const int rows = static_cast<int>(packed.sequence.size());

  std::vector<float> x(static_cast<size_t>(rows) * hidden);
  for (int r = 0; r < rows; ++r) {
    std::copy_n(weights_.embed.data() + static_cast<long>(packed.token[r]) * hidden, hidden,
                x.data() + static_cast<long>(r) * hidden);
  }

  std::vector<float> normed(x.size()), delta(x.size());
  std::vector<float> qkv(static_cast<size_t>(rows) * width);
  std::vector<float> attn(static_cast<size_t>(rows) * config_.q_size());
  const AttentionShape shape{.num_heads = config_.num_heads,
                             .sliding_window = config_.sliding_window,
                             .scale = 1.0f / std::sqrt(static_cast<float>(config_.head_dim))};
  const float eps = static_cast<float>(config_.rms_norm_eps);
  out->hidden.assign(batch.capture_layers.size() * x.size(), 0.0f);
  const auto capture = [&](int layer) {
    const size_t width = batch.capture_layers.size() * hidden;
    for (size_t j = 0; j < batch.capture_layers.size(); ++j) {
      if (batch.capture_layers[j] != layer) continue;
      for (int r = 0; r < rows; ++r) {
        std::copy_n(x.data() + static_cast<size_t>(r) * hidden, hidden,
                    out->hidden.data() + r * width + j * hidden);
      }
    }
  };
  for (int layer = 0; layer < config_.num_layers; ++layer) {
    const CpuLayerWeights& w = weights_.layers[layer];
    capture(layer);
    RmsNorm(x.data(), w.input_norm.data(), normed.data(), rows, hidden, eps);
    PrepareAttention(layer, batch, packed, normed.data(), qkv);
    const bool dense_layer = layer < batch.dense_layers;
    for (size_t s = 0; s < packed.spans.size(); ++s) {
      const SequenceStep& seq = batch.sequences[s];
      packed.spans[s].blocks = &seq.block_table[layer];
      packed.spans[s].sparse =
          dense_layer || seq.sparse_positions.empty() ? nullptr : &seq.sparse_positions;
    }
    PagedAttention(pool_, layout_, shape, packed.spans, qkv.data(), width, attn.data());
    if (probe_ != nullptr) ProbeSparseRows(layer, batch, packed, shape, qkv.data());
    MatmulNT(pool_, attn.data(), w.o.data(), delta.data(), rows, hidden, config_.q_size());
    AddInPlace(x.data(), delta.data(), x.size());

    RmsNorm(x.data(), w.post_norm.data(), normed.data(), rows, hidden, eps);
    GatedMlp(pool_, w, normed.data(), rows, hidden, config_.intermediate_size, delta.data());
    AddInPlace(x.data(), delta.data(), x.size());
  }
  capture(config_.num_layers);

  const std::vector<int>& logit_rows = packed.logit_rows;
  std::vector<float> last(static_cast<size_t>(logit_rows.size()) * hidden);
  for (size_t i = 0; i < logit_rows.size(); ++i) {
    RmsNorm(x.data() + static_cast<long>(logit_rows[i]) * hidden, weights_.final_norm.data(),
            last.data() + i * hidden, 1, hidden, eps);
  }
  out->vocab_size = config_.vocab_size;
  out->logits.resize(logit_rows.size() * config_.vocab_size);
  MatmulNT(pool_, last.data(), weights_.logits_matrix(), out->logits.data(),
           static_cast<int>(logit_rows.size()), config_.vocab_size, hidden);
  return Status::Ok();
}

}  // namespace specontext::cpu
