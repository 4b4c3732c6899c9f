#include "server/attention_cli.h"

#include <cstdint>

namespace specontext::server {

void AddEngineOptions(CLI::App* cmd, std::string* backend, ServingModelOptions* model) {
  cmd->add_option("--backend", *backend, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--max-model-len", model->max_model_len, "Context length (default: the model's)");
  cmd->add_option("--kv-gpu-gib", model->kv_gpu_gib,
                  "GPU KV tier in GiB (0: a share of free GPU memory); a small tier makes the "
                  "memory manager offload layers to host memory")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--kv-gpu-fraction", model->kv_gpu_fraction,
                  "With --kv-gpu-gib 0: the GPU tier's share of the GPU memory free once the "
                  "model is loaded")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--kv-host-gib", model->kv_host_gib, "Host KV tier in GiB")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--elastic-slot-gib", model->elastic_slot_gib,
                  "GPU memory for elastic slots the KV store does not lend (0: no cap)")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--prefix-caching", model->prefix_caching,
                  "Reuse the KV of prompt prefixes already computed (true or false)")
      ->capture_default_str();
}

void ApplyBackendOption(const std::string& backend, ServingModelOptions* model) {
  // The flag's own check admits only the three names.
  model->backend = backend == "cpu"    ? Backend::kCpu
                   : backend == "cuda" ? Backend::kCuda
                                       : Backend::kAuto;
}

void AddAttentionOptions(CLI::App* cmd, std::string* attention, ServingModelOptions* model) {
  cmd->add_option("--attention", *attention, "dense or specontext (needs --draft-model)")
      ->check(CLI::IsMember({"dense", "specontext"}))
      ->capture_default_str();
  cmd->add_option("--draft-model", model->draft_model,
                  "The retrieval head's checkpoint (an EAGLE-3 draft or a small model), or "
                  "'random' for a head of random weights (benchmarks)");
  cmd->add_option("--sparse-budget", model->specontext.budget,
                  "Positions per KV head a sparse step attends to")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->capture_default_str();
  cmd->add_option("--sparse-sinks", model->specontext.sink_tokens,
                  "First positions every sparse step keeps")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24))
      ->capture_default_str();
  cmd->add_option("--sparse-window", model->specontext.recent_window,
                  "Most recent positions every sparse step keeps, its own included")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->capture_default_str();
  cmd->add_option("--dense-fallback-mass", model->specontext.fallback_mass_threshold,
                  "A sparse step whose selection carries less of the head's attention mass runs "
                  "dense (0: never)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--sparse-redo-probability", model->specontext.redo_probability,
                  "A sparse decode step whose most likely next token has a lower probability runs "
                  "again densely before it is sampled (0: never)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--sparse-memory-decay", model->specontext.memory_decay,
                  "Each position ranks by at least this share of its last ranking weight, so "
                  "what the head found stays selected while it is copied (0: off)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--sparse-dense-layers", model->specontext.dense_layers,
                  "The first N layers attend to every position in sparse steps")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  cmd->add_option("--retrieval-hidden", model->specontext.hidden_input,
                  "An EAGLE-3 retrieval head reads the target's hidden states (false: zeros)")
      ->capture_default_str();
}

Status ApplyAttentionOption(const std::string& attention, ServingModelOptions* model) {
  // The flag's own check admits only the two names.
  model->specontext.server_mode = AttentionModeNamed(attention).value_or(AttentionMode::kDense);
  if (model->specontext.server_mode == AttentionMode::kSpecontext && model->draft_model.empty()) {
    return InvalidArgument("--attention specontext needs --draft-model");
  }
  return Status::Ok();
}

}  // namespace specontext::server
