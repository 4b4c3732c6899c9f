// The memory manager in the serving path, end to end on the CPU backend: an emulated GPU tier
// far below demand, so layers are demoted to host memory and spilled to an NVMe file while
// several greedy requests run; outputs must equal a run where everything fits, the store must
// pass its integrity check after every step, and the metrics must show the decisions.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "server/engine_metrics_observer.h"
#include "server/metrics.h"
#include "tests/scheduler/engine_fixture.h"

namespace specontext::testing {
namespace {

using Outcome = EngineFixture::Outcome;

std::vector<std::vector<int32_t>> Prompts(const std::vector<int>& lengths, int vocab) {
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < lengths.size(); ++i) {
    prompts.push_back(MakePrompt(lengths[i], vocab, 100 + static_cast<uint32_t>(i)));
  }
  return prompts;
}

std::vector<Outcome> RunConcurrently(EngineFixture& engine,
                                     const std::vector<std::vector<int32_t>>& prompts,
                                     int max_tokens) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerationRequest request = GreedyRequest(prompts[i], max_tokens);
    request.id = "req-" + std::to_string(i);
    auto stream = engine.loop().Submit(std::move(request));
    EXPECT_TRUE(stream.ok()) << stream.status().ToString();
    if (stream.ok()) streams.push_back(*stream);
  }
  std::vector<Outcome> outcomes;
  for (auto& stream : streams) outcomes.push_back(EngineFixture::Collect(*stream));
  return outcomes;
}

// The value of the series `name{...needle...}` in a Prometheus text scrape; -1 when absent.
double SeriesValue(const std::string& scrape, const std::string& name, const std::string& needle) {
  std::istringstream lines(scrape);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(name + "{") && line.find(needle) != std::string::npos) {
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return -1;
}

std::string NvmePath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("specontext_" + name + "_" + std::to_string(::getpid()) + ".kv"))
      .string();
}

void ExpectNothingLeft(EngineFixture& engine) {
  engine.loop().Stop(std::chrono::milliseconds(0));
  EXPECT_EQ(engine.loop().idle_check_failures(), 0);
  engine.store().DropUnusedPrefixes();
  EXPECT_TRUE(engine.store().CheckIntegrity().ok()) << engine.store().CheckIntegrity().ToString();
  for (Tier tier : kAllTiers) {
    EXPECT_EQ(engine.store().Usage(tier).used_blocks, 0) << TierName(tier);
  }
}

TEST(KvPlacementTest, HostAndNvmeTiersGiveTheSameGreedyOutputsAsARoomyStore) {
  server::ServingMetrics metrics("tiny");
  server::EngineMetricsObserver observer(&metrics);
  // tiny-llama: 2 layers, 2 KV heads x 16 dims, fp32, 16-token blocks of 4 KiB.
  EngineFixtureOptions tight;
  tight.gpu_blocks = 6;    // 48 positions per layer of one sequence: far below demand
  tight.host_blocks = 40;  // the running step fits; the rest spills
  tight.nvme_blocks = 256;
  tight.nvme_path = NvmePath("placement_e2e");
  tight.placement.observer = &observer;
  tight.placement.check_integrity_every_step = true;
  // Small steps keep prefills waiting for budget: those sequences are the ones that spill.
  tight.scheduler.max_step_tokens = 16;
  // Off so the store is empty at the end and the tier gauges must read zero (cached prompt
  // blocks would stay); the long-request test below runs with the cache on.
  tight.prefix_caching = false;
  EngineFixture engine(tight);

  const auto prompts = Prompts({40, 70, 30, 90, 24, 60}, engine.config().vocab_size);
  const auto outcomes = RunConcurrently(engine, prompts, 24);

  EngineFixture roomy;
  const auto expected = RunConcurrently(roomy, prompts, 24);
  ASSERT_EQ(outcomes.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(outcomes[i].finish, FinishReason::kLength)
        << i << ": " << outcomes[i].error.ToString();
    EXPECT_EQ(outcomes[i].tokens, expected[i].tokens) << "request " << i;
  }

  const KvPlacement& placement = engine.placement();
  // A sequence admitted whose first chunk cannot be reserved yet is released and admitted again.
  EXPECT_GE(placement.decisions(MemoryDecision::kAdmit), static_cast<int64_t>(prompts.size()));
  EXPECT_GT(placement.decisions(MemoryDecision::kDemote), 0);
  EXPECT_GT(placement.decisions(MemoryDecision::kSpill), 0);
  EXPECT_EQ(placement.decisions(MemoryDecision::kReject), 0);
  EXPECT_LT(engine.loop().preemptions(), static_cast<int64_t>(prompts.size()));
  RecordProperty("demotions", std::to_string(placement.decisions(MemoryDecision::kDemote)));
  RecordProperty("spills", std::to_string(placement.decisions(MemoryDecision::kSpill)));
  RecordProperty("promotions", std::to_string(placement.decisions(MemoryDecision::kPromote)));
  RecordProperty("preemptions", std::to_string(engine.loop().preemptions()));

  const std::string scrape = metrics.Scrape();
  for (MemoryDecision d : {MemoryDecision::kAdmit, MemoryDecision::kDemote, MemoryDecision::kSpill,
                           MemoryDecision::kReject}) {
    const std::string label = "decision=\"" + std::string(MemoryDecisionName(d)) + "\"";
    EXPECT_EQ(SeriesValue(scrape, "specontext_memory_decisions_total", label),
              static_cast<double>(placement.decisions(d)))
        << label;
  }
  // Every request has finished: the tier gauges report an empty store.
  for (const char* tier : {"gpu", "host", "nvme"}) {
    const std::string label = std::string("tier=\"") + tier + "\"";
    EXPECT_EQ(SeriesValue(scrape, "specontext_kv_tier_bytes", label), 0.0) << scrape;
  }
  ExpectNothingLeft(engine);
}

TEST(KvPlacementTest, GpuTierFillsFirstThenTheLastLayersMoveToHost) {
  server::ServingMetrics metrics("tiny");
  server::EngineMetricsObserver observer(&metrics);
  EngineFixtureOptions options;
  options.gpu_blocks = 8;
  options.host_blocks = 64;
  options.placement.observer = &observer;
  options.placement.check_integrity_every_step = true;
  EngineFixture engine(options);
  const auto prompt = MakePrompt(50, engine.config().vocab_size, 7);

  // Alone, 50 + 40 positions need 6 blocks per layer: layer 0 keeps the GPU, layer 1 moves.
  GenerationRequest request = GreedyRequest(prompt, 40);
  request.id = "long";
  auto stream = engine.loop().Submit(std::move(request));
  ASSERT_TRUE(stream.ok());
  const Outcome outcome = EngineFixture::Collect(**stream);
  EXPECT_EQ(outcome.finish, FinishReason::kLength) << outcome.error.ToString();

  EngineFixture roomy;
  EXPECT_EQ(outcome.tokens, roomy.Generate(prompt, 40).tokens);
  EXPECT_GE(engine.placement().decisions(MemoryDecision::kDemote), 1);
  EXPECT_EQ(engine.placement().decisions(MemoryDecision::kSpill), 0);
  EXPECT_GE(
      SeriesValue(metrics.Scrape(), "specontext_memory_decisions_total", "decision=\"demote\""),
      1.0);
  ExpectNothingLeft(engine);
}

TEST(KvPlacementTest, AdmissionDefersWhatDoesNotFitAndRejectsWhatNeverCan) {
  EngineFixtureOptions options;
  options.host_blocks = 2 * 8;  // 128 positions per layer in all
  EngineFixture engine(options);
  const int vocab = engine.config().vocab_size;
  // 60 + 30 positions each (6 blocks per layer): the second waits for the first to finish.
  const auto outcomes = RunConcurrently(engine, Prompts({60, 60}, vocab), 30);
  for (const Outcome& o : outcomes)
    EXPECT_EQ(o.finish, FinishReason::kLength) << o.error.ToString();
  EXPECT_EQ(engine.placement().decisions(MemoryDecision::kDefer), 1);
  EXPECT_EQ(engine.loop().preemptions(), 0);

  const Outcome too_long = engine.Generate(MakePrompt(200, vocab, 5), 4);
  EXPECT_EQ(too_long.finish, FinishReason::kError);
  EXPECT_EQ(too_long.error.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(engine.placement().decisions(MemoryDecision::kReject), 1);
  ExpectNothingLeft(engine);
}

}  // namespace
}  // namespace specontext::testing

namespace specontext::testing {
namespace {

// Three layers, blocks of 4 positions, `gpu_blocks` emulated GPU blocks, and the serving path's
// KV over it.
struct SmallServingKv {
  std::unique_ptr<KvStore> store;
  std::unique_ptr<StoreSequenceKv> kv;
};
SmallServingKv MakeSmallServingKv(int32_t gpu_blocks = 6) {
  const KvLayout layout{
      .num_layers = 3, .num_kv_heads = 1, .head_dim = 64, .block_tokens = 4, .dtype = DType::kF32};
  auto store = KvStore::Create(
      {.layout = layout, .gpu_blocks = gpu_blocks, .emulate_gpu = true, .host_blocks = 64});
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return {};
  auto kv = StoreSequenceKv::Create(store->get());
  EXPECT_TRUE(kv.ok()) << kv.status().ToString();
  if (!kv.ok()) return {};
  return {std::move(store).value(), std::move(kv).value()};
}

// The runner learns which layers of a step's sequence live off the GPU: that is what sends a
// sparse row's offloaded layers through elastic slots.
TEST(KvPlacementTest, StepsMarkTheLayersTheManagerOffloaded) {
  SmallServingKv small = MakeSmallServingKv();
  ASSERT_NE(small.kv, nullptr);
  StoreSequenceKv* kv = small.kv.get();
  const std::vector<int32_t> tokens(4, 1);
  ASSERT_TRUE(kv->Admit(1, tokens, 16, 0, "r").ok());
  SequenceStep step;
  ASSERT_TRUE(kv->Reserve(1, 4).ok());
  ASSERT_TRUE(kv->BeginStep(1, 0, 4, &step).ok());
  EXPECT_EQ(step.host_layers, (std::vector<uint8_t>{0, 0, 0}));
  ASSERT_TRUE(kv->EndStep(1, &step).ok());
  // 16 positions take 4 blocks per layer: the 6 GPU blocks hold one layer, the rest move.
  ASSERT_TRUE(kv->Reserve(1, 16).ok());
  ASSERT_TRUE(kv->BeginStep(1, 4, 12, &step).ok());
  EXPECT_EQ(step.host_layers, (std::vector<uint8_t>{0, 1, 1}));
  EXPECT_EQ(step.block_table.size(), 3u);
  ASSERT_TRUE(kv->EndStep(1, &step).ok());
  kv->Release(1);
}

// A sparse sequence's offloaded layers keep slots on the GPU, lent from the GPU tier's pool:
// the placement counts them when it decides how many layers stay, and the store takes them
// back when the sequence leaves.
TEST(KvPlacementTest, SparseRowsBorrowTheSlotsThePlacementCounted) {
  SmallServingKv small = MakeSmallServingKv();
  ASSERT_NE(small.kv, nullptr);
  StoreSequenceKv* kv = small.kv.get();
  KvStore* store = small.store.get();
  // B = 8: lists of 8, so SlotCapacity(7) = 8 slots, two blocks per offloaded layer.
  const std::vector<int32_t> tokens(16, 1);
  ASSERT_TRUE(kv->Admit(1, tokens, 24, 8, "sparse").ok());
  SequenceStep prefill;
  ASSERT_TRUE(kv->Reserve(1, 16).ok());
  ASSERT_TRUE(kv->BeginStep(1, 0, 16, &prefill).ok());
  EXPECT_TRUE(prefill.slot_blocks.empty());  // not a sparse decode row
  ASSERT_TRUE(kv->EndStep(1, &prefill).ok());

  // 17 positions round to 20 (5 blocks a layer). Dense, one layer would stay on the 6 GPU
  // blocks; with 2 slot blocks for each offloaded layer nothing does: 3 x 2 = 6.
  SequenceStep decode;
  decode.tokens = {1};
  decode.sparse_positions = {{0, 1, 2, 3, 10, 11, 12, 16}};
  ASSERT_TRUE(kv->Reserve(1, 17).ok());
  ASSERT_TRUE(kv->BeginStep(1, 16, 1, &decode).ok());
  EXPECT_EQ(decode.host_layers, (std::vector<uint8_t>{1, 1, 1}));
  ASSERT_EQ(decode.slot_blocks.size(), 3u);
  for (const SlotBlocks& slots : decode.slot_blocks) {
    EXPECT_EQ(slots.blocks.size(), 2u);
    EXPECT_NE(slots.lease, 0u);
  }
  EXPECT_EQ(store->LentSlotBlocks(), 6);
  EXPECT_EQ(store->Usage(Tier::kGpu).free_blocks, 0);
  const uint64_t lease = decode.slot_blocks[2].lease;
  ASSERT_TRUE(kv->EndStep(1, &decode).ok());
  EXPECT_TRUE(store->CheckIntegrity().ok());

  // The next step gets the same slots, so the runner keeps what it copied into them.
  decode.start_position = 17;
  decode.sparse_positions = {{0, 1, 2, 3, 10, 11, 12, 17}};
  ASSERT_TRUE(kv->Reserve(1, 18).ok());
  ASSERT_TRUE(kv->BeginStep(1, 17, 1, &decode).ok());
  EXPECT_EQ(decode.slot_blocks[2].lease, lease);
  ASSERT_TRUE(kv->EndStep(1, &decode).ok());
  kv->Release(1);
  EXPECT_EQ(store->LentSlotBlocks(), 0);
  EXPECT_EQ(store->Usage(Tier::kGpu).used_blocks, 0);

  // The same sequence dense keeps layer 0 on the GPU.
  ASSERT_TRUE(kv->Admit(2, tokens, 24, 0, "dense").ok());
  ASSERT_TRUE(kv->Reserve(2, 17).ok());
  ASSERT_TRUE(kv->BeginStep(2, 0, 17, &prefill).ok());
  EXPECT_EQ(prefill.host_layers, (std::vector<uint8_t>{0, 1, 1}));
  ASSERT_TRUE(kv->EndStep(2, &prefill).ok());
  kv->Release(2);
}

// A layer promoted back to the GPU returns its slots first, so the promotion may use the room
// they held: here it fits only with them.
TEST(KvPlacementTest, APromotionCountsTheSlotsItGivesBack) {
  SmallServingKv small = MakeSmallServingKv(7);  // 28 positions
  ASSERT_NE(small.kv, nullptr);
  StoreSequenceKv* kv = small.kv.get();
  KvStore* store = small.store.get();
  // A: 12 positions (3 blocks) with B = 4, so one slot block per offloaded layer: 12 for its
  // slots leave 16, two GPU layers.
  ASSERT_TRUE(kv->Admit(1, std::vector<int32_t>(9, 1), 12, 4, "a").ok());
  SequenceStep step;
  ASSERT_TRUE(kv->Reserve(1, 9).ok());
  ASSERT_TRUE(kv->BeginStep(1, 0, 9, &step).ok());
  EXPECT_EQ(step.host_layers, (std::vector<uint8_t>{0, 0, 1}));
  ASSERT_TRUE(kv->EndStep(1, &step).ok());
  // A dense request of 8 takes one of A's GPU layers (each costs both 8 positions).
  ASSERT_TRUE(kv->Admit(2, std::vector<int32_t>(7, 1), 8, 0, "b").ok());
  ASSERT_TRUE(kv->Reserve(2, 7).ok());
  ASSERT_TRUE(kv->BeginStep(2, 0, 7, &step).ok());
  ASSERT_TRUE(kv->EndStep(2, &step).ok());
  // A decodes sparsely: its two offloaded layers borrow a block each, and the tier is full.
  SequenceStep decode{.tokens = {1}, .start_position = 9};
  decode.sparse_positions = {{5, 6, 7, 9}};
  ASSERT_TRUE(kv->Reserve(1, 10).ok());
  ASSERT_TRUE(kv->BeginStep(1, 9, 1, &decode).ok());
  EXPECT_EQ(decode.host_layers, (std::vector<uint8_t>{0, 1, 1}));
  ASSERT_TRUE(kv->EndStep(1, &decode).ok());
  EXPECT_EQ(store->Usage(Tier::kGpu).free_blocks, 0);
  // B leaves 2 blocks; layer 1 needs 3, and gets them with its slot block back.
  kv->Release(2);
  EXPECT_EQ(*store->LayerTier(1, 1), Tier::kGpu);
  EXPECT_EQ(store->LentSlotBlocks(), 1);
  EXPECT_EQ(kv->placement().decisions(MemoryDecision::kPromote), 1);
  EXPECT_TRUE(store->CheckIntegrity().ok());
  kv->Release(1);
}

}  // namespace
}  // namespace specontext::testing
