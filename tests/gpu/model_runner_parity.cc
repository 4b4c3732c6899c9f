#include "tests/gpu/model_runner_parity.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/model/random_fill.h"
#include "engine/model/weight_layout.h"

namespace specontext::testing_gpu {

std::unique_ptr<Model> RandomModel(const ModelConfig& config, uint64_t seed) {
  auto model = std::make_unique<Model>();
  model->config = config;
  model->name = "random";
  const std::vector<WeightSpec> specs = ExpectedWeights(config);
  size_t total = 0;
  for (const WeightSpec& spec : specs) total += TensorView{DType::kF32, spec.shape}.bytes();
  std::shared_ptr<std::byte> buffer = AllocateWeightBuffer(total);
  std::vector<FillJob> jobs;
  size_t offset = 0;
  for (const WeightSpec& spec : specs) {
    TensorView view{DType::kF32, spec.shape, buffer.get() + offset};
    const bool norm = spec.name.ends_with("norm.weight");
    jobs.push_back({.data = buffer.get() + offset,
                    .dtype = DType::kF32,
                    .count = view.numel(),
                    .seed = seed ^ HashName(spec.name),
                    .stddev = 0.1f,
                    .mean = norm ? 1.0f : 0.0f});
    offset += view.bytes();
    if (!model->weights.Add(spec.name, std::move(view)).ok()) return nullptr;
  }
  FillRandom(jobs);
  model->weights.AddBacking(std::move(buffer));
  return model;
}

double RelErr(const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(got[i])) return INFINITY;
    num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

std::vector<int32_t> RandomTokens(int n, int vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> tokens(n);
  for (auto& t : tokens) t = dist(rng);
  return tokens;
}

ParityHarness::~ParityHarness() {
  cuda_.reset();
  for (void* p : pinned_) cudaFreeHost(p);
}

ParityHarness::ParityHarness(const Model& model, int num_seqs, int capacity,
                             const cuda::CudaRunnerOptions& opt, int host_from_layer) {
  auto cpu = cpu::CpuModelRunner::Create(model, {.block_tokens = opt.block_tokens});
  auto gpu = cuda::CudaModelRunner::Create(model, opt);
  if (!cpu.ok() || !gpu.ok()) return;
  cpu_ = std::move(cpu).value();
  cuda_ = std::move(gpu).value();
  const KvLayout cpu_layout = cpu_->kv_layout(), cuda_layout = cuda_->kv_layout();
  const int layers = model.config.num_layers, blocks = cpu_layout.BlocksFor(capacity);
  std::mt19937 rng(1234);
  positions_.assign(num_seqs, 0);
  for (int s = 0; s < num_seqs; ++s) {
    cpu_storage_.emplace_back(static_cast<size_t>(layers) * blocks * cpu_layout.BlockBytes() / 4);
    auto buffer = cuda::DeviceBuffer::Allocate(static_cast<size_t>(layers) * blocks *
                                               cuda_layout.BlockBytes());
    if (!buffer.ok()) return;
    cuda_storage_.push_back(std::move(buffer).value());
    auto* cpu_base = reinterpret_cast<std::byte*>(cpu_storage_.back().data());
    auto* cuda_base = cuda_storage_.back().as<std::byte>();
    const size_t layer_bytes = static_cast<size_t>(blocks) * cuda_layout.BlockBytes();
    std::byte* host_base = nullptr;
    if (host_from_layer >= 0 && host_from_layer < layers) {
      void* pinned = nullptr;
      if (cudaHostAlloc(&pinned, (layers - host_from_layer) * layer_bytes, cudaHostAllocMapped) !=
          cudaSuccess) {
        return;
      }
      pinned_.push_back(pinned);
      host_base = static_cast<std::byte*>(pinned);
    }
    std::vector<int> order(static_cast<size_t>(layers) * blocks);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);  // blocks need not be contiguous
    cpu_tables_.emplace_back(layers);
    cuda_tables_.emplace_back(layers);
    for (int l = 0; l < layers; ++l) {
      for (int b = 0; b < blocks; ++b) {
        const size_t slot = order[static_cast<size_t>(l) * blocks + b];
        cpu_tables_[s][l].push_back(cpu_base + slot * cpu_layout.BlockBytes());
        if (host_base != nullptr && l >= host_from_layer) {
          // In layer order within the host allocation; mapped, so the device addresses it.
          cuda_tables_[s][l].push_back(host_base + (l - host_from_layer) * layer_bytes +
                                       b * cuda_layout.BlockBytes());
        } else {
          cuda_tables_[s][l].push_back(cuda_base + slot * cuda_layout.BlockBytes());
        }
      }
    }
  }
  ok_ = true;
}

Status ParityHarness::Step(const std::vector<StepPart>& parts, ParityLogits* out) {
  BatchStep cpu_batch, cuda_batch;
  cpu_batch.capture_layers = cuda_batch.capture_layers = capture_layers_;
  cpu_batch.dense_layers = cuda_batch.dense_layers = dense_layers_;
  for (const StepPart& part : parts) {
    SequenceStep step{.tokens = part.tokens,
                      .start_position = positions_[part.seq],
                      .block_table = cpu_tables_[part.seq],
                      .all_logits = part.all_logits,
                      .sparse_positions = part.sparse_positions};
    cpu_batch.sequences.push_back(step);
    step.block_table = cuda_tables_[part.seq];
    step.host_layers = host_layers_;
    step.slot_blocks = part.slot_blocks;
    step.seq_id = static_cast<uint64_t>(part.seq) + 1;
    // The harness's blocks never move. Even sequences vouch for that, so the runner keeps their
    // tables on the device and uploads only new entries; odd ones have theirs uploaded whole.
    step.table_version = part.seq % 2 == 0 ? 1 : 0;
    cuda_batch.sequences.push_back(std::move(step));
  }
  const int vocab = cuda_->config().vocab_size;
  int rows = 0;
  for (const StepPart& part : parts) rows += part.all_logits ? part.tokens.size() : 1;
  if (summary_top_k_ > 0) {
    LogitsSummaryRequest& request = cuda_batch.summary;
    request.top_k = summary_top_k_;
    for (int row = 0; row < rows; ++row) {
      request.temperatures.push_back(0.5f + 0.25f * static_cast<float>(row % 4));
      request.gather.push_back({(row * 7919) % vocab, (row * 104729 + 1) % vocab});
    }
  }
  StepOutput cpu_out, cuda_out;
  SPC_RETURN_IF_ERROR(cpu_->Step(cpu_batch, &cpu_out));
  SPC_RETURN_IF_ERROR(cuda_->Step(cuda_batch, &cuda_out));
  out->summary_request = cuda_batch.summary;
  out->cuda_summaries = std::move(cuda_out.summaries);
  if (!out->cuda_summaries.empty()) {
    std::vector<float> row;
    for (int r = 0; r < rows; ++r) {
      SPC_RETURN_IF_ERROR(cuda_->LogitsRow(r, &row));
      cuda_out.logits.insert(cuda_out.logits.end(), row.begin(), row.end());
    }
  }
  for (const StepPart& part : parts) positions_[part.seq] += static_cast<int>(part.tokens.size());
  out->cpu = std::move(cpu_out.logits);
  out->cuda = std::move(cuda_out.logits);
  out->cpu_hidden = std::move(cpu_out.hidden);
  out->cuda_hidden = std::move(cuda_out.hidden);
  return Status::Ok();
}

void ParityHarness::Rewind(const std::vector<StepPart>& parts) {
  for (const StepPart& part : parts) positions_[part.seq] -= static_cast<int>(part.tokens.size());
}

}  // namespace specontext::testing_gpu
