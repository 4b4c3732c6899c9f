#include "tests/scheduler/engine_fixture.h"

#include <gtest/gtest.h>

#include <random>

namespace specontext::testing {

EngineFixture::EngineFixture(EngineFixtureOptions options) {
  auto model = LoadModel(options.preset);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  model_ = std::move(model).value();
  cpu::CpuRunnerOptions runner_options;
  runner_options.block_tokens = options.block_tokens;
  auto runner = cpu::CpuModelRunner::Create(*model_, runner_options);
  EXPECT_TRUE(runner.ok()) << runner.status().ToString();
  runner_ = std::move(runner).value();

  KvStoreOptions store_options;
  store_options.layout = runner_->kv_layout();
  store_options.host_blocks = options.host_blocks;
  store_options.gpu_blocks = options.gpu_blocks;
  store_options.emulate_gpu = true;
  store_options.prefix_caching = options.prefix_caching;
  store_options.nvme_blocks = options.nvme_blocks;
  store_options.nvme_path = options.nvme_path;
  auto store = KvStore::Create(store_options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  store_ = std::move(store).value();
  auto kv = StoreSequenceKv::Create(store_.get(), options.placement);
  EXPECT_TRUE(kv.ok()) << kv.status().ToString();
  kv_ = std::move(kv).value();

  EngineLoopOptions loop_options;
  loop_options.scheduler = options.scheduler;
  loop_options.max_model_len = options.max_model_len;
  loop_options.planner = options.planner;
  loop_options.idle_check = [this] { return store_->CheckIntegrity(); };
  loop_ = std::make_unique<EngineLoop>(loop_options, runner_.get(), kv_.get(),
                                       Sampler(model_->config.eos_token_ids), options.observer);
  loop_->Start();
}

EngineFixture::~EngineFixture() { loop_->Stop(std::chrono::milliseconds(0)); }

EngineFixture::Outcome EngineFixture::Collect(RequestStream& stream) {
  Outcome outcome;
  const auto deadline = SteadyClock::now() + std::chrono::seconds(60);
  while (SteadyClock::now() < deadline) {
    auto event = stream.Next(std::chrono::milliseconds(100));
    if (!event) continue;
    for (const SampledToken& token : event->tokens) outcome.tokens.push_back(token.token);
    if (event->finish != FinishReason::kNone) {
      outcome.finish = event->finish;
      outcome.error = event->error;
      outcome.usage = event->usage;
      return outcome;
    }
  }
  ADD_FAILURE() << "request did not finish within 60 s";
  return outcome;
}

GenerationRequest GreedyRequest(std::vector<int32_t> prompt, int max_tokens, int priority) {
  GenerationRequest request;
  request.prompt_tokens = std::move(prompt);
  request.sampling.temperature = 0.0f;
  request.sampling.max_tokens = max_tokens;
  request.sampling.ignore_eos = true;
  request.priority = priority;
  return request;
}

EngineFixture::Outcome EngineFixture::Generate(std::vector<int32_t> prompt, int max_tokens,
                                               int priority) {
  auto stream = loop_->Submit(GreedyRequest(std::move(prompt), max_tokens, priority));
  if (!stream.ok()) {
    Outcome failed;
    failed.finish = FinishReason::kError;
    failed.error = stream.status();
    return failed;
  }
  return Collect(**stream);
}

std::vector<int32_t> MakePrompt(int length, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> prompt(length);
  for (auto& token : prompt) token = dist(rng);
  return prompt;
}

}  // namespace specontext::testing
