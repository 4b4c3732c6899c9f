// Everything one served model needs, assembled at start-up: weights on a backend, tokenizer,
// chat template, a KV store sized from the configuration, and the engine loop. I/O threads use
// the tokenizer and template (const, thread-safe) and submit to the engine loop.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "engine/attention_probe.h"
#include "engine/chat_template/chat_template.h"
#include "engine/model/default_model_path.h"
#include "engine/model/model.h"
#include "engine/model_runner.h"
#include "engine/specontext/specontext_planner.h"
#include "engine/tokenizer/tokenizer.h"
#include "kv_store/kv_store.h"
#include "scheduler/engine_loop.h"
#include "scheduler/store_sequence_kv.h"

namespace specontext::server {

enum class Backend { kAuto, kCpu, kCuda };

struct ServingModelOptions;

// ServingModelOptions::draft_model naming a head of random weights (RetrievalHead::Random): for
// benchmarking SpeContext on presets, which have no trained draft.
inline constexpr std::string_view kRandomDraft = "random";

// The GPU KV tier in GiB: kv_gpu_gib when given; else, on a GPU, kv_gpu_fraction of the device
// memory still free (`free_bytes`, read once the weights, the runner's workspaces and the
// retrieval head are allocated), as vLLM's --gpu-memory-utilization leaves the rest to
// activations (SpeContext's elastic slots are lent from the tier); else 0 (no GPU tier: the
// CPU backend).
double KvGpuTierGib(const ServingModelOptions& options, bool uses_gpu, size_t free_bytes);

struct ServingModelOptions {
  std::string model;        // directory or preset:NAME
  std::string served_name;  // empty: the directory's name
  Backend backend = Backend::kAuto;
  int max_model_len = 0;          // 0: the model's max_position_embeddings
  double kv_host_gib = 2.0;       // host (pinned when a GPU is used) KV tier
  double kv_gpu_fraction = 0.85;  // with kv_gpu_gib 0 on a GPU: the tier's share of free memory
  double kv_gpu_gib = 0.0;        // the GPU KV tier (0: KvGpuTierGib's share); emulated in host
                                  // memory on the CPU backend
  double kv_nvme_gib = 0.0;
  std::string kv_nvme_path;
  // CudaRunnerOptions::elastic_slot_bytes, in GiB (0: no cap): slots the GPU tier does not lend.
  double elastic_slot_gib = 0.0;
  bool prefix_caching = true;
  int block_tokens = 16;
  SchedulerOptions scheduler;
  EngineObserver* observer = nullptr;               // must outlive the ServingModel
  PlacementObserver* placement_observer = nullptr;  // KV tiers and memory decisions; likewise
  // SpeContext: the retrieval head's checkpoint (empty: no planner, only dense is served; or
  // kRandomDraft) and
  // how the planner selects (server mode, budget, sinks, window, dense fallback).
  std::string draft_model;
  SpecontextPlannerOptions specontext;
  // Sees the target's attention on sparse decode steps (recall measurement; CPU backend only).
  AttentionProbe* probe = nullptr;
};

class ServingModel {
 public:
  static Result<std::unique_ptr<ServingModel>> Create(const ServingModelOptions& options);
  ~ServingModel();

  const std::string& name() const { return name_; }
  const ModelConfig& config() const { return config_; }
  int max_model_len() const { return max_model_len_; }
  // Absent for presets (random weights have no vocabulary): only token-id prompts then.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  const chat_template::ChatTemplate* chat_template() const {
    return chat_template_ ? &*chat_template_ : nullptr;
  }
  const chat_template::SpecialTokens& special_tokens() const { return special_tokens_; }
  const std::vector<int32_t>& eos_token_ids() const { return eos_token_ids_; }
  const GenerationDefaults& generation_defaults() const { return generation_; }
  EngineLoop& engine() { return *engine_; }
  // Read when no step runs (the engine thread updates them).
  ElasticLoadStats elastic_stats() const { return runner_->elastic_stats(); }
  SpecontextCounters specontext_counters() const {
    return planner_ ? planner_->counters() : SpecontextCounters{};
  }
  KvStore& kv_store() { return *store_; }
  std::string_view backend_name() const { return backend_name_; }

 private:
  ServingModel() = default;
  Status LoadTokenizer(const std::string& dir);
  Status CreateRunner(const Model& model, const ServingModelOptions& options);
  Status CreateKvStore(const ServingModelOptions& options);
  Status CreatePlanner(std::unique_ptr<Model> target, const ServingModelOptions& options);

  std::string name_;
  ModelConfig config_;
  GenerationDefaults generation_;
  int max_model_len_ = 0;
  std::vector<int32_t> eos_token_ids_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::optional<chat_template::ChatTemplate> chat_template_;
  chat_template::SpecialTokens special_tokens_;
  std::string backend_name_;
  bool uses_gpu_ = false;
  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<StoreSequenceKv> sequence_kv_;
  // Kept only with a planner: the retrieval head may read the target's embedding table.
  std::unique_ptr<Model> planner_target_;
  std::unique_ptr<StepPlanner> planner_;  // declared before engine_, which uses it
  std::unique_ptr<EngineLoop> engine_;
};

using specontext::DefaultModelPath;

}  // namespace specontext::server
