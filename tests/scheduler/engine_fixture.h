// A real engine for scheduler tests: a tiny random-weight preset on the CPU backend, a KV store
// with tiers of chosen sizes (the GPU tier emulated in host memory), and the engine loop.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/cpu/cpu_model_runner.h"
#include "engine/model/model.h"
#include "kv_store/kv_store.h"
#include "scheduler/engine_loop.h"
#include "scheduler/store_sequence_kv.h"

namespace specontext::testing {

struct EngineFixtureOptions {
  std::string preset = "preset:tiny-llama";
  int host_blocks = 512;
  int gpu_blocks = 0;  // an emulated GPU tier (host memory) when positive
  int nvme_blocks = 0;
  std::string nvme_path;  // the NVMe tier's file, when nvme_blocks > 0
  KvPlacementOptions placement;
  EngineObserver* observer = nullptr;  // must outlive the fixture
  bool prefix_caching = true;
  int block_tokens = 16;
  SchedulerOptions scheduler;
  int max_model_len = 512;
  StepPlanner* planner = nullptr;  // SpeContext; must outlive the fixture
};

class EngineFixture {
 public:
  explicit EngineFixture(EngineFixtureOptions options = {});
  ~EngineFixture();

  EngineLoop& loop() { return *loop_; }
  KvStore& store() { return *store_; }
  const KvPlacement& placement() const { return kv_->placement(); }
  const ModelConfig& config() const { return runner_->config(); }

  // Submits and collects every event until the final one (or a 60 s timeout).
  struct Outcome {
    std::vector<int32_t> tokens;
    FinishReason finish = FinishReason::kNone;
    Status error;
    Usage usage;
  };
  static Outcome Collect(RequestStream& stream);
  Outcome Generate(std::vector<int32_t> prompt, int max_tokens, int priority = 0);

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<cpu::CpuModelRunner> runner_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<StoreSequenceKv> kv_;
  std::unique_ptr<EngineLoop> loop_;
};

// A greedy request that ignores EOS, so it runs exactly max_tokens steps.
GenerationRequest GreedyRequest(std::vector<int32_t> prompt, int max_tokens, int priority = 0);

// Deterministic prompt of `length` tokens within the vocabulary.
std::vector<int32_t> MakePrompt(int length, int vocab, uint32_t seed);

}  // namespace specontext::testing
