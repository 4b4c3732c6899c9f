// Elastic loading on the GPU: SpeContext rows whose upper layers live in mapped pinned host
// memory attend through GPU slot copies of their selected positions. Checked three ways on a
// random model: against the CPU reference (relative L2 2e-2, as the runner parity test), bit
// for bit against the same step attended in place over PCIe (the slot lists keep the
// positions' order, so the arithmetic is identical), and by the copy counters (only positions
// new to a row's selection are copied; a layer newly offloaded copies its whole selection).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <set>

#include "engine/device.h"
#include "engine/model/model_presets.h"
#include "engine/specontext/slot_map.h"
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

// A random tiny Llama (head_dim 128) with its upper half of layers in host memory and three
// prefilled sequences; runs steps on the CUDA runner and the CPU reference together.
class ElasticKvTest : public ::testing::Test {
 protected:
  void Build(size_t slot_bytes) {
    config_ = PresetConfig("tiny-llama").value();
    config_.head_dim = 128;
    model_ = RandomModel(config_, 91);
    ASSERT_NE(model_, nullptr);
    host_from_ = config_.num_layers / 2;
    h_ = std::make_unique<ParityHarness>(*model_, 3, 640,
                                         cuda::CudaRunnerOptions{.max_tokens = 512,
                                                                 .max_sequences = 8,
                                                                 .max_logit_rows = 64,
                                                                 .max_graph_batch = 8,
                                                                 .elastic_slot_bytes = slot_bytes},
                                         // the layer offloaded later already has host blocks
                                         host_from_ - 1);
    ASSERT_TRUE(h_->ok());
    host_layers_.assign(config_.num_layers, 0);
    for (int l = host_from_; l < config_.num_layers; ++l) host_layers_[l] = 1;
    h_->set_host_layers(host_layers_);
    for (int s = 0; s < 3; ++s) {
      ASSERT_TRUE(Run({{s, RandomTokens(300 + 20 * s, config_.vocab_size, rng_)}}));
    }
  }
  ::testing::AssertionResult Run(const std::vector<StepPart>& parts) {
    const Status status = h_->Step(parts, &logits_);
    if (status.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << status.ToString();
  }
  // The same step again, attended in place: its logits must equal `elastic`'s to the bit.
  void ExpectSameInPlace(const std::vector<StepPart>& parts, const ParityLogits& elastic,
                         int step) {
    h_->Rewind(parts);
    h_->set_host_layers({});
    ASSERT_TRUE(Run(parts));
    h_->set_host_layers(host_layers_);
    EXPECT_EQ(logits_.cuda, elastic.cuda) << "step " << step;
  }
  // A decode step of the three rows: row 0 keeps ~90% of its last 64 positions, row 1 is dense,
  // row 2 keeps ~70% of 128, or draws all of them afresh with `reselect_row2`.
  std::vector<StepPart> SparseStep(const std::vector<int32_t>& next, bool reselect_row2 = false) {
    const int heads = config_.num_kv_heads;
    std::vector<StepPart> parts = {{0, {next[0]}}, {1, {next[1]}}, {2, {next[2]}}};
    if (reselect_row2) last2_.clear();
    last0_ = NextLists(last0_, heads, 64, h_->position(0), 0.9, rng_);
    last2_ = NextLists(last2_, heads, 128, h_->position(2), 0.7, rng_);
    parts[0].sparse_positions = last0_;
    parts[2].sparse_positions = last2_;
    return parts;
  }
  // Each sequence's next token: the CPU reference's greedy choice.
  void NextTokens(const ParityLogits& l, std::vector<int32_t>* next) const {
    const int vocab = config_.vocab_size;
    for (int s = 0; s < 3; ++s) {
      const auto begin = l.cpu.begin() + static_cast<long>(s) * vocab;
      (*next)[s] = static_cast<int32_t>(std::max_element(begin, begin + vocab) - begin);
    }
  }

  ModelConfig config_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<ParityHarness> h_;
  std::vector<uint8_t> host_layers_;
  int host_from_ = 0;
  std::mt19937 rng_{3};
  std::vector<std::vector<int32_t>> last0_, last2_;  // SparseStep's last lists
  ParityLogits logits_;
};

TEST_F(ElasticKvTest, SlotsMatchInPlaceAttentionAndCopyOnlyNewPositions) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  ASSERT_NO_FATAL_FAILURE(Build(0));
  const int layers = config_.num_layers, heads = config_.num_kv_heads, host_from = host_from_;

  std::vector<int32_t> next = {1, 2, 3};
  double worst = 0;
  for (int step = 0; step < 24; ++step) {
    // Row 2 changes its selection wholly every eighth step.
    if (step == 12) {
      host_layers_[host_from - 1] = 1;  // the memory manager offloads one more layer
      h_->set_host_layers(host_layers_);
    }
    const std::vector<StepPart> parts = SparseStep(next, step % 8 == 7);

    const ElasticLoadStats before = h_->cuda_runner().elastic_stats();
    ASSERT_TRUE(Run(parts));
    const ElasticLoadStats stats = h_->cuda_runner().elastic_stats();
    const ParityLogits elastic = logits_;
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

    ExpectSameInPlace(parts, elastic, step);
    NextTokens(elastic, &next);
  }
  const ElasticLoadStats stats = h_->cuda_runner().elastic_stats();
  const double loaded_fraction =
      double(stats.positions_loaded) / double(stats.positions_reused + stats.positions_loaded);
  std::cout << "elastic: worst relative error " << worst << ", loaded fraction " << loaded_fraction
            << ", bytes copied " << stats.bytes_copied << "\n";
  // Row 0 loads ~10%, row 2 ~30% plus three whole reselections, and the first step loads all.
  EXPECT_GT(loaded_fraction, 0.15);
  EXPECT_LT(loaded_fraction, 0.45);
  EXPECT_GT(h_->cuda_runner().graphs_captured(), 0);
}

// Dense layers that live in host memory are read in place, never through slots: with the
// first host layer dense, each sparse row loads one layer fewer, and the step still equals the
// CPU reference and, to the bit, the all-in-place step.
TEST_F(ElasticKvTest, DenseLayersInHostMemoryAreReadInPlace) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  ASSERT_NO_FATAL_FAILURE(Build(0));
  const int layers = config_.num_layers;
  h_->set_dense_layers(host_from_ + 1);
  std::vector<int32_t> next = {1, 2, 3};
  for (int step = 0; step < 6; ++step) {
    const std::vector<StepPart> parts = SparseStep(next);
    const ElasticLoadStats before = h_->cuda_runner().elastic_stats();
    ASSERT_TRUE(Run(parts));
    const ElasticLoadStats stats = h_->cuda_runner().elastic_stats();
    const ParityLogits elastic = logits_;
    EXPECT_LT(RelErr(elastic.cuda, elastic.cpu), kTolerance) << "step " << step;
    EXPECT_EQ(stats.row_layers - before.row_layers, 2 * (layers - host_from_ - 1));
    ExpectSameInPlace(parts, elastic, step);
    NextTokens(elastic, &next);
  }
}

// Slot memory capped at what row 0's slots take: row 2's do not fit, so it attends its host
// layers in place every step while row 0 goes through its slots; both give the logits of the
// all-in-place step, to the bit.
TEST_F(ElasticKvTest, RowsWhoseSlotsDoNotFitAttendInPlace) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  ModelConfig probe = PresetConfig("tiny-llama").value();
  probe.head_dim = 128;
  const KvLayout layout{.num_layers = probe.num_layers,
                        .num_kv_heads = probe.num_kv_heads,
                        .head_dim = probe.head_dim,
                        .block_tokens = 16,
                        .dtype = DType::kBF16};
  const int offloaded = probe.num_layers - probe.num_layers / 2;
  const size_t row0_bytes = size_t(offloaded) * (SlotCapacity(63, 16) / 16) * layout.BlockBytes();
  ASSERT_NO_FATAL_FAILURE(Build(row0_bytes));
  ASSERT_EQ(h_->cuda_runner().kv_layout().BlockBytes(), layout.BlockBytes());
  std::vector<int32_t> next = {1, 2, 3};
  for (int step = 0; step < 6; ++step) {
    const std::vector<StepPart> parts = SparseStep(next);
    const ElasticLoadStats before = h_->cuda_runner().elastic_stats();
    ASSERT_TRUE(Run(parts));
    const ElasticLoadStats delta = h_->cuda_runner().elastic_stats() - before;
    const ParityLogits elastic = logits_;
    EXPECT_LT(RelErr(elastic.cuda, elastic.cpu), kTolerance) << "step " << step;
    EXPECT_EQ(delta.row_layers, offloaded) << "step " << step;  // row 0 only
    EXPECT_EQ(delta.rows_in_place, 1) << "step " << step;       // row 2
    EXPECT_EQ(delta.positions_reused + delta.positions_loaded, int64_t(config_.num_kv_heads) * 63);
    ExpectSameInPlace(parts, elastic, step);
    NextTokens(elastic, &next);
  }
}

// Slot blocks lent by the KV store's pool (SequenceStep::slot_blocks) serve as the runner's own
// would, scattered as they are: with the runner's own slot memory capped at nothing, both
// sparse rows still go through slots, to the bit of the in-place step. A new lease for one layer
// copies that layer's selection whole into its new blocks; too few blocks lent, and the row
// (with no room of its own) attends in place.
TEST_F(ElasticKvTest, LentSlotBlocksServeAsTheRunnersOwn) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  ASSERT_NO_FATAL_FAILURE(Build(1));
  const int layers = config_.num_layers, offloaded = layers - host_from_;
  const size_t block_bytes = h_->cuda_runner().kv_layout().BlockBytes();
  // Row 0 lists 64 positions, row 2 lists 128: 5 and 10 blocks of 16 slots.
  const int row0_blocks = SlotCapacity(63, 16) / 16, row2_blocks = SlotCapacity(127, 16) / 16;
  const int pool_blocks = 2 * layers * (row0_blocks + row2_blocks);
  auto pool = cuda::DeviceBuffer::Allocate(pool_blocks * block_bytes);
  ASSERT_TRUE(pool.ok());
  std::vector<int> order(pool_blocks);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng_);
  int taken = 0;
  uint64_t lease = 0;
  auto lend = [&](int blocks) {
    SlotBlocks lent{.lease = ++lease};
    for (int b = 0; b < blocks; ++b) {
      lent.blocks.push_back(pool->as<std::byte>() + order[taken++] * block_bytes);
    }
    return lent;
  };
  std::vector<SlotBlocks> row0(layers), row2(layers);
  for (int l = host_from_; l < layers; ++l) {
    row0[l] = lend(row0_blocks);
    row2[l] = lend(row2_blocks);
  }

  std::vector<int32_t> next = {1, 2, 3};
  for (int step = 0; step < 6; ++step) {
    if (step == 3) row0[layers - 1] = lend(row0_blocks);  // that layer was lent anew
    if (step == 5) row2[host_from_].blocks.pop_back();    // too few: the row goes in place
    std::vector<StepPart> parts = SparseStep(next);
    parts[0].slot_blocks = row0;
    parts[2].slot_blocks = row2;
    const ElasticLoadStats before = h_->cuda_runner().elastic_stats();
    ASSERT_TRUE(Run(parts));
    const ElasticLoadStats delta = h_->cuda_runner().elastic_stats() - before;
    const ParityLogits elastic = logits_;
    EXPECT_LT(RelErr(elastic.cuda, elastic.cpu), kTolerance) << "step " << step;
    EXPECT_EQ(delta.rows_in_place, step == 5 ? 1 : 0) << "step " << step;
    EXPECT_EQ(delta.row_layers, (step == 5 ? 1 : 2) * offloaded) << "step " << step;
    EXPECT_EQ(delta.whole_layer_loads, step == 0   ? 2 * offloaded
                                       : step == 3 ? 1
                                                   : 0)
        << "step " << step;
    ExpectSameInPlace(parts, elastic, step);
    NextTokens(elastic, &next);
  }
}

}  // namespace
}  // namespace specontext::testing_gpu
