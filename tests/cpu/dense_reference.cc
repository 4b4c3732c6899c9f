#include "tests/cpu/dense_reference.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace specontext::testing {
namespace {

using Matrix = std::vector<std::vector<double>>;  // [rows][cols]

class Weights {
 public:
  explicit Weights(const Model& model) : model_(model) {}
  const TensorView& Get(const std::string& name) const {
    const TensorView* t = model_.weights.Find(name);
    if (t == nullptr) throw std::runtime_error("missing " + name);
    return *t;
  }
  bool Has(const std::string& name) const { return model_.weights.Find(name) != nullptr; }

 private:
  const Model& model_;
};

// y = x · Wᵀ (+ b) with W [out, in] read element by element from the tensor.
Matrix Linear(const Matrix& x, const TensorView& w, const TensorView* bias = nullptr) {
  const int64_t out = w.shape[0], in = w.shape[1];
  Matrix y(x.size(), std::vector<double>(out));
  for (size_t r = 0; r < x.size(); ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double acc = bias ? bias->At(o) : 0.0;
      for (int64_t i = 0; i < in; ++i) acc += x[r][i] * w.At(o * in + i);
      y[r][o] = acc;
    }
  }
  return y;
}

void RmsNormSlice(double* v, int n, const TensorView& weight, double eps) {
  double ms = 0.0;
  for (int i = 0; i < n; ++i) ms += v[i] * v[i];
  const double inv = 1.0 / std::sqrt(ms / n + eps);
  for (int i = 0; i < n; ++i) v[i] = v[i] * inv * weight.At(i);
}

void RotateHalf(double* v, int head_dim, int position, double theta) {
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    const double angle = position / std::pow(theta, 2.0 * i / head_dim);
    const double a = v[i], b = v[i + half];
    v[i] = a * std::cos(angle) - b * std::sin(angle);
    v[i + half] = b * std::cos(angle) + a * std::sin(angle);
  }
}

// Whether token t may attend to position s through KV head kv_head in `layer` (beyond
// causality).
using Visibility = std::function<bool(int layer, int t, int kv_head, int s)>;

std::vector<double> ReferenceLogits(const Model& model, const std::vector<int32_t>& tokens,
                                    const Visibility& visible) {
  const ModelConfig& c = model.config;
  const Weights w(model);
  const int n = static_cast<int>(tokens.size());
  const int hd = c.head_dim;
  Matrix x(n, std::vector<double>(c.hidden_size));
  const TensorView& embed = w.Get("model.embed_tokens.weight");
  for (int t = 0; t < n; ++t) {
    for (int i = 0; i < c.hidden_size; ++i)
      x[t][i] = embed.At(int64_t(tokens[t]) * c.hidden_size + i);
  }
  for (int layer = 0; layer < c.num_layers; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    Matrix h = x;
    for (auto& row : h)
      RmsNormSlice(row.data(), c.hidden_size, w.Get(p + "input_layernorm.weight"), c.rms_norm_eps);
    const auto bias = [&](const char* name) {
      return c.qkv_bias ? &w.Get(p + "self_attn." + name + ".bias") : nullptr;
    };
    Matrix q = Linear(h, w.Get(p + "self_attn.q_proj.weight"), bias("q_proj"));
    Matrix k = Linear(h, w.Get(p + "self_attn.k_proj.weight"), bias("k_proj"));
    Matrix v = Linear(h, w.Get(p + "self_attn.v_proj.weight"), bias("v_proj"));
    for (int t = 0; t < n; ++t) {
      for (int head = 0; head < c.num_heads; ++head) {
        if (c.qk_norm)
          RmsNormSlice(&q[t][head * hd], hd, w.Get(p + "self_attn.q_norm.weight"), c.rms_norm_eps);
        RotateHalf(&q[t][head * hd], hd, t, c.rope_theta);
      }
      for (int head = 0; head < c.num_kv_heads; ++head) {
        if (c.qk_norm)
          RmsNormSlice(&k[t][head * hd], hd, w.Get(p + "self_attn.k_norm.weight"), c.rms_norm_eps);
        RotateHalf(&k[t][head * hd], hd, t, c.rope_theta);
      }
    }
    Matrix attn(n, std::vector<double>(c.q_size(), 0.0));
    const int group = c.num_heads / c.num_kv_heads;
    for (int t = 0; t < n; ++t) {
      for (int head = 0; head < c.num_heads; ++head) {
        const int kvh = head / group;
        std::vector<double> scores(t + 1, -INFINITY);
        double max_score = -INFINITY;
        for (int s = 0; s <= t; ++s) {
          if (c.sliding_window > 0 && t - s >= c.sliding_window) continue;
          if (!visible(layer, t, kvh, s)) continue;
          double dot = 0.0;
          for (int i = 0; i < hd; ++i) dot += q[t][head * hd + i] * k[s][kvh * hd + i];
          scores[s] = dot / std::sqrt(static_cast<double>(hd));
          max_score = std::max(max_score, scores[s]);
        }
        double total = 0.0;
        for (double& sc : scores) total += sc = std::exp(sc - max_score);
        for (int s = 0; s <= t; ++s) {
          for (int i = 0; i < hd; ++i)
            attn[t][head * hd + i] += scores[s] / total * v[s][kvh * hd + i];
        }
      }
    }
    Matrix o = Linear(attn, w.Get(p + "self_attn.o_proj.weight"));
    for (int t = 0; t < n; ++t) {
      for (int i = 0; i < c.hidden_size; ++i) x[t][i] += o[t][i];
    }
    h = x;
    for (auto& row : h)
      RmsNormSlice(row.data(), c.hidden_size, w.Get(p + "post_attention_layernorm.weight"),
                   c.rms_norm_eps);
    Matrix gate = Linear(h, w.Get(p + "mlp.gate_proj.weight"));
    const Matrix up = Linear(h, w.Get(p + "mlp.up_proj.weight"));
    for (int t = 0; t < n; ++t) {
      for (int i = 0; i < c.intermediate_size; ++i) {
        gate[t][i] = gate[t][i] / (1.0 + std::exp(-gate[t][i])) * up[t][i];
      }
    }
    const Matrix down = Linear(gate, w.Get(p + "mlp.down_proj.weight"));
    for (int t = 0; t < n; ++t) {
      for (int i = 0; i < c.hidden_size; ++i) x[t][i] += down[t][i];
    }
  }
  for (auto& row : x)
    RmsNormSlice(row.data(), c.hidden_size, w.Get("model.norm.weight"), c.rms_norm_eps);
  const Matrix logits =
      Linear(x, w.Get(w.Has("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight"));
  std::vector<double> flat;
  for (const auto& row : logits) flat.insert(flat.end(), row.begin(), row.end());
  return flat;
}

}  // namespace

std::vector<double> DenseReferenceLogits(const Model& model, const std::vector<int32_t>& tokens) {
  return ReferenceLogits(model, tokens, [](int, int, int, int) { return true; });
}

std::vector<double> MaskedReferenceLogits(const Model& model, const std::vector<int32_t>& tokens,
                                          const std::vector<std::vector<int32_t>>& last_visible,
                                          int dense_layers) {
  const int last = static_cast<int>(tokens.size()) - 1;
  return ReferenceLogits(model, tokens, [&](int layer, int t, int kv_head, int s) {
    if (t != last || layer < dense_layers) return true;
    const auto& list = last_visible[kv_head];
    return std::binary_search(list.begin(), list.end(), s);
  });
}

}  // namespace specontext::testing
