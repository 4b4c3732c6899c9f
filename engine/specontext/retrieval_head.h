// The SpeContext retrieval head: the embedding lookup and the Q/K projections (with their RoPE)
// of one decoder layer of a small model that shares the target's tokenizer and attention shape.
// Two sources: an EAGLE-3 draft checkpoint (its single layer reads [embedding ; fused target
// hidden state], so q_proj/k_proj are 2H wide) or any Llama-family "DLM" (layer 0, H wide).
// Everything else of that model (V, O, MLP, LM head) is dropped; the kept weights are fp32.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/cpu/rope.h"
#include "engine/cpu/thread_pool.h"
#include "engine/model/model.h"

namespace specontext {

struct RetrievalHeadOptions {
  // The head's own RoPE by default: an EAGLE-3 draft without rope_theta was trained with 10000,
  // not with the target's base.
  bool rope_from_target = false;
  // > 1: YaRN by this factor over the head's max_position_embeddings (replacing any scaling the
  // config has), so a draft trained on short contexts still ranks positions far beyond them.
  double yarn_factor = 0.0;
  // EAGLE-3 drafts: also keep fc, hidden_norm and the hidden half of q_proj/k_proj so Project
  // can take the target's fused hidden state instead of zeros. Ignored for a plain model layer.
  bool load_hidden_path = false;
};

// What a device copy of the head needs: fp32 views into the head.
struct RetrievalHeadWeights {
  const TensorView* embedding = nullptr;  // the head's own table, or the target's
  bool own_embedding = false;
  std::span<const float> input_norm;        // [H]
  std::span<const float> q_embed, k_embed;  // [heads·head_dim][H]: the embedding half
  std::span<const float> q_bias, k_bias;    // empty without bias
  std::span<const float> q_norm, k_norm;    // [head_dim] (Qwen3), or empty
  // The hidden path (empty without it): fc [H][fused], hidden_norm [H], and the hidden half of
  // q_proj / k_proj, [heads·head_dim][H].
  std::span<const float> fc, hidden_norm, q_hidden, k_hidden;
};

class RetrievalHead {
 public:
  enum class Source { kEagle3, kDlm };

  // `dir` holds config.json and model.safetensors (or shards with model.safetensors.index.json).
  // The head's attention shape must equal the target's. When the checkpoint has no embedding the
  // head borrows the target's table: `target` must then outlive the head.
  static Result<std::unique_ptr<RetrievalHead>> Load(const std::string& dir, const Model& target,
                                                     const RetrievalHeadOptions& options);
  // A head of the target's attention shape with seeded random weights (EAGLE-3 layout, with the
  // hidden path when options.load_hidden_path): selections are arbitrary, but the work per step
  // is a real head's, so a preset target can be benchmarked end to end. Borrows the target's
  // embedding: `target` must outlive the head.
  static Result<std::unique_ptr<RetrievalHead>> Random(const Model& target,
                                                       const RetrievalHeadOptions& options,
                                                       uint64_t seed = 1);

  Source source() const { return source_; }
  const ModelConfig& config() const { return config_; }
  int num_heads() const { return config_.num_heads; }
  int num_kv_heads() const { return config_.num_kv_heads; }
  int head_dim() const { return config_.head_dim; }
  // Width of one token's fused target hidden state (3·target hidden); 0 without the hidden path.
  int fused_hidden_size() const { return fused_hidden_size_; }
  // With the hidden path: the target layers whose inputs make the fused state (low, middle,
  // high; 0 is the embedding), in the order the fused state concatenates them.
  const std::vector<int>& aux_layer_ids() const { return aux_layer_ids_; }
  const cpu::Rope& rope() const { return rope_; }
  RetrievalHeadWeights weights() const;

  // q ([tokens][num_heads·head_dim]) and k ([tokens][num_kv_heads·head_dim]) after RoPE, for
  // tokens at positions start_position, start_position + 1, ...; either output may be null.
  // `fused_hidden` is empty (the hidden half of the input is zero) or
  // [tokens][fused_hidden_size()]: the target's (h_low, h_mid, h_high) for each token.
  Status Project(std::span<const int32_t> tokens, int32_t start_position,
                 std::span<const float> fused_hidden, float* q, float* k,
                 cpu::ThreadPool& pool) const;

 private:
  struct Projection {
    std::vector<float> embed_half;   // [rows][H]: acts on the normalised embedding
    std::vector<float> hidden_half;  // [rows][H]: acts on the normalised fc output (optional)
    std::vector<float> bias;         // Qwen2
    std::vector<float> head_norm;    // Qwen3: RMSNorm weight over each head before RoPE
    int heads = 0;
  };

  RetrievalHead(cpu::Rope rope) : rope_(std::move(rope)) {}
  void ProjectOne(const Projection& p, const float* x, const float* f, int rows, int32_t start,
                  const std::vector<float>& inv_freq, float* out, cpu::ThreadPool& pool) const;
  friend class RetrievalHeadLoader;

  Source source_ = Source::kDlm;
  ModelConfig config_;
  cpu::Rope rope_;
  // The embedding table (any float dtype), in the head's own weights or the target's.
  TensorView embedding_;
  std::shared_ptr<WeightStore> own_weights_;
  std::vector<float> input_norm_;
  Projection q_;
  Projection k_;
  // Hidden path: f = fc · fused, normalised by hidden_norm.
  std::vector<float> fc_;
  std::vector<float> hidden_norm_;
  int fused_hidden_size_ = 0;
  std::vector<int> aux_layer_ids_;
};

}  // namespace specontext
