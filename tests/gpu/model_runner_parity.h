// Runs the same steps through the CPU reference and the CUDA backend, each with its own KV
// blocks (fp32 on the host, BF16 on the device), and returns both backends' logits.
#pragma once

#include <memory>
#include <random>
#include <vector>

#include "engine/cpu/cpu_model_runner.h"
#include "engine/cuda/cuda_model_runner.h"
#include "engine/cuda/device_buffer.h"
#include "engine/model/model.h"

namespace specontext::testing_gpu {

// A model of `config` with seeded random weights: matrices N(0, 0.1) so logits have clear
// maxima, norm weights around 1 so a missing norm shows.
std::unique_ptr<Model> RandomModel(const ModelConfig& config, uint64_t seed);

// Relative L2 error of `got` against `ref`; infinite when `got` has a NaN.
double RelErr(const std::vector<float>& got, const std::vector<float>& ref);
std::vector<int32_t> RandomTokens(int n, int vocab, std::mt19937& rng);

struct StepPart {
  int seq = 0;
  std::vector<int32_t> tokens;
  bool all_logits = false;
  std::vector<std::vector<int32_t>> sparse_positions;  // per KV head; empty: dense
  std::vector<SlotBlocks> slot_blocks;  // the CUDA step's lent slot blocks (SequenceStep)
};

struct ParityLogits {
  std::vector<float> cpu, cuda;
  std::vector<float> cpu_hidden, cuda_hidden;  // StepOutput::hidden with capture layers set
  // With a summary depth set: what the CUDA step was asked for and returned (`cuda` then holds
  // the rows LogitsRow gives back).
  LogitsSummaryRequest summary_request;
  std::vector<LogitsSummary> cuda_summaries;
};

class ParityHarness {
 public:
  // capacity: positions each sequence may reach. Layers from `host_from_layer` on keep their
  // CUDA blocks in mapped pinned host memory (offloaded KV); -1 keeps every layer on the device.
  ParityHarness(const Model& model, int num_seqs, int capacity, const cuda::CudaRunnerOptions& opt,
                int host_from_layer = -1);
  ~ParityHarness();
  bool ok() const { return ok_; }
  const cuda::CudaModelRunner& cuda_runner() const { return *cuda_; }
  // Positions sequence `seq` holds so far.
  int position(int seq) const { return positions_[seq]; }

  // Later steps capture these layers' inputs (BatchStep::capture_layers).
  void set_capture_layers(std::vector<int> layers) { capture_layers_ = std::move(layers); }
  // Later steps' sparse rows attend densely in layers [0, n) (BatchStep::dense_layers).
  void set_dense_layers(int n) { dense_layers_ = n; }
  // Later CUDA steps return logits summaries of this depth (0: whole rows), each row at its
  // own temperature and with two gathered tokens.
  void set_summary_top_k(int top_k) { summary_top_k_ = top_k; }
  // Later CUDA steps mark these layers as offloaded (SequenceStep::host_layers, with seq_id
  // = seq + 1), so sparse rows attend to them through elastic slots; empty: none.
  void set_host_layers(std::vector<uint8_t> layers) { host_layers_ = std::move(layers); }
  // Moves the parts' sequences back by their tokens, so the same step can run again.
  void Rewind(const std::vector<StepPart>& parts);
  // Runs the parts as one batch on both backends; sequence positions advance.
  Status Step(const std::vector<StepPart>& parts, ParityLogits* out);

 private:
  std::unique_ptr<cpu::CpuModelRunner> cpu_;
  std::unique_ptr<cuda::CudaModelRunner> cuda_;
  std::vector<int> positions_;
  std::vector<int> capture_layers_;
  int dense_layers_ = 0;
  int summary_top_k_ = 0;
  std::vector<uint8_t> host_layers_;
  std::vector<void*> pinned_;  // host-resident CUDA blocks
  // Per sequence and layer: block pointers of each backend (device blocks in shuffled order).
  std::vector<std::vector<std::vector<std::byte*>>> cpu_tables_, cuda_tables_;
  std::vector<std::vector<float>> cpu_storage_;
  std::vector<cuda::DeviceBuffer> cuda_storage_;
  bool ok_ = false;
};

}  // namespace specontext::testing_gpu
