#include "server/serve_config.h"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <cstdlib>
#include <limits>

#include "server/auth.h"

namespace specontext::server {

namespace {

using Parser = Status (*)(const std::string& value, ServeConfig* config);

struct Setting {
  const char* key;  // YAML key; flag --key with '-' for '_'; env SPECONTEXT_KEY
  const char* help;
  Parser parse;
};

Result<int64_t> ParseInteger(const std::string& value, int64_t lo, int64_t hi) {
  int64_t number = 0;
  const char* end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data(), end, number);
  if (ec != std::errc() || ptr != end || number < lo || number > hi) {
    return InvalidArgument("must be an integer in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "]");
  }
  return number;
}

// `allow_zero` for tiers that are optional (0 turns them off).
Status SetGib(const std::string& value, double* field, bool allow_zero = false) {
  double number = 0;
  const char* end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data(), end, number);
  if (ec != std::errc() || ptr != end || !(allow_zero ? number >= 0 : number > 0) ||
      number > 1 << 20) {
    return InvalidArgument(allow_zero ? "must be a number of GiB, 0 or more"
                                      : "must be a positive number of GiB");
  }
  *field = number;
  return Status::Ok();
}

template <typename Field, int64_t kLo, int64_t kHi>
Status SetInteger(const std::string& value, Field* field) {
  SPC_ASSIGN_OR_RETURN(const int64_t number, ParseInteger(value, kLo, kHi));
  *field = static_cast<Field>(number);
  return Status::Ok();
}

template <int64_t kLo, int64_t kHi>
Status SetSeconds(const std::string& value, std::chrono::seconds* field) {
  SPC_ASSIGN_OR_RETURN(const int64_t number, ParseInteger(value, kLo, kHi));
  *field = std::chrono::seconds(number);
  return Status::Ok();
}

Status SetBool(const std::string& value, bool* field) {
  if (value == "true" || value == "1") {
    *field = true;
  } else if (value == "false" || value == "0") {
    *field = false;
  } else {
    return InvalidArgument("must be true or false");
  }
  return Status::Ok();
}

Status SetFraction(const std::string& value, double* field) {
  double number = 0;
  const char* end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data(), end, number);
  if (ec != std::errc() || ptr != end || !(number >= 0.0 && number <= 1.0)) {
    return InvalidArgument("must be a number in [0, 1]");
  }
  *field = number;
  return Status::Ok();
}

// Settings that are each valid alone but not together.
Status CheckSpecontext(const ServeConfig& config) {
  if (config.attention == AttentionMode::kSpecontext && config.draft_model.empty()) {
    return InvalidArgument("attention 'specontext' needs a retrieval head: set draft_model");
  }
  if (config.sparse_sinks + config.sparse_window > config.sparse_budget) {
    return InvalidArgument("sparse_sinks + sparse_window (" +
                           std::to_string(config.sparse_sinks + config.sparse_window) +
                           ") exceed sparse_budget (" + std::to_string(config.sparse_budget) +
                           "): nothing would be left to select");
  }
  return Status::Ok();
}

std::vector<std::string> SplitList(const std::string& value) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= value.size()) {
    const size_t comma = std::min(value.find(',', start), value.size());
    if (comma > start) items.push_back(value.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> settings = {
      {"model", "Hugging Face model directory, or preset:NAME for random weights",
       [](const std::string& v, ServeConfig* c) {
         c->model = v;
         return Status::Ok();
       }},
      {"served_model_name", "Model name clients send and responses report",
       [](const std::string& v, ServeConfig* c) {
         c->served_model_name = v;
         return Status::Ok();
       }},
      {"host", "Address to listen on",
       [](const std::string& v, ServeConfig* c) {
         boost::system::error_code ec;
         boost::asio::ip::make_address(v, ec);
         if (ec) return InvalidArgument("must be an IP address");
         c->http.host = v;
         return Status::Ok();
       }},
      {"port", "HTTP port (0 picks a free one)",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<uint16_t, 0, 65535>(v, &c->http.port);
       }},
      {"io_threads", "HTTP I/O threads",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<int, 1, 256>(v, &c->http.io_threads);
       }},
      {"max_body_bytes", "Largest request body accepted (413 beyond)",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<size_t, 1024, (int64_t{1} << 30)>(v, &c->http.max_body_bytes);
       }},
      {"read_timeout_s", "Seconds a client may take to send one request",
       [](const std::string& v, ServeConfig* c) {
         return SetSeconds<1, 3600>(v, &c->http.read_timeout);
       }},
      {"write_timeout_s", "Seconds one write may wait on a client that stopped reading",
       [](const std::string& v, ServeConfig* c) {
         return SetSeconds<1, 3600>(v, &c->http.write_timeout);
       }},
      {"idle_timeout_s", "Seconds an idle keep-alive connection stays open",
       [](const std::string& v, ServeConfig* c) {
         return SetSeconds<1, 86400>(v, &c->http.idle_timeout);
       }},
      {"api_key", "API key(s) clients must send as 'Authorization: Bearer KEY' (comma-separated)",
       [](const std::string& v, ServeConfig* c) {
         c->api_keys = SplitList(v);
         if (c->api_keys.empty()) return InvalidArgument("must name at least one key");
         return Status::Ok();
       }},
      {"api_key_file", "File with one API key per line",
       [](const std::string& v, ServeConfig* c) {
         c->api_key_file = v;
         return Status::Ok();
       }},
      {"ready_timeout_ms", "Engine heartbeat silence after which /ready reports 503",
       [](const std::string& v, ServeConfig* c) {
         SPC_ASSIGN_OR_RETURN(const int64_t ms, ParseInteger(v, 100, 3600000));
         c->ready_timeout = std::chrono::milliseconds(ms);
         return Status::Ok();
       }},
      {"log_level", "trace, debug, info, warn, error or off",
       [](const std::string& v, ServeConfig* c) {
         if (v != "off" && spdlog::level::from_str(v) == spdlog::level::off) {
           return InvalidArgument("must be trace, debug, info, warn, error or off");
         }
         c->log_level = v;
         return Status::Ok();
       }},
      {"backend", "auto, cpu or cuda",
       [](const std::string& v, ServeConfig* c) {
         if (v != "auto" && v != "cpu" && v != "cuda") {
           return InvalidArgument("must be auto, cpu or cuda");
         }
         c->backend = v;
         return Status::Ok();
       }},
      {"max_model_len", "Context length in tokens (0: the model's)",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<int, 0, (int64_t{1} << 24)>(v, &c->max_model_len);
       }},
      {"kv_host_gib", "Host memory for the KV cache, in GiB",
       [](const std::string& v, ServeConfig* c) { return SetGib(v, &c->kv_host_gib); }},
      {"kv_gpu_gib",
       "GPU memory for the KV cache's GPU tier, in GiB (0: 85% of the GPU memory free once the "
       "model is loaded); on the CPU backend a tier is kept only when given, emulated in host "
       "memory",
       [](const std::string& v, ServeConfig* c) { return SetGib(v, &c->kv_gpu_gib, true); }},
      {"kv_gpu_fraction",
       "Share of the GPU memory free once the model is loaded that the KV cache's GPU tier takes "
       "when kv_gpu_gib is 0 (the rest stays for activations and the retrieval head's cache)",
       [](const std::string& v, ServeConfig* c) { return SetFraction(v, &c->kv_gpu_fraction); }},
      {"elastic_slot_gib",
       "GPU memory for SpeContext's elastic slots that the GPU KV tier cannot lend, in GiB (0: "
       "as much as the device gives); a request whose slots fit neither attends its offloaded "
       "layers in place",
       [](const std::string& v, ServeConfig* c) { return SetGib(v, &c->elastic_slot_gib, true); }},
      {"kv_nvme_gib", "NVMe space for offloaded KV, in GiB (0: no NVMe tier)",
       [](const std::string& v, ServeConfig* c) { return SetGib(v, &c->kv_nvme_gib, true); }},
      {"kv_nvme_path", "File backing the NVMe KV tier (preallocated; on a local disk)",
       [](const std::string& v, ServeConfig* c) {
         c->kv_nvme_path = v;
         return Status::Ok();
       }},
      {"prefix_caching",
       "Reuse the KV of prompt prefixes computed before: true or false (false: every prompt is "
       "prefilled in full, as benchmarks comparing clients need)",
       [](const std::string& v, ServeConfig* c) { return SetBool(v, &c->prefix_caching); }},
      {"max_num_seqs", "Sequences in one engine step",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<int, 1, 65536>(v, &c->max_num_seqs);
       }},
      {"max_num_batched_tokens", "Prefill + decode tokens in one engine step",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<int, 16, (int64_t{1} << 24)>(v, &c->max_num_batched_tokens);
       }},
      {"max_waiting", "Queued requests beyond this are refused with 429",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<int, 1, (int64_t{1} << 20)>(v, &c->max_waiting);
       }},
      {"grpc_port", "gRPC port (-1: no gRPC server, 0: pick a free one)",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<int, -1, 65535>(v, &c->grpc_port);
       }},
      {"drain_timeout_s", "Seconds in-flight requests may finish after SIGTERM",
       [](const std::string& v, ServeConfig* c) {
         return SetSeconds<0, 86400>(v, &c->drain_timeout);
       }},
      {"attention", "dense or specontext: what requests that do not choose run",
       [](const std::string& v, ServeConfig* c) {
         const std::optional<AttentionMode> mode = AttentionModeNamed(v);
         if (!mode.has_value()) return InvalidArgument("must be dense or specontext");
         c->attention = *mode;
         return Status::Ok();
       }},
      {"sparse_budget", "SpeContext positions per KV head and decode step",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<int64_t, 1, (int64_t{1} << 24)>(v, &c->sparse_budget);
       }},
      {"draft_model",
       "EAGLE-3 draft (or small same-tokenizer model) directory for the SpeContext retrieval head, "
       "or 'random' for a head of random weights (benchmarks)",
       [](const std::string& v, ServeConfig* c) {
         c->draft_model = v;
         return Status::Ok();
       }},
      {"sparse_sinks", "SpeContext: first positions every selection keeps",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<int64_t, 0, (int64_t{1} << 24)>(v, &c->sparse_sinks);
       }},
      {"sparse_window", "SpeContext: most recent positions every selection keeps",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<int64_t, 0, (int64_t{1} << 24)>(v, &c->sparse_window);
       }},
      {"retrieval_hidden",
       "SpeContext: an EAGLE-3 retrieval head reads the target's hidden states of the previous "
       "position (false: zeros)",
       [](const std::string& v, ServeConfig* c) { return SetBool(v, &c->retrieval_hidden); }},
      {"dense_fallback_mass",
       "SpeContext: a decode step whose selected attention mass is below this runs dense (0: "
       "never)",
       [](const std::string& v, ServeConfig* c) {
         return SetFraction(v, &c->dense_fallback_mass);
       }},
      {"sparse_redo_probability",
       "SpeContext: a sparse decode step whose most likely next token has a lower probability "
       "runs again densely before it is sampled (0: never)",
       [](const std::string& v, ServeConfig* c) {
         return SetFraction(v, &c->sparse_redo_probability);
       }},
      {"sparse_dense_layers",
       "SpeContext: the first N layers attend to every position in sparse steps (layer 0 spreads "
       "its attention over the whole context)",
       [](const std::string& v, ServeConfig* c) {
         return SetInteger<int, 0, 4096>(v, &c->sparse_dense_layers);
       }},
      {"sparse_memory_decay",
       "SpeContext: each position ranks by at least this share of its ranking weight at the "
       "previous step, so a span the head found stays selected while it is copied (0: off)",
       [](const std::string& v, ServeConfig* c) {
         return SetFraction(v, &c->sparse_memory_decay);
       }},

  };
  return settings;
}

const Setting* FindSetting(std::string_view key) {
  for (const Setting& setting : Settings()) {
    if (key == setting.key) return &setting;
  }
  return nullptr;
}

std::string EnvName(std::string_view key) {
  std::string name = "SPECONTEXT_";
  for (char c : key) name.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return name;
}

std::string FlagName(std::string_view key) {
  std::string name = "--";
  for (char c : key) name.push_back(c == '_' ? '-' : c);
  return name;
}

Status Apply(const Setting& setting, const std::string& value, const std::string& source,
             ServeConfig* config) {
  return setting.parse(value, config)
      .WithContext(std::string("invalid ") + setting.key + " '" + value + "' (from " + source +
                   ")");
}

Status ApplyYaml(const std::string& path, ServeConfig* config) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("config file '" + path + "': " + e.what());
  }
  if (root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return InvalidArgument("config file '" + path + "': must be a mapping");
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    const Setting* setting = FindSetting(key);
    if (setting == nullptr) {
      return InvalidArgument("config file '" + path + "': unknown key '" + key + "'");
    }
    std::string value;
    if (entry.second.IsScalar()) {
      value = entry.second.Scalar();
    } else if (entry.second.IsSequence()) {
      for (const auto& item : entry.second) {
        if (!item.IsScalar()) {
          return InvalidArgument("config file '" + path + "': '" + key + "' items must be scalars");
        }
        value += (value.empty() ? "" : ",") + item.Scalar();
      }
    } else {
      return InvalidArgument("config file '" + path + "': '" + key + "' must be a scalar");
    }
    SPC_RETURN_IF_ERROR(Apply(*setting, value, "config file '" + path + "'", config));
  }
  return Status::Ok();
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

ServeConfigLoader::ServeConfigLoader()
    : flags_(std::make_shared<std::map<std::string, std::string>>()) {}

void ServeConfigLoader::AddFlags(CLI::App& command) {
  auto flags = flags_;
  command.add_option_function<std::string>(
      "--config", [flags](const std::string& value) { (*flags)["config"] = value; },
      "YAML file of serve options (keys as the flags, with '_' for '-')");
  for (const Setting& setting : Settings()) {
    const std::string key = setting.key;
    command.add_option_function<std::string>(
        FlagName(key), [flags, key](const std::string& value) { (*flags)[key] = value; },
        std::string(setting.help) + " [env " + EnvName(key) + "]");
  }
}

Result<ServeConfig> ServeConfigLoader::Load(const EnvLookup& env) const {
  ServeConfig config;
  std::optional<std::string> config_path = env("SPECONTEXT_CONFIG");
  if (const auto it = flags_->find("config"); it != flags_->end()) config_path = it->second;
  if (config_path.has_value()) SPC_RETURN_IF_ERROR(ApplyYaml(*config_path, &config));
  for (const Setting& setting : Settings()) {
    const std::string env_name = EnvName(setting.key);
    if (std::optional<std::string> value = env(env_name)) {
      SPC_RETURN_IF_ERROR(Apply(setting, *value, env_name, &config));
    }
    if (const auto it = flags_->find(setting.key); it != flags_->end()) {
      SPC_RETURN_IF_ERROR(Apply(setting, it->second, FlagName(setting.key), &config));
    }
  }
  if (!config.api_key_file.empty()) {
    SPC_ASSIGN_OR_RETURN(std::vector<std::string> keys, ReadApiKeyFile(config.api_key_file));
    config.api_keys.insert(config.api_keys.end(), keys.begin(), keys.end());
  }
  SPC_RETURN_IF_ERROR(CheckSpecontext(config));
  return config;
}

}  // namespace specontext::server
