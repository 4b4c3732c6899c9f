#include <algorithm>
#include <string>
#include <vector>

#include "engine/model/random_fill.h"
#include "engine/specontext/retrieval_head.h"

namespace specontext {

Result<std::unique_ptr<RetrievalHead>> RetrievalHead::Random(const Model& target,
                                                             const RetrievalHeadOptions& options,
                                                             uint64_t seed) {
  ModelConfig config = target.config;
  // The plainest layer of that shape: no bias, no per-head norm.
  config.qkv_bias = false;
  config.qk_norm = false;
  auto rope = cpu::Rope::Create(config);
  if (!rope.ok()) return rope.status().WithContext("random retrieval head: RoPE");
  const TensorView* embedding = target.weights.Find("model.embed_tokens.weight");
  if (embedding == nullptr) {
    return NotFound("random retrieval head: the target has no model.embed_tokens.weight");
  }
  std::unique_ptr<RetrievalHead> head(new RetrievalHead(std::move(rope).value()));
  head->source_ = Source::kEagle3;
  head->config_ = config;
  head->embedding_ = *embedding;
  const int hidden = config.hidden_size;
  const bool hidden_path = options.load_hidden_path;
  head->input_norm_.assign(static_cast<size_t>(hidden), 1.0f);

  std::vector<FillJob> jobs;
  uint64_t stream = seed * 0x9e3779b97f4a7c15ULL;
  const auto random = [&](std::vector<float>& values, size_t count) {
    values.resize(count);
    jobs.push_back({.data = reinterpret_cast<std::byte*>(values.data()),
                    .dtype = DType::kF32,
                    .count = static_cast<int64_t>(count),
                    .seed = ++stream,
                    .stddev = 0.02f});
  };
  for (auto [proj, heads] :
       {std::pair{&head->q_, config.num_heads}, std::pair{&head->k_, config.num_kv_heads}}) {
    proj->heads = heads;
    const size_t size = static_cast<size_t>(heads) * config.head_dim * hidden;
    random(proj->embed_half, size);
    if (hidden_path) random(proj->hidden_half, size);
  }
  if (hidden_path) {
    const int layers = config.num_layers;
    head->fused_hidden_size_ = 3 * hidden;
    head->aux_layer_ids_ = {std::min(2, layers), layers / 2, std::max(layers - 3, 0)};
    head->hidden_norm_.assign(static_cast<size_t>(hidden), 1.0f);
    random(head->fc_, static_cast<size_t>(hidden) * 3 * hidden);
  }
  // The vectors are sized before any job runs: their buffers no longer move.
  FillRandom(jobs);
  return head;
}

}  // namespace specontext
