#include "engine/specontext/retrieval_head.h"

#include <string>

#include "engine/cpu/matmul.h"
#include "engine/cpu/rmsnorm.h"

namespace specontext {

void RetrievalHead::ProjectOne(const Projection& p, const float* x, const float* f, int rows,
                               int32_t start, const std::vector<float>& inv_freq, float* out,
                               cpu::ThreadPool& pool) const {
  const int hidden = config_.hidden_size;
  const int width = p.heads * config_.head_dim;
  cpu::MatmulNT(pool, x, p.embed_half.data(), out, rows, width, hidden);
  if (f != nullptr) {
    std::vector<float> extra(static_cast<size_t>(rows) * width);
    cpu::MatmulNT(pool, f, p.hidden_half.data(), extra.data(), rows, width, hidden);
    for (size_t i = 0; i < extra.size(); ++i) out[i] += extra[i];
  }
  if (!p.bias.empty()) {
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < width; ++c) out[static_cast<size_t>(r) * width + c] += p.bias[c];
    }
  }
  if (!p.head_norm.empty()) {
    cpu::RmsNorm(out, p.head_norm.data(), out, rows * p.heads, config_.head_dim,
                 static_cast<float>(config_.rms_norm_eps));
  }
  for (int r = 0; r < rows; ++r) {
    rope_.Apply(out + static_cast<size_t>(r) * width, p.heads, start + r, inv_freq);
  }
}

Status RetrievalHead::Project(std::span<const int32_t> tokens, int32_t start_position,
                              std::span<const float> fused_hidden, float* q, float* k,
                              cpu::ThreadPool& pool) const {
  const int rows = static_cast<int>(tokens.size());
  const int hidden = config_.hidden_size;
  if (rows == 0) return Status::Ok();
  if (start_position < 0) return InvalidArgument("retrieval head: negative start_position");
  if (!fused_hidden.empty()) {
    if (fused_hidden_size_ == 0) {
      return FailedPrecondition(
          "retrieval head: a fused hidden state was given but the hidden path is not loaded "
          "(RetrievalHeadOptions::load_hidden_path)");
    }
    if (fused_hidden.size() != static_cast<size_t>(rows) * fused_hidden_size_) {
      return InvalidArgument("retrieval head: fused hidden state has " +
                             std::to_string(fused_hidden.size()) + " values, expected " +
                             std::to_string(rows) + " × " + std::to_string(fused_hidden_size_));
    }
  }
  const int64_t vocab = embedding_.shape[0];
  std::vector<float> x(static_cast<size_t>(rows) * hidden);
  for (int r = 0; r < rows; ++r) {
    const int32_t token = tokens[r];
    if (token < 0 || token >= vocab) {
      return OutOfRange("retrieval head: token " + std::to_string(token) +
                        " is outside the embedding table (" + std::to_string(vocab) + " rows)");
    }
    const int64_t base = int64_t{token} * hidden;
    for (int c = 0; c < hidden; ++c)
      x[static_cast<size_t>(r) * hidden + c] = embedding_.At(base + c);
  }
  const float eps = static_cast<float>(config_.rms_norm_eps);
  cpu::RmsNorm(x.data(), input_norm_.data(), x.data(), rows, hidden, eps);

  std::vector<float> f;
  if (!fused_hidden.empty()) {
    f.resize(static_cast<size_t>(rows) * hidden);
    cpu::MatmulNT(pool, fused_hidden.data(), fc_.data(), f.data(), rows, hidden,
                  fused_hidden_size_);
    cpu::RmsNorm(f.data(), hidden_norm_.data(), f.data(), rows, hidden, eps);
  }
  const std::vector<float> inv_freq = rope_.InvFreq(int64_t{start_position} + rows);
  const float* f_ptr = f.empty() ? nullptr : f.data();
  if (q != nullptr) ProjectOne(q_, x.data(), f_ptr, rows, start_position, inv_freq, q, pool);
  if (k != nullptr) ProjectOne(k_, x.data(), f_ptr, rows, start_position, inv_freq, k, pool);
  return Status::Ok();
}

RetrievalHeadWeights RetrievalHead::weights() const {
  return {.embedding = &embedding_,
          .own_embedding = own_weights_ != nullptr,
          .input_norm = input_norm_,
          .q_embed = q_.embed_half,
          .k_embed = k_.embed_half,
          .q_bias = q_.bias,
          .k_bias = k_.bias,
          .q_norm = q_.head_norm,
          .k_norm = k_.head_norm,
          .fc = fc_,
          .hidden_norm = hidden_norm_,
          .q_hidden = q_.hidden_half,
          .k_hidden = k_.hidden_half};
}

}  // namespace specontext
