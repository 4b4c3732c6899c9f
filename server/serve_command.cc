#include "server/serve_command.h"

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <memory>
#include <thread>

#include "engine/device.h"
#include "engine/model/model_presets.h"
#include "server/auth.h"
#include "server/engine_metrics_observer.h"
#include "server/grpc_service.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/openai_routes.h"
#include "server/operational_routes.h"
#include "server/readiness.h"
#include "server/serve_config.h"
#include "server/serving_model.h"

namespace specontext::server {

namespace {

// What responses report as `model` and metrics as `model_name`.
std::string ServedModelName(const ServeConfig& config) {
  if (!config.served_model_name.empty()) return config.served_model_name;
  const std::string& model = config.model;
  if (model.starts_with(kPresetPrefix)) return model.substr(kPresetPrefix.size());
  const std::string trimmed = model.substr(0, model.find_last_not_of('/') + 1);
  const size_t slash = trimmed.find_last_of('/');
  return slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
}

// How long, after the engine stopped, responses already produced may take to reach clients.
constexpr auto kFlushTimeout = std::chrono::seconds(5);
// Time for queued writes to reach the sockets once every session has ended.
constexpr auto kWriteGrace = std::chrono::milliseconds(250);

ServingModelOptions ModelOptions(const ServeConfig& config, EngineMetricsObserver* observer) {
  ServingModelOptions options;
  options.model = config.model.empty() ? DefaultModelPath() : config.model;
  options.served_name = ServedModelName(config);
  options.backend = config.backend == "cpu"    ? Backend::kCpu
                    : config.backend == "cuda" ? Backend::kCuda
                                               : Backend::kAuto;
  options.max_model_len = config.max_model_len;
  options.kv_host_gib = config.kv_host_gib;
  options.kv_gpu_gib = config.kv_gpu_gib;
  options.kv_gpu_fraction = config.kv_gpu_fraction;
  options.kv_nvme_gib = config.kv_nvme_gib;
  options.kv_nvme_path = config.kv_nvme_path;
  options.elastic_slot_gib = config.elastic_slot_gib;
  options.prefix_caching = config.prefix_caching;
  options.scheduler.max_running = config.max_num_seqs;
  options.scheduler.max_step_tokens = config.max_num_batched_tokens;
  options.scheduler.max_waiting = config.max_waiting;
  options.observer = observer;
  options.placement_observer = observer;
  options.draft_model = config.draft_model;
  options.specontext.server_mode = config.attention;
  options.specontext.budget = config.sparse_budget;
  options.specontext.sink_tokens = config.sparse_sinks;
  // Every list ends with the token's own position, so 0 (the default) keeps just that, as 1 does.
  options.specontext.recent_window = std::max<int64_t>(1, config.sparse_window);
  options.specontext.hidden_input = config.retrieval_hidden;
  options.specontext.fallback_mass_threshold = config.dense_fallback_mass;
  options.specontext.redo_probability = config.sparse_redo_probability;
  options.specontext.dense_layers = config.sparse_dense_layers;
  options.specontext.memory_decay = config.sparse_memory_decay;
  return options;
}

void WaitForSignal() {
  boost::asio::io_context signals_io;
  boost::asio::signal_set signals(signals_io, SIGINT, SIGTERM);
  signals.async_wait([](const boost::system::error_code&, int signal) {
    spdlog::info("signal {} received, draining", signal);
  });
  signals_io.run();
}

int RunServe(ServeConfig config) {
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  const DeviceReport devices = ProbeDevices();
  if (devices.gpus.empty()) {
    spdlog::info("no usable GPU ({}); running on the CPU backend", devices.why_no_gpu);
  } else {
    spdlog::info("GPU 0: {}", devices.gpus.front().name);
  }
  if (config.model.empty()) config.model = DefaultModelPath();

  // The metrics and their observer outlive the engine that reports to them.
  ServingMetrics metrics(ServedModelName(config));
  EngineMetricsObserver observer(&metrics);
  Result<std::unique_ptr<ServingModel>> model =
      ServingModel::Create(ModelOptions(config, &observer));
  if (!model.ok()) {
    spdlog::error("{}", model.status().ToString());
    return 1;
  }
  EngineLoop& engine = (*model)->engine();
  Readiness readiness(config.ready_timeout);
  readiness.SetProgressSource([&engine] { return engine.last_progress(); });
  readiness.SetModelLoaded(true);

  auto auth = std::make_shared<ApiKeyAuth>(config.api_keys);
  // Sessions the server still holds at its destruction count themselves out of the context.
  SessionContext context{.model = model->get(), .metrics = &metrics};
  HttpServer http(config.http);
  context.executor = http.io_context().get_executor();
  AddOperationalRoutes(http, readiness, metrics);
  AddOpenAiRoutes(http, context);
  if (auth->enabled()) {
    http.SetGuard([auth](const HttpRequest& request) { return auth->Check(request); });
    spdlog::info("API key authentication on ({} key(s))", config.api_keys.size());
  }
  if (Status st = http.Start(); !st.ok()) {
    spdlog::error("{}", st.ToString());
    return 1;
  }
  // On stdout whatever the log level: scripts and tests wait for this line.
  fmt::print("listening on http://{}:{}\n", config.http.host, http.port());
  std::fflush(stdout);
  std::unique_ptr<GrpcServer> grpc;
  if (config.grpc_port >= 0) {
    auto started = StartGrpcServer(**model, config.http.host, config.grpc_port, config.api_keys);
    if (!started.ok()) {
      spdlog::error("{}", started.status().ToString());
      http.Stop();
      return 1;
    }
    grpc = std::move(started).value();
    fmt::print("listening on grpc://{}:{}\n", config.http.host, grpc->port());
    std::fflush(stdout);
  }

  WaitForSignal();
  // Load balancers see /ready fail and new requests get 503 while running ones finish; every
  // stream gets its final event before the connections close.
  readiness.SetModelLoaded(false);
  engine.Stop(config.drain_timeout);
  if (grpc) grpc->Shutdown(std::chrono::system_clock::now() + kFlushTimeout);
  const auto flush_deadline = std::chrono::steady_clock::now() + kFlushTimeout;
  while (context.in_flight.load() > 0 && std::chrono::steady_clock::now() < flush_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // A finished session has queued its last chunks, not written them; Stop() drops queued writes.
  std::this_thread::sleep_for(kWriteGrace);
  http.Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

void AddServeCommand(CLI::App& app) {
  auto loader = std::make_shared<ServeConfigLoader>();
  auto* cmd = app.add_subcommand("serve", "Run the OpenAI-compatible HTTP and gRPC daemon");
  loader->AddFlags(*cmd);
  cmd->callback([loader] {
    Result<ServeConfig> config = loader->Load(ProcessEnvironment());
    if (!config.ok()) {
      spdlog::error("{}", config.status().message());
      throw CLI::RuntimeError(2);
    }
    const int rc = RunServe(*config);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace specontext::server
