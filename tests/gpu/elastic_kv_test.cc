// Elastic loading on the GPU: SpeContext rows whose upper layers live in mapped pinned host
// memory attend through GPU slot copies of their selected positions. Checked three ways on a
// random model: against the CPU reference (relative L2 2e-2, as the runner parity test), bit
// for bit against the same step attended in place over PCIe (the slot lists keep the
// positions' order, so the arithmetic is identical), and by the copy counters (only positions
// new to a row's selection are copied; a layer newly offloaded copies its whole selection).
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "engine/device.h"
#include "engine/model/model_presets.h"
#include "tests/gpu/model_runner_parity.h"

namespace specontext::testing_gpu {
namespace {

constexpr double kTolerance = 2e-2;

// Per KV head: `keep` of the last list survives, the rest is drawn afresh, `own` ends it.
std::vector<std::vector<int32_t>> NextLists(const std::vector<std::vector<int32_t>>& last,
                                            int heads, int budget, int own, double keep,
                                            std::mt19937& rng) {
  std::vector<std::vector<int32_t>> lists(heads);
  for (int h = 0; h < heads; ++h) {
    std::set<int32_t> chosen;
    if (!last.empty()) {
      for (size_t i = 0; i + 1 < last[h].size(); ++i) {
        if (std::uniform_real_distribution<>(0, 1)(rng) < keep) chosen.insert(last[h][i]);
      }
    }
    while (static_cast<int>(chosen.size()) < budget - 1) chosen.insert(rng() % own);
    lists[h].assign(chosen.begin(), chosen.end());
    lists[h].push_back(own);
  }
  return lists;
}

TEST(ElasticKv, SlotsMatchInPlaceAttentionAndCopyOnlyNewPositions) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  ModelConfig config = PresetConfig("tiny-llama").value();
  config.head_dim = 128;
  auto model = RandomModel(config, 91);
  ASSERT_NE(model, nullptr);
  const int layers = config.num_layers, heads = config.num_kv_heads;
  const int host_from = layers / 2;
  ParityHarness h(
      *model, 3, 640,
      {.max_tokens = 512, .max_sequences = 8, .max_logit_rows = 64, .max_graph_batch = 8},
      host_from - 1);  // the layer offloaded at step 12 already has its blocks in host memory
  ASSERT_TRUE(h.ok());
  std::vector<uint8_t> host_layers(layers, 0);
  for (int l = host_from; l < layers; ++l) host_layers[l] = 1;
  h.set_host_layers(host_layers);
  const int vocab = config.vocab_size;
  std::mt19937 rng(3);
  ParityLogits logits;
  auto run = [&](const std::vector<StepPart>& parts) -> ::testing::AssertionResult {
    const Status status = h.Step(parts, &logits);
    if (status.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << status.ToString();
  };
  for (int s = 0; s < 3; ++s) ASSERT_TRUE(run({{s, RandomTokens(300 + 20 * s, vocab, rng)}}));

  std::vector<std::vector<int32_t>> last0, last2;
  std::vector<int32_t> next = {1, 2, 3};
  double worst = 0;
  for (int step = 0; step < 24; ++step) {
    // Row 0 keeps ~90% of its 64 positions, row 1 is dense, row 2 keeps ~70% of 128 and
    // changes its selection wholly every eighth step.
    if (step == 12) {
      host_layers[host_from - 1] = 1;  // the memory manager offloads one more layer
      h.set_host_layers(host_layers);
    }
    std::vector<StepPart> parts = {{0, {next[0]}}, {1, {next[1]}}, {2, {next[2]}}};
    last0 = NextLists(last0, heads, 64, h.position(0), 0.9, rng);
    last2 =
        NextLists(step % 8 == 7 ? decltype(last2){} : last2, heads, 128, h.position(2), 0.7, rng);
    parts[0].sparse_positions = last0;
    parts[2].sparse_positions = last2;

    const ElasticLoadStats before = h.cuda_runner().elastic_stats();
    ASSERT_TRUE(run(parts));
    const ElasticLoadStats stats = h.cuda_runner().elastic_stats();
    const ParityLogits elastic = logits;
    worst = std::max(worst, RelErr(elastic.cuda, elastic.cpu));
    EXPECT_LT(RelErr(elastic.cuda, elastic.cpu), kTolerance) << "step " << step;
    const int elastic_layers = layers - host_from + (step >= 12);
    EXPECT_EQ(stats.row_layers - before.row_layers, 2 * elastic_layers);
    const int64_t listed = int64_t(heads) * (63 + 127);
    EXPECT_EQ(stats.positions_reused + stats.positions_loaded -
                  (before.positions_reused + before.positions_loaded),
              listed);
    const int64_t whole = stats.whole_layer_loads - before.whole_layer_loads;
    EXPECT_EQ(whole, step == 0 ? 2 * elastic_layers : step == 12 ? 2 : 0) << "step " << step;
    // Only the first step copies into empty slot maps; a wholly new selection later does not.
    EXPECT_EQ(stats.positions_first_loaded - before.positions_first_loaded, step == 0 ? listed : 0);

    // The same step attended in place: identical logits, to the bit.
    h.Rewind(parts);
    h.set_host_layers({});
    ASSERT_TRUE(run(parts));
    h.set_host_layers(host_layers);
    EXPECT_EQ(logits.cuda, elastic.cuda) << "step " << step;
    for (int s = 0; s < 3; ++s) {
      const auto begin = elastic.cpu.begin() + static_cast<long>(s) * vocab;
      next[s] = static_cast<int32_t>(std::max_element(begin, begin + vocab) - begin);
    }
  }
  const ElasticLoadStats stats = h.cuda_runner().elastic_stats();
  const double loaded_fraction =
      double(stats.positions_loaded) / double(stats.positions_reused + stats.positions_loaded);
  std::cout << "elastic: worst relative error " << worst << ", loaded fraction " << loaded_fraction
            << ", bytes copied " << stats.bytes_copied << "\n";
  // Row 0 loads ~10%, row 2 ~30% plus three whole reselections, and the first step loads all.
  EXPECT_GT(loaded_fraction, 0.15);
  EXPECT_LT(loaded_fraction, 0.45);
  EXPECT_GT(h.cuda_runner().graphs_captured(), 0);
}

}  // namespace
}  // namespace specontext::testing_gpu
