// The retrieval head loader on every EAGLE-3 layout and on broken directories, and its q/k
// against the numpy reference of tests/fixtures/make_eagle3_fixture.py.
#include "engine/specontext/retrieval_head.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "tests/specontext/eagle3_fixture.h"

namespace specontext {
namespace {

using testing::Eagle3FixtureDir;
using ::testing::HasSubstr;
using testing::ModelsDir;
using testing::ReadReference;

class RetrievalHeadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = LoadModel(ModelsDir() + "/llama3-gqa-tied");
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    target_ = std::move(model).value().release();
  }
  static void TearDownTestSuite() {
    delete target_;
    target_ = nullptr;
  }
  void SetUp() override {
    std::string error;
    dir_ = Eagle3FixtureDir(&error);
    if (dir_.empty()) GTEST_SKIP() << error;
  }

  // Loads `path` and checks Project against the reference's `q_key` / `k_key`.
  void ExpectMatches(const std::string& path, const std::string& reference,
                     const RetrievalHeadOptions& options = {}, const std::string& q_key = "q",
                     const std::string& k_key = "k", bool with_fused = false) {
    auto head = RetrievalHead::Load(path, *target_, options);
    ASSERT_TRUE(head.ok()) << head.status().ToString();
    const testing::QkReference ref = ReadReference(reference);
    const std::vector<float> want_q = ref.Array(q_key);
    const std::vector<float> want_k = ref.Array(k_key);
    const RetrievalHead& h = **head;
    const size_t rows = ref.tokens.size();
    ASSERT_EQ(want_q.size(), rows * h.num_heads() * h.head_dim());
    ASSERT_EQ(want_k.size(), rows * h.num_kv_heads() * h.head_dim());
    std::vector<float> q(want_q.size()), k(want_k.size());
    const std::vector<float> fused = with_fused ? ref.Array("fused") : std::vector<float>();
    ASSERT_TRUE(h.Project(ref.tokens, ref.start_position, fused, q.data(), k.data(),
                          cpu::ThreadPool::Shared())
                    .ok());
    for (size_t i = 0; i < q.size(); ++i) {
      ASSERT_NEAR(q[i], want_q[i], 1e-4 + 1e-4 * std::abs(want_q[i])) << "q[" << i << "]";
    }
    for (size_t i = 0; i < k.size(); ++i) {
      ASSERT_NEAR(k[i], want_k[i], 1e-4 + 1e-4 * std::abs(want_k[i])) << "k[" << i << "]";
    }
  }

  static Model* target_;
  std::string dir_;
};

Model* RetrievalHeadTest::target_ = nullptr;

TEST_F(RetrievalHeadTest, EveryEagle3LayoutMatchesTheReference) {
  for (const char* variant :
       {"midlayer-f32", "layers0-sharded", "yarn-parameters", "yarn-mscale"}) {
    SCOPED_TRACE(variant);
    const std::string path = dir_ + "/" + variant;
    ExpectMatches(path, path + "/reference.json");
    auto head = RetrievalHead::Load(path, *target_, {});
    ASSERT_TRUE(head.ok());
    EXPECT_EQ((*head)->source(), RetrievalHead::Source::kEagle3);
    EXPECT_EQ((*head)->fused_hidden_size(), 0);
  }
}

TEST_F(RetrievalHeadTest, MissingRopeThetaMeansTenThousand) {
  auto head = RetrievalHead::Load(dir_ + "/layers0-sharded", *target_, {});
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ((*head)->config().rope_theta, 10000.0);
  EXPECT_NE(target_->config.rope_scaling.type, RopeScaling::Type::kNone);
  EXPECT_EQ((*head)->config().rope_scaling.type, RopeScaling::Type::kNone);
}

TEST_F(RetrievalHeadTest, FusedHiddenStateFeedsTheHiddenHalf) {
  const std::string path = dir_ + "/midlayer-f32";
  RetrievalHeadOptions options;
  options.load_hidden_path = true;
  ExpectMatches(path, path + "/reference.json", options, "q_hidden", "k_hidden", true);
  // Zeros for the hidden half are exactly the embedding half alone.
  ExpectMatches(path, path + "/reference.json", options);

  auto plain = RetrievalHead::Load(path, *target_, {});
  ASSERT_TRUE(plain.ok());
  std::vector<float> k(2 * 16);
  const std::vector<float> fused(3 * 64, 1.0f);
  const Status status = (*plain)->Project(std::vector<int32_t>{5}, 0, fused, nullptr, k.data(),
                                          cpu::ThreadPool::Shared());
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
}

TEST_F(RetrievalHeadTest, YarnOverrideExtendsTheDraftContext) {
  const std::string path = dir_ + "/midlayer-f32";
  RetrievalHeadOptions options;
  options.yarn_factor = 4.0;
  ExpectMatches(path, path + "/reference.json", options, "q_yarn", "k_yarn");
  options.yarn_factor = 0.5;
  auto head = RetrievalHead::Load(path, *target_, options);
  ASSERT_FALSE(head.ok());
  EXPECT_THAT(head.status().message(), HasSubstr("yarn_factor"));
}

TEST_F(RetrievalHeadTest, SmallModelsServeAsHeads) {
  ExpectMatches(ModelsDir() + "/qwen2-bias-yarn", dir_ + "/dlm-qwen2-bias-yarn.json");
  auto head = RetrievalHead::Load(ModelsDir() + "/qwen2-bias-yarn", *target_, {});
  ASSERT_TRUE(head.ok());
  EXPECT_EQ((*head)->source(), RetrievalHead::Source::kDlm);

  // Qwen3's per-head q/k norms; its head_dim (32) needs a target of the same shape: itself.
  auto qwen3 = LoadModel(ModelsDir() + "/qwen3-qknorm");
  ASSERT_TRUE(qwen3.ok());
  auto own = RetrievalHead::Load(ModelsDir() + "/qwen3-qknorm", **qwen3, {});
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  const testing::QkReference ref = ReadReference(dir_ + "/dlm-qwen3-qknorm.json");
  const std::vector<float> want_k = ref.Array("k");
  std::vector<float> k(want_k.size());
  ASSERT_TRUE((*own)
                  ->Project(ref.tokens, ref.start_position, {}, nullptr, k.data(),
                            cpu::ThreadPool::Shared())
                  .ok());
  for (size_t i = 0; i < k.size(); ++i)
    ASSERT_NEAR(k[i], want_k[i], 1e-4 + 1e-4 * std::abs(want_k[i]));

  RetrievalHeadOptions options;
  options.load_hidden_path = true;
  // A plain layer has no hidden half: it loads without the hidden path.
  auto plain = RetrievalHead::Load(ModelsDir() + "/qwen2-bias-yarn", *target_, options);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ((*plain)->fused_hidden_size(), 0);
  EXPECT_TRUE((*plain)->aux_layer_ids().empty());
}

TEST_F(RetrievalHeadTest, HeadShapeMustMatchTheTarget) {
  auto mha = RetrievalHead::Load(ModelsDir() + "/llama-mha-linear", *target_, {});
  ASSERT_FALSE(mha.ok());
  EXPECT_EQ(mha.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(mha.status().message(), HasSubstr("num_key_value_heads is 4 but the target's is 2"));
  auto qwen3 = RetrievalHead::Load(ModelsDir() + "/qwen3-qknorm", *target_, {});
  ASSERT_FALSE(qwen3.ok());
  EXPECT_THAT(qwen3.status().message(), HasSubstr("head_dim is 32 but the target's is 16"));
}

TEST_F(RetrievalHeadTest, BrokenDirectoriesGiveClearErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"broken-missing-k", "tensor midlayer.self_attn.k_proj.weight is missing"},
      {"broken-q-width", "input width 100"},
      {"broken-k-shape",
       "midlayer.self_attn.k_proj.weight has shape [16, 128], expected [32, 128]"},
      {"broken-int-weights", "must be F32, F16 or BF16, not I32"},
      {"broken-heads", "num_attention_heads is 2 but the target's is 4"},
      {"broken-no-layer", "no attention layer"},
      {"broken-json", "invalid JSON"},
      {"broken-truncated", "model.safetensors"},
      {"broken-no-config", "config.json"},
      {"broken-no-weights", "neither model.safetensors nor model.safetensors.index.json"},
      {"does-not-exist", "config.json"},
  };
  for (const auto& [variant, message] : cases) {
    SCOPED_TRACE(variant);
    auto head = RetrievalHead::Load(dir_ + "/" + variant, *target_, {});
    ASSERT_FALSE(head.ok());
    EXPECT_THAT(head.status().message(), HasSubstr(message));
    EXPECT_THAT(head.status().message(), HasSubstr(variant));
  }
}

TEST_F(RetrievalHeadTest, TokensOutsideTheEmbeddingAreRefused) {
  auto head = RetrievalHead::Load(dir_ + "/midlayer-f32", *target_, {});
  ASSERT_TRUE(head.ok());
  std::vector<float> k(2 * 16);
  const Status status = (*head)->Project(std::vector<int32_t>{512}, 0, {}, nullptr, k.data(),
                                         cpu::ThreadPool::Shared());
  EXPECT_EQ(status.code(), StatusCode::kOutOfRange) << status.ToString();
}

// A head of random weights (benchmarks on presets): the target's shape, the EAGLE-3 hidden
// path when asked, finite projections, and the same weights for the same seed only.
TEST(RandomRetrievalHeadTest, HasTheTargetsShapeAndIsSeeded) {
  auto target = LoadModel("preset:tiny-llama");
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  const ModelConfig& c = (*target)->config;
  const auto project = [&](uint64_t seed, bool hidden_path) {
    auto head = RetrievalHead::Random(**target, {.load_hidden_path = hidden_path}, seed);
    EXPECT_TRUE(head.ok()) << head.status().ToString();
    const RetrievalHead& h = **head;
    EXPECT_EQ(h.source(), RetrievalHead::Source::kEagle3);
    EXPECT_EQ(h.num_heads(), c.num_heads);
    EXPECT_EQ(h.num_kv_heads(), c.num_kv_heads);
    EXPECT_EQ(h.head_dim(), c.head_dim);
    EXPECT_EQ(h.fused_hidden_size(), hidden_path ? 3 * c.hidden_size : 0);
    const std::vector<int32_t> tokens = {1, 7, 42};
    const std::vector<float> fused =
        hidden_path ? std::vector<float>(tokens.size() * 3 * c.hidden_size, 0.5f)
                    : std::vector<float>();
    std::vector<float> q(tokens.size() * c.num_heads * c.head_dim);
    std::vector<float> k(tokens.size() * c.num_kv_heads * c.head_dim);
    EXPECT_TRUE(h.Project(tokens, 3, fused, q.data(), k.data(), cpu::ThreadPool::Shared()).ok());
    for (float v : q) EXPECT_TRUE(std::isfinite(v));
    return q;
  };
  const std::vector<float> first = project(7, true);
  EXPECT_EQ(project(7, true), first);
  EXPECT_NE(project(8, true), first);
  EXPECT_NE(project(7, false), first);  // the hidden half adds to q
  double norm = 0.0;
  for (float v : first) norm += v * v;
  EXPECT_GT(norm, 0.0);
}

}  // namespace
}  // namespace specontext
