// `specontext serve` options. Each comes, lowest precedence first, from its default, the YAML
// file (--config / SPECONTEXT_CONFIG), a SPECONTEXT_<KEY> environment variable, or the --<key>
// flag. Everything is validated before start-up: an unknown YAML key or an impossible value
// stops the daemon with a message naming the key and where it came from.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/specontext/step_planner.h"
#include "server/http_server.h"

namespace specontext::server {

struct ServeConfig {
  std::string model;              // empty: the prepared default model
  std::string served_model_name;  // empty: derived from the model
  HttpServerOptions http;
  std::vector<std::string> api_keys;  // from api_key and api_key_file; empty: no auth
  std::string api_key_file;
  std::chrono::milliseconds ready_timeout{10000};  // heartbeat silence that fails /ready
  std::string log_level = "info";

  // Engine sizing; 0 for max_model_len means the model's own context length.
  std::string backend = "auto";  // auto, cpu or cuda
  int max_model_len = 0;
  double kv_host_gib = 2.0;
  double kv_gpu_gib = 0.0;        // the GPU KV tier; emulated in host memory on the CPU backend
  double kv_gpu_fraction = 0.85;  // with kv_gpu_gib 0 on a GPU: the tier's share of free memory
  double kv_nvme_gib = 0.0;       // the NVMe KV tier, in kv_nvme_path
  // GPU memory for elastic slots the GPU KV tier does not lend (0: as much as the device gives).
  double elastic_slot_gib = 0.0;
  std::string kv_nvme_path;
  bool prefix_caching = true;        // reuse KV of prompt prefixes already computed
  int max_num_seqs = 64;             // sequences in one engine step
  int max_num_batched_tokens = 512;  // prefill + decode tokens in one step
  int max_waiting = 256;             // queued requests beyond this get 429
  int grpc_port = -1;                // -1: no gRPC server; 0: pick a free port
  // After SIGTERM: how long in-flight requests may run before they are aborted.
  std::chrono::seconds drain_timeout{30};

  // SpeContext: what requests that do not choose run, and the retrieval head (from
  // draft_model) that selects positions for those running specontext. Without a draft model
  // only dense is served.
  AttentionMode attention = AttentionMode::kDense;
  int64_t sparse_budget = 2048;  // positions per KV head, the token's own included
  std::string draft_model;
  int64_t sparse_sinks = 4;              // first positions always kept (attention sinks)
  int64_t sparse_window = 0;             // most recent positions always kept
  bool retrieval_hidden = true;          // the head reads the target's hidden states (EAGLE-3)
  double dense_fallback_mass = 0.0;      // a step whose selection carries less runs dense; 0: never
  double sparse_redo_probability = 0.0;  // an unsure sparse step runs again densely; 0: never
  int sparse_dense_layers = 0;           // the first N layers attend densely in sparse steps
  double sparse_memory_decay = 0.995;  // a position ranks by at least this share of its last weight
};

// Reads one environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnvironment();

class ServeConfigLoader {
 public:
  ServeConfigLoader();

  // One flag per option (--host, --port, ...) plus --config.
  void AddFlags(CLI::App& command);
  // Combines defaults, the YAML file, the environment and the flags seen by the parse.
  Result<ServeConfig> Load(const EnvLookup& env) const;

 private:
  // Flag values as given, by option key; shared with the CLI11 callbacks.
  std::shared_ptr<std::map<std::string, std::string>> flags_;
};

}  // namespace specontext::server
