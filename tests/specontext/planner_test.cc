// The planner over simulated engine steps: chunked prefill, decode, recompute after preemption,
// the dense fallback and the modes, against selections computed from scratch.
#include "engine/specontext/specontext_planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "engine/specontext/selector.h"
#include "tests/specontext/eagle3_fixture.h"

namespace specontext {
namespace {

using ::testing::HasSubstr;

class PlannerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto target = LoadModel(testing::ModelsDir() + "/llama3-gqa-tied");
    ASSERT_TRUE(target.ok()) << target.status().ToString();
    target_ = std::move(target).value().release();
    // A small model as the head needs no generated fixture.
    auto head = RetrievalHead::Load(testing::ModelsDir() + "/qwen2-bias-yarn", *target_, {});
    ASSERT_TRUE(head.ok()) << head.status().ToString();
    head_ = new std::shared_ptr<const RetrievalHead>(std::move(head).value());
  }
  static void TearDownTestSuite() {
    delete head_;
    delete target_;
  }

  std::unique_ptr<SpecontextPlanner> MakePlanner(const SpecontextPlannerOptions& options) {
    auto planner = SpecontextPlanner::Create(*head_, options);
    EXPECT_TRUE(planner.ok()) << planner.status().ToString();
    return planner.ok() ? std::move(planner).value() : nullptr;
  }

  // What the planner should pick for the last of `tokens`, computed from scratch.
  std::vector<std::vector<int32_t>> Expected(const std::vector<int32_t>& tokens,
                                             const SelectionOptions& options) {
    const RetrievalHead& head = **head_;
    const int n = static_cast<int>(tokens.size());
    std::vector<float> k(n * head.num_kv_heads() * head.head_dim());
    std::vector<float> q(head.num_heads() * head.head_dim());
    auto& pool = cpu::ThreadPool::Shared();
    EXPECT_TRUE(head.Project(tokens, 0, {}, nullptr, k.data(), pool).ok());
    EXPECT_TRUE(head.Project({&tokens.back(), 1}, n - 1, {}, q.data(), nullptr, pool).ok());
    HeadKvCache cache(head.num_kv_heads(), head.head_dim());
    cache.Append(k.data(), n);
    Selection selection;
    EXPECT_TRUE(SelectPositions(q, head.num_heads(), cache, options, pool, &selection).ok());
    return selection.positions;
  }

  static SequenceStep Step(std::span<const int32_t> tokens, int32_t start) {
    SequenceStep step;
    step.tokens.assign(tokens.begin(), tokens.end());
    step.start_position = start;
    return step;
  }

  static std::vector<int32_t> RandomTokens(std::mt19937& rng, int n) {
    std::uniform_int_distribution<int32_t> dist(0, 511);
    std::vector<int32_t> tokens(n);
    for (int32_t& t : tokens) t = dist(rng);
    return tokens;
  }

  static Model* target_;
  static std::shared_ptr<const RetrievalHead>* head_;
};

Model* PlannerTest::target_ = nullptr;
std::shared_ptr<const RetrievalHead>* PlannerTest::head_ = nullptr;

TEST_F(PlannerTest, ChunkedPrefillAndDecodeSelectLikeAWholeSequence) {
  SpecontextPlannerOptions options;
  options.budget = 8;
  options.sink_tokens = 1;
  options.recent_window = 2;
  auto planner = MakePlanner(options);
  ASSERT_NE(planner, nullptr);
  std::mt19937 rng(11);
  std::vector<int32_t> longer = RandomTokens(rng, 25);  // sequence 1: sparse from the start
  std::vector<int32_t> shorter = RandomTokens(rng, 4);  // sequence 2: dense until S > 8
  // Prefill: sequence 1 in chunks of 10, 10, 5 beside sequence 2's whole prompt.
  const std::vector<PlanRow> rows = {{1, AttentionMode::kDefault, 0},
                                     {2, AttentionMode::kSpecontext, 0}};
  for (int chunk = 0; chunk < 3; ++chunk) {
    const int begin = chunk * 10, end = std::min(25, begin + 10);
    BatchStep batch;
    batch.sequences.push_back(Step({longer.data() + begin, size_t(end - begin)}, begin));
    if (chunk == 0) {
      batch.sequences.push_back(Step(shorter, 0));
      ASSERT_TRUE(planner->Plan(rows, &batch).ok());
    } else {
      ASSERT_TRUE(planner->Plan({rows.data(), 1}, &batch).ok());
    }
    for (const auto& s : batch.sequences) EXPECT_TRUE(s.sparse_positions.empty());
  }
  EXPECT_EQ(planner->CachedPositions(1), 25);
  EXPECT_EQ(planner->CachedPositions(2), 4);

  const SelectionOptions select{8, 1, 2};
  for (int step = 0; step < 8; ++step) {
    longer.push_back(RandomTokens(rng, 1)[0]);
    shorter.push_back(RandomTokens(rng, 1)[0]);
    BatchStep batch;
    batch.sequences.push_back(Step({&longer.back(), 1}, int32_t(longer.size() - 1)));
    batch.sequences.push_back(Step({&shorter.back(), 1}, int32_t(shorter.size() - 1)));
    ASSERT_TRUE(planner->Plan(rows, &batch).ok());
    EXPECT_EQ(batch.sequences[0].sparse_positions, Expected(longer, select)) << "step " << step;
    if (shorter.size() <= 8) {
      EXPECT_TRUE(batch.sequences[1].sparse_positions.empty()) << "step " << step;
    } else {
      EXPECT_EQ(batch.sequences[1].sparse_positions, Expected(shorter, select)) << "step " << step;
    }
  }
  const SpecontextCounters& c = planner->counters();
  EXPECT_EQ(c.decode_steps, 16);
  EXPECT_EQ(c.short_steps, 4);  // sequence 2 at S = 5, 6, 7, 8
  EXPECT_EQ(c.sparse_steps, 12);
  EXPECT_EQ(c.fallback_steps, 0);
  EXPECT_EQ(c.positions_selected, 12 * 2 * 8);
  EXPECT_EQ(c.tokens_projected, 25 + 4 + 16);
  EXPECT_GT(c.selected_mass_sum, 0.0);
  EXPECT_LE(c.selected_mass_sum, 12.0 + 1e-9);
  EXPECT_GT(c.retrieval_seconds, 0.0);

  planner->Release(2);
  EXPECT_EQ(planner->tracked_sequences(), 1u);
  EXPECT_EQ(planner->CachedPositions(2), 0);
}

TEST_F(PlannerTest, RecomputeAfterPreemptionTruncates) {
  SpecontextPlannerOptions options;
  options.budget = 6;
  options.sink_tokens = 0;  // tiny budgets: the head ranks every position
  auto planner = MakePlanner(options);
  ASSERT_NE(planner, nullptr);
  std::mt19937 rng(5);
  const std::vector<int32_t> first = RandomTokens(rng, 20);
  const PlanRow row{7, AttentionMode::kSpecontext, 0};
  BatchStep batch;
  batch.sequences.push_back(Step(first, 0));
  ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
  // The recompute replays a prefix of 12 tokens and then different ones.
  std::vector<int32_t> tokens(first.begin(), first.begin() + 12);
  batch.sequences[0] = Step({first.data() + 8, 4}, 8);
  ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
  EXPECT_EQ(planner->CachedPositions(7), 12);
  const std::vector<int32_t> more = RandomTokens(rng, 3);
  for (int32_t token : more) {
    tokens.push_back(token);
    batch.sequences[0] = Step({&tokens.back(), 1}, int32_t(tokens.size() - 1));
    ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
    EXPECT_EQ(batch.sequences[0].sparse_positions, Expected(tokens, {6, 0, 1}));
  }
  // A step past what the head holds is a contract violation, not silent garbage.
  batch.sequences[0] = Step({&tokens.back(), 1}, 40);
  const Status gap = planner->Plan({&row, 1}, &batch);
  EXPECT_EQ(gap.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(gap.message(), HasSubstr("sequence 7"));
}

TEST_F(PlannerTest, LowSelectedMassFallsBackToDense) {
  std::mt19937 rng(9);
  const std::vector<int32_t> tokens = RandomTokens(rng, 30);
  for (double threshold : {0.0, 1.0}) {
    SpecontextPlannerOptions options;
    options.budget = 4;
    options.fallback_mass_threshold = threshold;
    auto planner = MakePlanner(options);
    ASSERT_NE(planner, nullptr);
    const PlanRow row{1, AttentionMode::kDefault, 0};
    BatchStep batch;
    batch.sequences.push_back(Step({tokens.data(), 29}, 0));
    ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
    batch.sequences[0] = Step({&tokens[29], 1}, 29);
    ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
    // Four of thirty positions never carry all of the mass.
    EXPECT_EQ(batch.sequences[0].sparse_positions.empty(), threshold == 1.0);
    EXPECT_EQ(planner->counters().fallback_steps, threshold == 1.0 ? 1 : 0);
    EXPECT_EQ(planner->counters().sparse_steps, threshold == 1.0 ? 0 : 1);
    EXPECT_GT(planner->counters().selected_mass_sum, 0.0);
    EXPECT_LT(planner->counters().selected_mass_sum, 1.0);
  }
}

TEST_F(PlannerTest, ModesAndPerRequestBudgets) {
  SpecontextPlannerOptions options;
  options.server_mode = AttentionMode::kDense;
  options.budget = 100;
  options.sink_tokens = 0;  // tiny budgets: the head ranks every position
  auto planner = MakePlanner(options);
  ASSERT_NE(planner, nullptr);
  std::mt19937 rng(2);
  const std::vector<int32_t> tokens = RandomTokens(rng, 12);
  const std::vector<PlanRow> rows = {{1, AttentionMode::kDefault, 0},
                                     {2, AttentionMode::kSpecontext, 5},
                                     {3, AttentionMode::kDense, 5}};
  BatchStep batch;
  for (int i = 0; i < 3; ++i) batch.sequences.push_back(Step({tokens.data(), 11}, 0));
  ASSERT_TRUE(planner->Plan(rows, &batch).ok());
  for (auto& s : batch.sequences) s = Step({&tokens[11], 1}, 11);
  batch.sequences[0].sparse_positions = {{1}};  // stale input is cleared
  ASSERT_TRUE(planner->Plan(rows, &batch).ok());
  EXPECT_TRUE(batch.sequences[0].sparse_positions.empty());
  EXPECT_EQ(batch.sequences[1].sparse_positions, Expected(tokens, {5, 0, 1}));
  EXPECT_TRUE(batch.sequences[2].sparse_positions.empty());
  EXPECT_EQ(planner->tracked_sequences(), 1u);  // dense rows keep no state
  EXPECT_FALSE(planner->Plan({rows.data(), 2}, &batch).ok());
}

TEST_F(PlannerTest, InvalidOptionsAndHiddenStateWithoutHiddenPath) {
  SpecontextPlannerOptions bad;
  bad.budget = 0;
  EXPECT_FALSE(SpecontextPlanner::Create(*head_, bad).ok());
  bad = {};
  bad.server_mode = AttentionMode::kDefault;
  EXPECT_FALSE(SpecontextPlanner::Create(*head_, bad).ok());
  bad = {};
  bad.fallback_mass_threshold = 1.5;
  EXPECT_FALSE(SpecontextPlanner::Create(*head_, bad).ok());
  EXPECT_FALSE(SpecontextPlanner::Create(nullptr, {}).ok());
  auto planner = MakePlanner({});
  ASSERT_NE(planner, nullptr);
  EXPECT_EQ(planner->SetFusedHidden(1, std::vector<float>(192)).code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(PlannerTest, FusedHiddenStateReachesTheNextDecodeToken) {
  std::string error;
  const std::string& dir = testing::Eagle3FixtureDir(&error);
  if (dir.empty()) GTEST_SKIP() << error;
  RetrievalHeadOptions head_options;
  head_options.load_hidden_path = true;
  auto loaded = RetrievalHead::Load(dir + "/midlayer-f32", *target_, head_options);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  std::shared_ptr<const RetrievalHead> head = std::move(loaded).value();
  std::mt19937 rng(4);
  const std::vector<int32_t> tokens = RandomTokens(rng, 12);
  std::vector<float> fused(head->fused_hidden_size());
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& v : fused) v = normal(rng);

  // Same tokens, with and without the hidden state on the last one: the selections differ only
  // through the hidden state's q and k.
  std::vector<std::vector<std::vector<int32_t>>> picks;
  for (bool with_hidden : {false, true}) {
    SpecontextPlannerOptions options;
    options.budget = 3;
    options.sink_tokens = 0;  // tiny budgets: the head ranks every position
    auto planner = SpecontextPlanner::Create(head, options);
    ASSERT_TRUE(planner.ok());
    const PlanRow row{1, AttentionMode::kSpecontext, 0};
    BatchStep batch;
    batch.sequences.push_back(Step({tokens.data(), 11}, 0));
    ASSERT_TRUE((*planner)->Plan({&row, 1}, &batch).ok());
    EXPECT_EQ((*planner)->SetFusedHidden(1, std::vector<float>(5)).code(),
              StatusCode::kInvalidArgument);
    if (with_hidden) {
      ASSERT_TRUE((*planner)->SetFusedHidden(1, fused).ok());
    }
    batch.sequences[0] = Step({&tokens[11], 1}, 11);
    ASSERT_TRUE((*planner)->Plan({&row, 1}, &batch).ok());
    picks.push_back(batch.sequences[0].sparse_positions);
  }
  EXPECT_NE(picks[0], picks[1]);
}

}  // namespace
}  // namespace specontext
