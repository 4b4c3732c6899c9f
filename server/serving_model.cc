#include "server/serving_model.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/cpu/cpu_model_runner.h"
#ifdef SPECONTEXT_HAVE_CUDA
#include "engine/cuda/cuda_model_runner.h"
#include "engine/cuda/cuda_specontext_planner.h"
#endif
#include "engine/device.h"
#include "engine/model/model_presets.h"

namespace specontext::server {

namespace fs = std::filesystem;

namespace {

Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void AddUnique(std::vector<int32_t>& ids, int32_t id) {
  if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

}  // namespace

ServingModel::~ServingModel() {
  if (engine_) engine_->Stop(std::chrono::milliseconds(0));
}

Result<std::unique_ptr<ServingModel>> ServingModel::Create(const ServingModelOptions& options) {
  std::unique_ptr<ServingModel> serving(new ServingModel());
  const bool is_preset = options.model.starts_with(kPresetPrefix);
  if (!is_preset && !fs::is_directory(options.model)) {
    return NotFound("model directory '" + options.model + "' does not exist" +
                    (options.model == DefaultModelPath()
                         ? " (run scripts/prepare_default_model.sh to prepare the default model)"
                         : ""));
  }
  SPC_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(options.model));
  serving->config_ = model->config;
  serving->generation_ = model->generation;
  serving->name_ = !options.served_name.empty() ? options.served_name
                   : is_preset                  ? options.model.substr(kPresetPrefix.size())
                               : fs::path(options.model).lexically_normal().filename().string();
  if (serving->name_.empty()) {
    serving->name_ = fs::path(options.model).parent_path().filename().string();
  }
  serving->max_model_len_ =
      options.max_model_len > 0 ? options.max_model_len : model->config.max_position_embeddings;
  if (serving->max_model_len_ > model->config.max_position_embeddings) {
    spdlog::warn("--max-model-len {} exceeds the model's max_position_embeddings {}",
                 serving->max_model_len_, model->config.max_position_embeddings);
  }
  for (int id : model->config.eos_token_ids) AddUnique(serving->eos_token_ids_, id);
  for (int id : model->generation.eos_token_ids) AddUnique(serving->eos_token_ids_, id);
  if (!is_preset) SPC_RETURN_IF_ERROR(serving->LoadTokenizer(options.model));

  SPC_RETURN_IF_ERROR(serving->CreateRunner(*model, options));
  if (!options.draft_model.empty()) {
    SPC_RETURN_IF_ERROR(serving->CreatePlanner(std::move(model), options));
  }
  model.reset();  // the runner holds its own copy of the weights
  SPC_RETURN_IF_ERROR(serving->CreateKvStore(options));

  EngineLoopOptions loop_options;
  loop_options.scheduler = options.scheduler;
  loop_options.max_model_len = serving->max_model_len_;
  KvStore* store = serving->store_.get();
  loop_options.idle_check = [store] { return store->CheckIntegrity(); };
  loop_options.planner = serving->planner_.get();
  serving->engine_ = std::make_unique<EngineLoop>(
      loop_options, serving->runner_.get(), serving->sequence_kv_.get(),
      Sampler(serving->eos_token_ids_), options.observer);
  serving->engine_->Start();
  spdlog::info("model '{}' ready on the {} backend: {} layers, hidden {}, context {}",
               serving->name_, serving->backend_name_, serving->config_.num_layers,
               serving->config_.hidden_size, serving->max_model_len_);
  return serving;
}

Status ServingModel::LoadTokenizer(const std::string& dir) {
  const fs::path tokenizer_path = fs::path(dir) / "tokenizer.json";
  SPC_ASSIGN_OR_RETURN(tokenizer_, Tokenizer::FromFile(tokenizer_path));
  if (tokenizer_->eos_id()) AddUnique(eos_token_ids_, *tokenizer_->eos_id());

  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  std::string template_source;
  if (fs::exists(config_path)) {
    SPC_ASSIGN_OR_RETURN(std::string text, ReadFile(config_path));
    boost::system::error_code ec;
    boost::json::value config = boost::json::parse(text, ec);
    if (ec) return InvalidArgument(config_path.string() + ": not valid JSON: " + ec.message());
    SPC_ASSIGN_OR_RETURN(chat_template::TokenizerChatConfig chat,
                         chat_template::ReadTokenizerChatConfig(config, config_path.string()));
    special_tokens_ = std::move(chat.special_tokens);
    template_source = std::move(chat.chat_template);
  }
  // Newer checkpoints keep the template in its own file.
  if (const fs::path jinja = fs::path(dir) / "chat_template.jinja"; fs::exists(jinja)) {
    SPC_ASSIGN_OR_RETURN(template_source, ReadFile(jinja));
  }
  if (!template_source.empty()) {
    auto parsed = chat_template::ChatTemplate::Parse(std::move(template_source));
    if (!parsed.ok()) return parsed.status().WithContext("chat template of " + dir);
    chat_template_ = std::move(parsed).value();
  } else {
    spdlog::info("{} has no chat template: /v1/chat/completions is unavailable", dir);
  }
  return Status::Ok();
}

Status ServingModel::CreateRunner(const Model& model, const ServingModelOptions& options) {
  const Backend backend = options.backend;
  const DeviceReport devices = ProbeDevices();
  if (backend == Backend::kCuda && devices.gpus.empty()) {
    return FailedPrecondition("--backend cuda, but no GPU is usable: " + devices.why_no_gpu);
  }
#ifdef SPECONTEXT_HAVE_CUDA
  if (backend != Backend::kCpu && !devices.gpus.empty()) {
    cuda::CudaRunnerOptions cuda_options;
    cuda_options.elastic_slot_bytes = static_cast<size_t>(options.elastic_slot_gib * (1u << 30));
    auto runner = cuda::CreateCudaModelRunner(model, cuda_options);
    if (runner.ok()) {
      runner_ = std::move(runner).value();
      backend_name_ = "cuda (" + devices.gpus.front().name + ")";
      uses_gpu_ = true;
      return Status::Ok();
    }
    if (backend == Backend::kCuda) return runner.status();
    spdlog::warn("the CUDA backend cannot run this model ({}); using the CPU backend",
                 runner.status().ToString());
  }
#endif
  if (backend == Backend::kAuto && devices.gpus.empty()) {
    spdlog::info("no usable GPU ({}); running on the CPU backend", devices.why_no_gpu);
  }
  cpu::CpuRunnerOptions cpu_options;
  cpu_options.probe = options.probe;
  SPC_ASSIGN_OR_RETURN(auto runner, cpu::CpuModelRunner::Create(model, cpu_options));
  runner_ = std::move(runner);
  backend_name_ = "cpu";
  return Status::Ok();
}

Status ServingModel::CreatePlanner(std::unique_ptr<Model> target,
                                   const ServingModelOptions& options) {
  RetrievalHeadOptions head_options;
  head_options.load_hidden_path = options.specontext.hidden_input;
  auto head = options.draft_model == kRandomDraft
                  ? RetrievalHead::Random(*target, head_options)
                  : RetrievalHead::Load(options.draft_model, *target, head_options);
  if (!head.ok()) return head.status().WithContext("draft model '" + options.draft_model + "'");
#ifdef SPECONTEXT_HAVE_CUDA
  if (auto* cuda_runner = dynamic_cast<const cuda::CudaModelRunner*>(runner_.get())) {
    // Every running sequence at the longest context, bounded so the head's cache stays a
    // fraction of the device (2 KiB per position for an 8B model's head).
    const int64_t positions = std::min<int64_t>(
        static_cast<int64_t>(options.scheduler.max_running) * max_model_len_, int64_t{1} << 20);
    SPC_ASSIGN_OR_RETURN(planner_, cuda::CudaSpecontextPlanner::Create(
                                       **head, *cuda_runner, options.specontext, positions));
  }
#endif
  if (planner_ == nullptr) {
    SPC_ASSIGN_OR_RETURN(planner_,
                         SpecontextPlanner::Create(std::move(head).value(), options.specontext));
  }
  planner_target_ = std::move(target);
  spdlog::info(
      "SpeContext retrieval head from '{}': {} by default, budget {} per KV head",
      options.draft_model,
      options.specontext.server_mode == AttentionMode::kSpecontext ? "specontext" : "dense",
      options.specontext.budget);
  return Status::Ok();
}

double KvGpuTierGib(const ServingModelOptions& options, bool uses_gpu, size_t free_bytes) {
  if (options.kv_gpu_gib > 0) return options.kv_gpu_gib;
  if (!uses_gpu) return 0.0;
  return std::clamp(options.kv_gpu_fraction, 0.0, 1.0) * static_cast<double>(free_bytes) /
         (1u << 30);
}

Status ServingModel::CreateKvStore(const ServingModelOptions& options) {
  KvStoreOptions store_options;
  store_options.layout = runner_->kv_layout();
  store_options.prefix_caching = options.prefix_caching;
  const double block_bytes = static_cast<double>(store_options.layout.BlockBytes());
  if (options.kv_host_gib <= 0 && !uses_gpu_) {
    return InvalidArgument("--kv-host-gib must be positive on the CPU backend");
  }
  store_options.host_blocks =
      static_cast<int32_t>(std::min(options.kv_host_gib * (1u << 30) / block_bytes, 2.0e9));
  const size_t free_bytes = uses_gpu_ ? GpuFreeMemoryBytes() : 0;
  if (const double gpu_gib = KvGpuTierGib(options, uses_gpu_, free_bytes); gpu_gib > 0) {
    store_options.gpu_blocks =
        static_cast<int32_t>(std::min(gpu_gib * (1u << 30) / block_bytes, 2.0e9));
    // Lets the placement (demotions, spills) run on a machine without a GPU.
    store_options.emulate_gpu = !uses_gpu_;
    if (store_options.emulate_gpu) {
      spdlog::info("KV cache: the {:.2f} GiB GPU tier is emulated in host memory (CPU backend)",
                   options.kv_gpu_gib);
    }
  }
  if (options.kv_nvme_gib > 0) {
    if (options.kv_nvme_path.empty()) {
      return InvalidArgument("--kv-nvme-gib needs --kv-nvme-path (a file on a local disk)");
    }
    store_options.nvme_blocks =
        static_cast<int32_t>(std::min(options.kv_nvme_gib * (1u << 30) / block_bytes, 2.0e9));
    store_options.nvme_path = options.kv_nvme_path;
  }
  if (store_options.host_blocks < store_options.layout.num_layers) {
    return InvalidArgument(
        "the KV cache is too small to hold one block per layer; raise "
        "--kv-host-gib");
  }
  SPC_ASSIGN_OR_RETURN(store_, KvStore::Create(store_options));
  KvPlacementOptions placement;
  placement.observer = options.placement_observer;
  SPC_ASSIGN_OR_RETURN(sequence_kv_, StoreSequenceKv::Create(store_.get(), placement));
  spdlog::info(
      "KV cache: {} GPU, {} host and {} NVMe blocks of {} tokens ({:.2f} + {:.2f} + {:.2f} GiB); "
      "one sequence holds up to {} positions",
      store_options.gpu_blocks, store_options.host_blocks, store_options.nvme_blocks,
      store_options.layout.block_tokens, store_options.gpu_blocks * block_bytes / (1u << 30),
      store_options.host_blocks * block_bytes / (1u << 30),
      store_options.nvme_blocks * block_bytes / (1u << 30), sequence_kv_->CapacityTokens());
  return Status::Ok();
}

}  // namespace specontext::server
