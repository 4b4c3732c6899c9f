// The planner over simulated engine steps: chunked prefill, decode, recompute after preemption,
// the dense fallback, the modes and the hidden-state input, against selections computed from
// scratch. As in serving, each row carries its sequence's context: a prefill chunk's positions
// are projected at the sequence's next step.
#include "engine/specontext/specontext_planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "engine/specontext/selector.h"
#include "tests/specontext/eagle3_fixture.h"
#include "tests/specontext/plain_head_fixture.h"

namespace specontext {
namespace {

using ::testing::HasSubstr;

class PlannerTest : public PlainHeadTest {
 protected:
  std::unique_ptr<SpecontextPlanner> MakePlanner(const SpecontextPlannerOptions& options) {
    auto planner = SpecontextPlanner::Create(*head_, options);
    EXPECT_TRUE(planner.ok()) << planner.status().ToString();
    return planner.ok() ? std::move(planner).value() : nullptr;
  }

  static SequenceStep Step(std::span<const int32_t> tokens, int32_t start) {
    SequenceStep step;
    step.tokens.assign(tokens.begin(), tokens.end());
    step.start_position = start;
    return step;
  }
};

TEST_F(PlannerTest, ChunkedPrefillAndDecodeSelectLikeAWholeSequence) {
  SpecontextPlannerOptions options;
  options.budget = 8;
  options.sink_tokens = 1;
  options.recent_window = 2;
  options.memory_decay = 0.0;  // each step against a from-scratch selection
  auto planner = MakePlanner(options);
  ASSERT_NE(planner, nullptr);
  std::mt19937 rng(11);
  std::vector<int32_t> longer = RandomTokens(rng, 25);  // sequence 1: sparse from the start
  std::vector<int32_t> shorter = RandomTokens(rng, 4);  // sequence 2: dense until S > 8
  // Prefill: sequence 1 in chunks of 10, 10, 4 and 1 beside sequence 2's whole prompt. The
  // last chunk is one token past B, as the scheduler may cut one: still prefill, so dense.
  std::vector<PlanRow> rows = {{1, AttentionMode::kDefault, 0}, {2, AttentionMode::kSpecontext, 0}};
  const int bounds[] = {0, 10, 20, 24, 25};
  rows[0].prompt_chunk = true;
  for (int chunk = 0; chunk < 4; ++chunk) {
    const int begin = bounds[chunk], end = bounds[chunk + 1];
    rows[0].context = {longer.data(), size_t(begin)};
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
  // Each chunk's positions wait for the next step (their hidden inputs come after theirs).
  EXPECT_EQ(planner->CachedPositions(1), 24);
  EXPECT_EQ(planner->CachedPositions(2), 0);
  EXPECT_EQ(planner->counters().decode_steps, 0);
  rows[0].prompt_chunk = false;

  const SelectionOptions select{8, 1, 2};
  for (int step = 0; step < 8; ++step) {
    longer.push_back(RandomTokens(rng, 1)[0]);
    shorter.push_back(RandomTokens(rng, 1)[0]);
    rows[0].context = {longer.data(), longer.size() - 1};
    rows[1].context = {shorter.data(), shorter.size() - 1};
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
  const SpecontextCounters c = planner->counters();
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
  options.memory_decay = 0.0;
  auto planner = MakePlanner(options);
  ASSERT_NE(planner, nullptr);
  std::mt19937 rng(5);
  const std::vector<int32_t> first = RandomTokens(rng, 20);
  PlanRow row{7, AttentionMode::kSpecontext, 0};
  BatchStep batch;
  batch.sequences.push_back(Step({first.data(), 16}, 0));
  ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
  row.context = {first.data(), 16};
  batch.sequences[0] = Step({first.data() + 16, 1}, 16);
  ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
  EXPECT_EQ(planner->CachedPositions(7), 17);
  // The recompute replays a prefix of 12 tokens and then different ones.
  std::vector<int32_t> tokens(first.begin(), first.begin() + 12);
  row.context = {first.data(), 8};
  batch.sequences[0] = Step({first.data() + 8, 4}, 8);
  ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
  EXPECT_EQ(planner->CachedPositions(7), 8);
  const std::vector<int32_t> more = RandomTokens(rng, 3);
  for (int32_t token : more) {
    tokens.push_back(token);
    row.context = {tokens.data(), tokens.size() - 1};
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

TEST_F(PlannerTest, SelectionMemoryCarriesAcrossStepsAndIsCutOnRecompute) {
  auto planner = MakePlanner({.budget = 6, .sink_tokens = 0, .memory_decay = 0.9});
  ASSERT_NE(planner, nullptr);
  const SelectionOptions select{6, 0, 1, 0.9};
  SelectionMemory reference;
  std::mt19937 rng(13);
  std::vector<int32_t> tokens = RandomTokens(rng, 16);
  PlanRow row{3, AttentionMode::kSpecontext, 0};
  BatchStep batch;
  batch.sequences.push_back(Step({tokens.data(), 16}, 0));
  ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
  const auto decode = [&](int steps) {
    for (int i = 0; i < steps; ++i) {
      tokens.push_back(RandomTokens(rng, 1)[0]);
      row.context = {tokens.data(), tokens.size() - 1};
      batch.sequences[0] = Step({&tokens.back(), 1}, int32_t(tokens.size() - 1));
      ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
      EXPECT_EQ(batch.sequences[0].sparse_positions, Expected(tokens, select, &reference))
          << "at S = " << tokens.size();
    }
  };
  decode(5);
  // A recompute from position 10 forgets what the memory held past it.
  tokens.resize(14);
  row.context = {tokens.data(), 10};
  batch.sequences[0] = Step({tokens.data() + 10, 4}, 10);
  ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
  for (auto& head : reference.weights) head.resize(10);
  decode(3);
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
    PlanRow row{1, AttentionMode::kDefault, 0};
    BatchStep batch;
    batch.sequences.push_back(Step({tokens.data(), 29}, 0));
    ASSERT_TRUE(planner->Plan({&row, 1}, &batch).ok());
    row.context = {tokens.data(), 29};
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
  std::vector<PlanRow> rows = {{1, AttentionMode::kDefault, 0},
                               {2, AttentionMode::kSpecontext, 5},
                               {3, AttentionMode::kDense, 5}};
  BatchStep batch;
  for (int i = 0; i < 3; ++i) batch.sequences.push_back(Step({tokens.data(), 11}, 0));
  ASSERT_TRUE(planner->Plan(rows, &batch).ok());
  for (PlanRow& row : rows) row.context = {tokens.data(), 11};
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
  bad = {};
  bad.memory_decay = -0.5;
  EXPECT_FALSE(SpecontextPlanner::Create(*head_, bad).ok());
  EXPECT_FALSE(SpecontextPlanner::Create(nullptr, {}).ok());
  // A head without the hidden path asks for no states and ignores any it is given.
  auto planner = MakePlanner({});
  ASSERT_NE(planner, nullptr);
  const PlanRow row{1, AttentionMode::kSpecontext, 0};
  EXPECT_TRUE(planner->HiddenLayers({&row, 1}).empty());
  EXPECT_TRUE(planner->ObserveHidden(1, 0, std::vector<float>(192)).ok());
}

TEST_F(PlannerTest, HiddenStatesOfThePreviousPositionFeedTheHead) {
  std::string error;
  const std::string& dir = testing::Eagle3FixtureDir(&error);
  if (dir.empty()) GTEST_SKIP() << error;
  RetrievalHeadOptions head_options;
  head_options.load_hidden_path = true;
  auto loaded = RetrievalHead::Load(dir + "/midlayer-f32", *target_, head_options);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  std::shared_ptr<const RetrievalHead> head = std::move(loaded).value();
  const int width = head->fused_hidden_size();
  const int layers = target_->config.num_layers;
  // The checkpoint names no layers: low / middle / high of this 2-layer target.
  ASSERT_EQ(layers, 2);
  EXPECT_EQ(head->aux_layer_ids(), (std::vector<int>{2, 1, 0}));

  std::mt19937 rng(4);
  const std::vector<int32_t> tokens = RandomTokens(rng, 24);
  std::vector<float> states(tokens.size() * width);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& v : states) v = normal(rng);

  SpecontextPlannerOptions options;
  options.budget = 5;
  options.sink_tokens = 0;  // tiny budgets: the head ranks every position
  options.memory_decay = 0.0;
  options.server_mode = AttentionMode::kDense;
  auto planner = SpecontextPlanner::Create(head, options);
  ASSERT_TRUE(planner.ok());
  PlanRow row{1, AttentionMode::kSpecontext, 0};
  EXPECT_EQ((*planner)->HiddenLayers({&row, 1}), head->aux_layer_ids());
  const PlanRow dense{2, AttentionMode::kDefault, 0};
  EXPECT_TRUE((*planner)->HiddenLayers({&dense, 1}).empty());

  // Positions [0, 8) came from the prefix cache (no states); the engine ran [8, 20) in two
  // chunks and hands over their states after each step, then decodes 20..23.
  const auto observe = [&](int start, int n) {
    return (*planner)->ObserveHidden(1, start,
                                     {states.data() + size_t(start) * width, size_t(n) * width});
  };
  for (auto [start, n] : {std::pair{8, 7}, std::pair{15, 5}}) {
    row.context = {tokens.data(), size_t(start)};
    BatchStep batch;
    batch.sequences.push_back(Step({tokens.data() + start, size_t(n)}, start));
    ASSERT_TRUE((*planner)->Plan({&row, 1}, &batch).ok());
    ASSERT_TRUE(observe(start, n).ok());
  }
  // An older range (a recompute) restarts the history there; the engine then reports the rest.
  EXPECT_EQ(observe(3, 5).ok(), true);
  ASSERT_TRUE(observe(8, 12).ok());
  EXPECT_EQ((*planner)->ObserveHidden(1, 20, std::vector<float>(5)).code(),
            StatusCode::kInvalidArgument);

  // From scratch: position t reads the state of t - 1, zeros where the engine had none.
  std::vector<float> inputs(tokens.size() * width, 0.0f);
  for (size_t t = 9; t < tokens.size(); ++t) {
    std::copy_n(states.begin() + (t - 1) * width, width, inputs.begin() + t * width);
  }
  auto& pool = cpu::ThreadPool::Shared();
  for (int pos = 20; pos < 24; ++pos) {
    row.context = {tokens.data(), size_t(pos)};
    BatchStep batch;
    batch.sequences.push_back(Step({&tokens[pos], 1}, pos));
    ASSERT_TRUE((*planner)->Plan({&row, 1}, &batch).ok());
    ASSERT_TRUE(observe(pos, 1).ok());

    const int n = pos + 1;
    std::vector<float> k(n * head->num_kv_heads() * head->head_dim());
    std::vector<float> q(head->num_heads() * head->head_dim());
    ASSERT_TRUE(head->Project({tokens.data(), size_t(n)}, 0, {inputs.data(), size_t(n) * width},
                              nullptr, k.data(), pool)
                    .ok());
    ASSERT_TRUE(head->Project({&tokens[pos], 1}, pos,
                              {inputs.data() + size_t(pos) * width, size_t(width)}, q.data(),
                              nullptr, pool)
                    .ok());
    HeadKvCache cache(head->num_kv_heads(), head->head_dim());
    cache.Append(k.data(), n);
    Selection want;
    ASSERT_TRUE(SelectPositions(q, head->num_heads(), cache, {5, 0, 1}, pool, &want).ok());
    EXPECT_EQ(batch.sequences[0].sparse_positions, want.positions) << "position " << pos;
  }
}

}  // namespace
}  // namespace specontext
