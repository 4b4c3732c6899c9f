#include "server/serve_config.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace specontext::server {
namespace {

class ServeConfigTest : public ::testing::Test {
 protected:
  // Parses `args` as `serve` flags and loads the config with the fake environment.
  Result<ServeConfig> Load(std::vector<std::string> args) {
    CLI::App app;
    ServeConfigLoader loader;
    loader.AddFlags(app);
    std::vector<const char*> argv = {"serve"};
    for (const auto& arg : args) argv.push_back(arg.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return InvalidArgument(e.what());
    }
    return loader.Load([this](const std::string& name) -> std::optional<std::string> {
      const auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    });
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("specontext_" + std::to_string(::getpid()) + "_" + name);
    std::ofstream(path) << text;
    files_.push_back(path);
    return path.string();
  }

  void TearDown() override {
    for (const auto& path : files_) std::filesystem::remove(path);
  }

  std::map<std::string, std::string> env_;
  std::vector<std::filesystem::path> files_;
};

TEST_F(ServeConfigTest, DefaultsWithNoSources) {
  const auto config = Load({});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->http.host, "127.0.0.1");
  EXPECT_EQ(config->http.port, 8000);
  EXPECT_TRUE(config->api_keys.empty());
  EXPECT_EQ(config->ready_timeout, std::chrono::milliseconds(10000));
}

TEST_F(ServeConfigTest, FlagsBeatEnvironmentBeatsYaml) {
  const std::string yaml = WriteFile("a.yaml",
                                     "host: 0.0.0.0\nport: 9000\nio_threads: 4\n"
                                     "api_key: [k1, k2]\nread_timeout_s: 5\n");
  env_["SPECONTEXT_CONFIG"] = yaml;
  env_["SPECONTEXT_PORT"] = "9100";
  env_["SPECONTEXT_IO_THREADS"] = "6";
  const auto config = Load({"--io-threads", "8", "--model", "/models/smol"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->http.host, "0.0.0.0");  // YAML
  EXPECT_EQ(config->http.port, 9100);       // env over YAML
  EXPECT_EQ(config->http.io_threads, 8);    // flag over env
  EXPECT_EQ(config->http.read_timeout, std::chrono::seconds(5));
  EXPECT_EQ(config->model, "/models/smol");
  EXPECT_EQ(config->api_keys, (std::vector<std::string>{"k1", "k2"}));
}

TEST_F(ServeConfigTest, ApiKeysFromEnvironmentAndFile) {
  env_["SPECONTEXT_API_KEY"] = "from-env";
  const std::string keys = WriteFile("keys", "from-file\n");
  const auto config = Load({"--api-key-file", keys});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->api_keys, (std::vector<std::string>{"from-env", "from-file"}));
}

TEST_F(ServeConfigTest, UnknownYamlKeyStopsStartup) {
  const std::string yaml = WriteFile("b.yaml", "port: 9000\nmax_batch: 3\n");
  const auto config = Load({"--config", yaml});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "config file '" + yaml + "': unknown key 'max_batch'");
}

TEST_F(ServeConfigTest, ImpossibleValuesNameTheKeyAndSource) {
  env_["SPECONTEXT_PORT"] = "70000";
  auto config = Load({});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "invalid port '70000' (from SPECONTEXT_PORT): must be an integer in [0, 65535]");
  env_.clear();

  config = Load({"--host", "localhost"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "invalid host 'localhost' (from --host): must be an IP address");

  const std::string yaml = WriteFile("c.yaml", "io_threads: many\n");
  config = Load({"--config", yaml});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "invalid io_threads 'many' (from config file '" + yaml +
                                           "'): must be an integer in [1, 256]");

  EXPECT_FALSE(Load({"--log-level", "loud"}).ok());
  EXPECT_FALSE(Load({"--ready-timeout-ms", "5"}).ok());
  EXPECT_FALSE(Load({"--max-body-bytes", "-1"}).ok());
  EXPECT_FALSE(Load({"--api-key", ","}).ok());
  EXPECT_FALSE(Load({"--api-key-file", "/nonexistent/keys"}).ok());
}

TEST_F(ServeConfigTest, EngineSizingFromEverySource) {
  const std::string yaml =
      WriteFile("f.yaml", "max_model_len: 4096\nkv_host_gib: 0.5\nmax_num_seqs: 8\n");
  env_["SPECONTEXT_CONFIG"] = yaml;
  env_["SPECONTEXT_MAX_WAITING"] = "12";
  const auto config = Load({"--max-num-batched-tokens", "256", "--drain-timeout-s", "7",
                            "--backend", "cpu", "--kv-gpu-fraction", "0.6"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_DOUBLE_EQ(config->kv_gpu_fraction, 0.6);
  EXPECT_EQ(config->max_model_len, 4096);
  EXPECT_DOUBLE_EQ(config->kv_host_gib, 0.5);
  EXPECT_EQ(config->max_num_seqs, 8);
  EXPECT_EQ(config->max_waiting, 12);
  EXPECT_EQ(config->max_num_batched_tokens, 256);
  EXPECT_EQ(config->drain_timeout, std::chrono::seconds(7));
  EXPECT_EQ(config->backend, "cpu");
  EXPECT_TRUE(config->prefix_caching);
  env_["SPECONTEXT_PREFIX_CACHING"] = "false";
  EXPECT_FALSE(Load({})->prefix_caching);
  EXPECT_TRUE(Load({"--prefix-caching", "true"})->prefix_caching);

  EXPECT_EQ(Load({"--prefix-caching", "maybe"}).status().message(),
            "invalid prefix_caching 'maybe' (from --prefix-caching): must be true or false");
  EXPECT_EQ(Load({"--kv-host-gib", "0"}).status().message(),
            "invalid kv_host_gib '0' (from --kv-host-gib): must be a positive number of GiB");
  EXPECT_FALSE(Load({"--kv-host-gib", "lots"}).ok());
  EXPECT_DOUBLE_EQ(Load({})->kv_gpu_fraction, 0.85);
  EXPECT_EQ(Load({"--kv-gpu-fraction", "1.5"}).status().message(),
            "invalid kv_gpu_fraction '1.5' (from --kv-gpu-fraction): must be a number in [0, 1]");
  EXPECT_DOUBLE_EQ(Load({})->elastic_slot_gib, 0.0);
  EXPECT_DOUBLE_EQ(Load({"--elastic-slot-gib", "1.5"})->elastic_slot_gib, 1.5);
  EXPECT_FALSE(Load({"--elastic-slot-gib", "-1"}).ok());
  EXPECT_FALSE(Load({"--backend", "tpu"}).ok());
  EXPECT_FALSE(Load({"--max-num-seqs", "0"}).ok());
}

TEST_F(ServeConfigTest, BrokenYamlIsAnError) {
  EXPECT_FALSE(Load({"--config", WriteFile("d.yaml", "port: [1, \n")}).ok());
  EXPECT_FALSE(Load({"--config", WriteFile("e.yaml", "- port\n")}).ok());
  EXPECT_FALSE(Load({"--config", WriteFile("f.yaml", "port: {a: 1}\n")}).ok());
  EXPECT_FALSE(Load({"--config", "/nonexistent/config.yaml"}).ok());
  EXPECT_TRUE(Load({"--config", WriteFile("g.yaml", "")}).ok());
}

TEST_F(ServeConfigTest, AttentionServeOptionsDefaultsAndValues) {
  auto defaults = Load({});
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(defaults->attention, AttentionMode::kDense);
  EXPECT_EQ(defaults->sparse_budget, 2048);
  EXPECT_TRUE(defaults->draft_model.empty());
  EXPECT_EQ(defaults->sparse_dense_layers, 0);
  EXPECT_DOUBLE_EQ(defaults->sparse_memory_decay, 0.995);
  EXPECT_DOUBLE_EQ(defaults->sparse_redo_probability, 0.0);

  auto set = Load({"--attention", "specontext", "--draft-model", "/models/eagle3",
                   "--sparse-budget", "1024", "--sparse-sinks", "4", "--sparse-window", "64",
                   "--dense-fallback-mass", "0.8", "--sparse-dense-layers", "1",
                   "--sparse-memory-decay", "0.9", "--sparse-redo-probability", "0.9"});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->attention, AttentionMode::kSpecontext);
  EXPECT_EQ(set->draft_model, "/models/eagle3");
  EXPECT_EQ(set->sparse_budget, 1024);
  EXPECT_EQ(set->sparse_sinks, 4);
  EXPECT_EQ(set->sparse_window, 64);
  EXPECT_DOUBLE_EQ(set->dense_fallback_mass, 0.8);
  EXPECT_EQ(set->sparse_dense_layers, 1);
  EXPECT_DOUBLE_EQ(set->sparse_memory_decay, 0.9);
  EXPECT_DOUBLE_EQ(set->sparse_redo_probability, 0.9);
}

TEST_F(ServeConfigTest, AttentionAbsurdServeOptionsStopStartup) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--attention", "sparse"}, "attention"},
      {{"--sparse-budget", "0"}, "sparse_budget"},
      {{"--sparse-budget", "1e9"}, "sparse_budget"},
      {{"--sparse-sinks", "-1"}, "sparse_sinks"},
      {{"--dense-fallback-mass", "1.5"}, "dense_fallback_mass"},
      {{"--dense-fallback-mass", "nan"}, "dense_fallback_mass"},
      {{"--sparse-dense-layers", "-1"}, "sparse_dense_layers"},
      {{"--sparse-memory-decay", "2"}, "sparse_memory_decay"},
      {{"--sparse-redo-probability", "-0.1"}, "sparse_redo_probability"},
      {{"--attention", "specontext"}, "draft_model"},
      {{"--sparse-budget", "16", "--sparse-sinks", "8", "--sparse-window", "9"}, "sparse_budget"},
  };
  for (const auto& [args, key] : cases) {
    auto config = Load(args);
    ASSERT_FALSE(config.ok()) << args.back();
    EXPECT_NE(config.status().message().find(key), std::string::npos) << config.status().ToString();
  }
}

}  // namespace
}  // namespace specontext::server
