// The memory model on the paper's setting, checked against numbers worked out by hand.
//
// Llama-3.1-8B (DS-R1-Distill-Llama-8B): L = 32 layers, H = 8 KV heads, D = 128, bf16 KV.
// M_O = 16 GB of weights, M_D = 0.06 GB for the retrieval head, Mem_GPU = 80 GB, R = 32,
// B = 2048, alpha = 0 (GQA-native kernel). GB = 1e9 bytes throughout.
//
//   fixed  = 1.3 (M_O + M_D)            = 1.3 x 16.06 GB        = 20.878 GB
//   KV     = 80 - 20.878                                        = 59.122 GB
//   unit   = 2 (K, V) x 2 B x H x D     = 2 x 2 x 8 x 128       = 4096 B per position-layer
//   K'     = KV / (R unit)              = 59.122e9 / 131072     = 451065.06 position-layers
//                                                                 per request
// All layers on the GPU: (L + 1) S <= K'  ->  S_0 = floor(451065.06 / 33)     = 13668
// Split, i layers offloaded: (L - i + 1) S + i B <= K'
//                            S_1  = floor((451065.06 - 2048) / 32)           = 14031
//                            S_2  = floor((451065.06 - 4096) / 31)           = 14418
//                            S_16 = floor((451065.06 - 32768) / 17)          = 24605
//                            S_32 = floor(451065.06 - 65536)                 = 385529
// At S = 32768: L_GPU (S - B) <= K' - S - L B  ->  L_GPU <= (451065.06 - 32768 - 65536) / 30720
//               = 352761.06 / 30720 = 11.48, so 11 layers stay on the GPU and 21 are offloaded.
// Dense for comparison (no head: fixed = 20.8 GB, KV = 59.2 GB, nothing offloaded):
// S_0 = floor(59.2e9 / (4096 x 32 x 32)) = 14114, and R <= 59.2e9 / (4096 x 32 x 16384) = 27.6
// requests of 16K.
#include "kv_store/memory_manager.h"

#include <gtest/gtest.h>

#include <limits>

namespace specontext {
namespace {

MemoryModelConfig PaperConfig() {
  MemoryModelConfig c;
  c.num_layers = 32;
  c.kv_heads = 8;
  c.head_dim = 128;
  c.bytes_per_element = 2;
  c.weight_bytes = 16e9;
  c.head_bytes = 0.06e9;
  c.gpu_bytes = 80e9;
  c.host_bytes = 1000e9;
  c.sparse_budget = 2048;
  return c;
}

MemoryManager Paper() {
  auto m = MemoryManager::Create(PaperConfig());
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(m).value();
}

TEST(MemoryManagerTest, ReproducesTheWorkedExample) {
  const MemoryManager m = Paper();
  EXPECT_NEAR(m.FixedBytes(), 20.878e9, 1e3);
  EXPECT_NEAR(m.KvBudgetBytes(), 59.122e9, 1e3);
  EXPECT_EQ(m.UnitBytes(), 4096.0);
  EXPECT_EQ(m.MaxLengthAllGpu(32), 13668);

  const ThresholdPlan plan = m.Thresholds(32);
  ASSERT_EQ(plan.thresholds.size(), 33u);
  EXPECT_EQ(plan.thresholds[0], 13668);
  EXPECT_EQ(plan.thresholds[1], 14031);
  EXPECT_EQ(plan.thresholds[2], 14418);
  EXPECT_EQ(plan.thresholds[16], 24605);
  EXPECT_EQ(plan.thresholds[32], 385529);
  for (size_t i = 1; i < plan.thresholds.size(); ++i) {
    EXPECT_LT(plan.thresholds[i - 1], plan.thresholds[i]) << i;
  }
  EXPECT_FALSE(plan.reason.empty());

  EXPECT_EQ(m.MaxGpuLayers(32768, 32), 11);
  EXPECT_EQ(m.MaxGpuLayers(13668, 32), 32);
  EXPECT_EQ(m.MaxGpuLayers(13669, 32), 31);
}

TEST(MemoryManagerTest, ThresholdsAgreeWithTheExactFit) {
  const MemoryManager m = Paper();
  const ThresholdPlan plan = m.Thresholds(32);
  for (int i = 0; i <= 32; ++i) {
    const int64_t s = plan.thresholds[i];
    EXPECT_GE(m.MaxGpuLayers(s, 32), 32 - i) << "S_" << i;
    EXPECT_LT(m.MaxGpuLayers(s + 1, 32), 32 - i) << "S_" << i;
  }
  EXPECT_EQ(m.MaxGpuLayers(385530, 32), -1);
}

TEST(MemoryManagerTest, DenseModeOffloadsWholeLayersThatStayOffTheGpu) {
  MemoryModelConfig c = PaperConfig();
  c.sparse_budget = 0;
  auto m = MemoryManager::Create(c);
  ASSERT_TRUE(m.ok());
  // No head: 1.3 x 16 GB = 20.8 GB fixed, 59.2e9 / (4096 x 32 x 32) = 14114 positions.
  EXPECT_EQ(m->MaxLengthAllGpu(32), 14114);
  EXPECT_EQ(m->MaxGpuLayers(14114, 32), 32);
  // An offloaded dense layer is read in place from host memory and costs the GPU nothing:
  // K' = 59.2e9 / (32 x 4096) = 451660.16 position-layers per request, so S_i = K' / (L - i).
  EXPECT_EQ(m->MaxGpuLayers(14115, 32), 31);
  const ThresholdPlan plan = m->Thresholds(32);
  ASSERT_EQ(plan.thresholds.size(), 33u);
  EXPECT_EQ(plan.thresholds[1], 14569);    // floor(451660.16 / 31)
  EXPECT_EQ(plan.thresholds[31], 451660);  // one layer left on the GPU
  EXPECT_EQ(plan.thresholds[32], std::numeric_limits<int64_t>::max());
  // 27 requests of 16K keep every layer on the GPU, 28 keep floor(451660.16 x 32 / 28 / 16384).
  EXPECT_EQ(m->MaxGpuLayers(16384, 27), 32);
  EXPECT_EQ(m->MaxGpuLayers(16384, 28), 31);
}

TEST(MemoryManagerTest, DenseAdmissionCountsTheGpuAsRoomAndPlacementFillsIt) {
  MemoryModelConfig c = PaperConfig();
  c.sparse_budget = 0;
  c.host_bytes = 40e9;
  c.nvme_bytes = 0;
  auto m = MemoryManager::Create(c);
  ASSERT_TRUE(m.ok());
  // One 16K request is 32 x 16384 x 4096 B = 2.147 GB; GPU KV 59.2 GB + host 40 GB = 99.2 GB
  // hold 46 of them, not 47.
  std::vector<RequestLoad> running;
  for (RequestKey k = 0; k < 46; ++k) running.push_back(RequestLoad{k, 0, 16384});
  EXPECT_TRUE(m->Admit({running.begin(), running.end() - 1}, running.back()).admit);
  EXPECT_FALSE(m->Admit(running, RequestLoad{46, 0, 16384}).admit);

  // Placement gives whole layers to the shortest requests first and demotes the last layer.
  const PlacementPlan plan = m->Place({RequestLoad{1, 400000, 0, 32}, RequestLoad{2, 1000, 0, 32}});
  ASSERT_TRUE(plan.feasible) << plan.reason;
  // 59.2e9 / 4096 = 14453125 position-layers: 32 x 1000 for request 2, and 32 x 400000 = 12.8M
  // still fit beside them, so nothing moves.
  EXPECT_EQ(plan.gpu_layers, (std::vector<int>{32, 32}));
  const PlacementPlan tight =
      m->Place({RequestLoad{1, 500000, 0, 32}, RequestLoad{2, 1000, 0, 32}});
  // 14453125 - 32000 = 14421125 left for request 1: 28 layers of 500000.
  EXPECT_EQ(tight.gpu_layers, (std::vector<int>{28, 32}));
  ASSERT_EQ(tight.moves.size(), 4u);
  EXPECT_EQ(tight.moves.front().layer, 31);
  EXPECT_EQ(tight.moves.back().layer, 28);
  EXPECT_EQ(tight.moves.front().to, Tier::kHost);
}

// The serving path's model is configured dense (the head's cache is not in the KV pools) and
// names each sparse request's slots itself.
TEST(MemoryManagerTest, PerRequestSlotsCountAgainstTheGpu) {
  MemoryModelConfig c = PaperConfig();
  c.sparse_budget = 0;
  auto m = MemoryManager::Create(c);
  ASSERT_TRUE(m.ok());
  // 14453125 position-layers; a dense request of 1000 keeps its 32 layers (32000), leaving
  // 14421125. At S = 465197 = floor(14421125 / 31) a dense request keeps 31 layers; with 2560
  // slots its offloaded layer costs 2560 more, which no longer fit: 30.
  RequestLoad sparse{1, 465197, 0, 32};
  const RequestLoad dense{2, 1000, 0, 32};
  EXPECT_EQ(m->Place({sparse, dense}).gpu_layers, (std::vector<int>{31, 32}));
  sparse.slots = 2560;
  const PlacementPlan plan = m->Place({sparse, dense});
  EXPECT_EQ(plan.gpu_layers, (std::vector<int>{30, 32}));
  EXPECT_EQ(plan.moves.size(), 2u);
  EXPECT_DOUBLE_EQ(m->GpuBytes(465197, 30, 2560), 4096.0 * (30 * 465197.0 + 2 * 2560));

  // Admission counts every layer offloaded at the maximum length, each keeping its slots:
  // 32 x 2560 x 4096 B = 335.5 MB per request, so 176 fit the 59.2 GB and 177 do not.
  std::vector<RequestLoad> running;
  for (RequestKey k = 0; k < 177; ++k) {
    RequestLoad r{k, 0, 4096};
    r.max_slots = 2560;
    running.push_back(r);
  }
  EXPECT_TRUE(m->Admit({running.begin(), running.end() - 2}, running[175]).admit);
  const AdmissionDecision full = m->Admit({running.begin(), running.end() - 1}, running.back());
  EXPECT_FALSE(full.admit) << full.reason;
  // Without slots the same requests cost the GPU nothing.
  RequestLoad plain{500, 0, 4096};
  EXPECT_TRUE(m->Admit(std::vector<RequestLoad>(176, plain), plain).admit);
}

TEST(MemoryManagerTest, AStoreWithoutAGpuTierRunsDenseFullyOffloaded) {
  MemoryModelConfig c = PaperConfig();
  c.sparse_budget = 0;
  c.weight_bytes = 0;
  c.head_bytes = 0;
  c.gpu_bytes = 0;
  c.host_bytes = 1e9;
  auto m = MemoryManager::Create(c);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->Place({RequestLoad{1, 100, 0, 0}}).gpu_layers, (std::vector<int>{0}));
  EXPECT_TRUE(m->Admit({}, RequestLoad{1, 0, 7000}).admit);   // 0.917 GB
  EXPECT_FALSE(m->Admit({}, RequestLoad{1, 0, 8000}).admit);  // 1.049 GB
}

TEST(MemoryManagerTest, RepeatKvBufferCostsOneMoreLayerOfKv) {
  MemoryModelConfig c = PaperConfig();
  c.repeat_kv_buffers = 1;
  auto m = MemoryManager::Create(c);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->MaxLengthAllGpu(32), 13266);  // floor(451065.06 / 34)
}

TEST(MemoryManagerTest, AdmitsThirtyTwoRequestsOf34KButNotDenseOnes) {
  const MemoryManager m = Paper();
  std::vector<RequestLoad> running;
  for (RequestKey k = 0; k < 31; ++k) running.push_back(RequestLoad{k, 2048, 2048 + 32768});
  const AdmissionDecision yes = m.Admit(running, RequestLoad{31, 2048, 2048 + 32768});
  EXPECT_TRUE(yes.admit) << yes.reason;
  EXPECT_NE(yes.reason.find("admitted"), std::string::npos);
  // With every layer offloaded one request needs (1 S + 32 B) unit: the GPU KV (59.122 GB)
  // holds 59.122e9 / (4096 x (34816 + 65536)) = 143.8 such requests.
  running.clear();
  for (RequestKey k = 0; k < 143; ++k) running.push_back(RequestLoad{k, 0, 34816});
  EXPECT_TRUE(m.Admit({running.begin(), running.end() - 1}, running.back()).admit);
  const AdmissionDecision no = m.Admit(running, RequestLoad{143, 0, 34816});
  EXPECT_FALSE(no.admit);
  EXPECT_NE(no.reason.find("GPU KV"), std::string::npos) << no.reason;
}

TEST(MemoryManagerTest, AdmissionChecksHostAndNvmeRoom) {
  MemoryModelConfig c = PaperConfig();
  c.host_bytes = 100e9;
  c.nvme_bytes = 50e9;
  auto m = MemoryManager::Create(c);
  ASSERT_TRUE(m.ok());
  // Fully offloaded, one 32K request is 32 x 32768 x 4096 B = 4.29 GB: 34 fit in 150 GB, 35 not.
  std::vector<RequestLoad> running;
  for (RequestKey k = 0; k < 34; ++k) running.push_back(RequestLoad{k, 0, 32768});
  EXPECT_TRUE(m->Admit({running.begin(), running.end() - 1}, running.back()).admit);
  const AdmissionDecision no = m->Admit(running, RequestLoad{34, 0, 32768});
  EXPECT_FALSE(no.admit);
  EXPECT_NE(no.reason.find("host + NVMe"), std::string::npos) << no.reason;
  EXPECT_FALSE(m->Admit({}, RequestLoad{1, 0, 0}).admit);
}

TEST(MemoryManagerTest, PlacementMatchesThePaperForEqualRequests) {
  const MemoryManager m = Paper();
  std::vector<RequestLoad> batch;
  for (RequestKey k = 0; k < 32; ++k) batch.push_back(RequestLoad{k, 32768, 34816, 32});
  const PlacementPlan plan = m.Place(batch);
  ASSERT_TRUE(plan.feasible) << plan.reason;
  int total = 0;
  for (int g : plan.gpu_layers) {
    EXPECT_TRUE(g == 11 || g == 12) << g;  // within one layer of the paper's uniform 11
    total += g;
  }
  // The batch-wide optimum: floor(32 x 352761.06 / 30720) = 367 GPU layers, at least the
  // paper's uniform 32 x 11 = 352.
  EXPECT_EQ(total, 367);
  // Moves demote from the last GPU layer down, never promote here.
  ASSERT_FALSE(plan.moves.empty());
  EXPECT_EQ(plan.moves[0].layer, 31);
  for (const LayerMove& mv : plan.moves) {
    EXPECT_EQ(mv.from, Tier::kGpu);
    EXPECT_EQ(mv.to, Tier::kHost);
    EXPECT_FALSE(mv.reason.empty());
  }
  EXPECT_EQ(static_cast<int>(plan.moves.size()), 32 * 32 - total);
}

TEST(MemoryManagerTest, PlacementPrefersShortRequestsAndPromotesWhenRoomAppears) {
  const MemoryManager m = Paper();
  const std::vector<RequestLoad> batch = {RequestLoad{1, 300000, 300000, 0},
                                          RequestLoad{2, 4096, 8192, 0}};
  const PlacementPlan plan = m.Place(batch);
  ASSERT_TRUE(plan.feasible);
  EXPECT_EQ(plan.gpu_layers[1], 32);  // the short one is cheap to keep whole
  EXPECT_GT(plan.gpu_layers[0], 0);
  EXPECT_EQ(plan.moves.front().key, 1u);
  EXPECT_EQ(plan.moves.front().from, Tier::kHost);
  EXPECT_EQ(plan.moves.front().layer, 0);  // promotions start at the first offloaded layer

  std::vector<RequestLoad> too_many;
  for (RequestKey k = 0; k < 200; ++k) too_many.push_back(RequestLoad{k, 34816, 34816, 0});
  const PlacementPlan over = m.Place(too_many);
  EXPECT_FALSE(over.feasible);
  EXPECT_NE(over.reason.find("preempt"), std::string::npos);
}

TEST(MemoryManagerTest, SpillsIdleThenColdestThenDeepestLayers) {
  const MemoryManager m = Paper();
  const std::vector<HostLayer> layers = {
      HostLayer{1, 30, 1e9, true, 50},
      HostLayer{1, 31, 1e9, true, 50},
      HostLayer{2, 31, 1e9, false, 90},
      HostLayer{3, 31, 1e9, true, 10},
  };
  const SpillPlan plan = m.PlanSpill(layers, 2.5e9);
  ASSERT_TRUE(plan.enough);
  ASSERT_EQ(plan.moves.size(), 3u);
  EXPECT_EQ(plan.moves[0].key, 2u);  // idle
  EXPECT_EQ(plan.moves[1].key, 3u);  // least recently used
  EXPECT_EQ(plan.moves[2].key, 1u);
  EXPECT_EQ(plan.moves[2].layer, 31);  // deepest first
  EXPECT_EQ(plan.moves[2].to, Tier::kNvme);
  EXPECT_FALSE(m.PlanSpill(layers, 5e9).enough);
}

TEST(MemoryManagerTest, RejectsImpossibleConfigs) {
  MemoryModelConfig c = PaperConfig();
  c.gpu_bytes = 20e9;  // weights and activations alone need 20.878 GB
  EXPECT_EQ(MemoryManager::Create(c).status().code(), StatusCode::kInvalidArgument);
  c = PaperConfig();
  c.kv_heads = 0;
  EXPECT_EQ(MemoryManager::Create(c).status().code(), StatusCode::kInvalidArgument);
  c = PaperConfig();
  c.sparse_budget = -1;
  EXPECT_EQ(MemoryManager::Create(c).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace specontext
