// The CPU planner's reuse of head K for prompt prefixes the scheduler adopted from its prefix
// cache: a sequence starting past a shared prefix takes the blocks an earlier sequence computed
// from the target's states, and then selects as if it had run the whole prompt itself.
#include <gtest/gtest.h>

#include <array>
#include <random>

#include "engine/specontext/selector.h"
#include "engine/specontext/specontext_planner.h"
#include "tests/specontext/eagle3_fixture.h"
#include "tests/specontext/plain_head_fixture.h"

namespace specontext {
namespace {

using Lists = std::vector<std::vector<int32_t>>;

class PlannerPrefixTest : public PlainHeadTest {
 protected:
  static std::unique_ptr<SpecontextPlanner> MakePlanner(std::shared_ptr<const RetrievalHead> head,
                                                        int64_t budget) {
    auto planner = SpecontextPlanner::Create(
        std::move(head), {.budget = budget, .sink_tokens = 0, .memory_decay = 0.0});
    EXPECT_TRUE(planner.ok()) << planner.status().ToString();
    return planner.ok() ? std::move(planner).value() : nullptr;
  }

  // One engine step of `seq` over tokens [start, end), its context being [0, start) as the
  // scheduler passes it; then, as the engine does, the states of those positions (none when
  // `states` is empty, [tokens][width] otherwise). The step's lists.
  static Lists RunStep(SpecontextPlanner& planner, uint64_t seq, const std::vector<int32_t>& tokens,
                       int start, int end, const std::vector<float>& states = {}) {
    const PlanRow row{seq, AttentionMode::kSpecontext, 0, {tokens.data(), size_t(start)}};
    BatchStep batch;
    batch.sequences.emplace_back();
    batch.sequences[0].tokens.assign(tokens.begin() + start, tokens.begin() + end);
    batch.sequences[0].start_position = start;
    const Status planned = planner.Plan({&row, 1}, &batch);
    EXPECT_TRUE(planned.ok()) << planned.ToString();
    if (!states.empty()) {
      const size_t width = states.size() / tokens.size();
      EXPECT_TRUE(planner
                      .ObserveHidden(seq, start,
                                     {states.data() + start * width, size_t(end - start) * width})
                      .ok());
    }
    return batch.sequences[0].sparse_positions;
  }

  // The EAGLE-3 fixture's head with its hidden path, or null with the reason in `error`.
  static std::shared_ptr<const RetrievalHead> HiddenPathHead(std::string* error) {
    const std::string& dir = testing::Eagle3FixtureDir(error);
    if (dir.empty()) return nullptr;
    auto head = RetrievalHead::Load(dir + "/midlayer-f32", *target_, {.load_hidden_path = true});
    EXPECT_TRUE(head.ok()) << head.status().ToString();
    return head.ok() ? std::move(head).value() : nullptr;
  }

  static std::vector<float> RandomStates(std::mt19937& rng, size_t n) {
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> states(n);
    for (float& v : states) v = normal(rng);
    return states;
  }

  static std::vector<int32_t> Join(std::vector<int32_t> a, const std::vector<int32_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  // Two prompts sharing their first `shared` tokens, and so the target's states there, each
  // followed by `own` tokens of its own; states are [tokens][width].
  struct SharedPair {
    std::vector<int32_t> a, b;
    std::vector<float> a_states, b_states;
  };
  static SharedPair ShareStart(std::mt19937& rng, int shared, int own, int width) {
    const std::vector<int32_t> start = RandomTokens(rng, shared);
    SharedPair pair{Join(start, RandomTokens(rng, own)), Join(start, RandomTokens(rng, own))};
    pair.a_states = RandomStates(rng, pair.a.size() * width);
    pair.b_states = RandomStates(rng, pair.b.size() * width);
    std::copy_n(pair.a_states.begin(), shared * width, pair.b_states.begin());
    return pair;
  }
};

TEST_F(PlannerPrefixTest, AdoptedPrefixSelectsLikeTheWholePromptWithTheHiddenPath) {
  std::string error;
  const std::shared_ptr<const RetrievalHead> head = HiddenPathHead(&error);
  if (head == nullptr) GTEST_SKIP() << error;
  const int width = head->fused_hidden_size();
  ASSERT_GT(width, 0);

  // A and B share 32 tokens (two blocks) and so the target's states there; A decodes to 49.
  std::mt19937 rng(21);
  const auto [a, b, a_states, b_states] = ShareStart(rng, 32, 18, width);

  auto planner = MakePlanner(head, 5);
  ASSERT_NE(planner, nullptr);
  // A: its prompt [0, 40) in two chunks, then decode; position 47's state comes after its
  // step, so block 2 is stored one step later, at 48.
  RunStep(*planner, 1, a, 0, 20, a_states);
  RunStep(*planner, 1, a, 20, 40, a_states);
  for (int pos = 40; pos < 49; ++pos) RunStep(*planner, 1, a, pos, pos + 1, a_states);
  planner->Release(1);  // the store outlives the sequence
  EXPECT_EQ(planner->counters().tokens_adopted, 0);

  // B's first step starts past the 32 tokens the scheduler adopted; its states start there.
  const SpecontextCounters before = planner->counters();
  RunStep(*planner, 2, b, 32, 44, b_states);
  EXPECT_EQ((planner->counters() - before).tokens_adopted, 32);
  EXPECT_EQ((planner->counters() - before).tokens_projected, 0);
  EXPECT_EQ(planner->CachedPositions(2), 32);

  // C ran B's whole prompt with every state: the exact lists. Z started like B, without a store
  // to adopt from: the zero-input catch-up.
  auto exact = MakePlanner(head, 5), zeros = MakePlanner(head, 5);
  ASSERT_NE(exact, nullptr);
  ASSERT_NE(zeros, nullptr);
  RunStep(*exact, 3, b, 0, 44, b_states);
  RunStep(*zeros, 4, b, 32, 44, b_states);
  int zero_differs = 0;
  for (int pos = 44; pos < 50; ++pos) {
    const Lists lists = RunStep(*planner, 2, b, pos, pos + 1, b_states);
    const Lists want = RunStep(*exact, 3, b, pos, pos + 1, b_states);
    ASSERT_FALSE(want.empty());
    EXPECT_EQ(lists, want) << "position " << pos;
    zero_differs += RunStep(*zeros, 4, b, pos, pos + 1, b_states) != want;
  }
  EXPECT_GT(zero_differs, 0) << "the zero-input catch-up selects exactly: the test shows nothing";
  EXPECT_EQ(planner->counters().tokens_unknown_input, 0);
  EXPECT_EQ(exact->counters().tokens_unknown_input, 0);
  // Positions 1..31 read states nobody handed over, and so does 32 (B's start) a step later.
  EXPECT_EQ(zeros->counters().tokens_unknown_input, 32);

  // A block a decode step completed was stored at the next step.
  const SpecontextCounters again = planner->counters();
  RunStep(*planner, 5, a, 48, 50, a_states);
  EXPECT_EQ((planner->counters() - again).tokens_adopted, 48);
  EXPECT_EQ(planner->CachedPositions(5), 48);
  // K projected from zero inputs is never offered: Z's blocks stay out of its store.
  RunStep(*zeros, 6, b, 32, 33, b_states);
  EXPECT_EQ(zeros->counters().tokens_adopted, 0);
}

// The scheduler admits a sequence whose prompt prefix another one's prefill chunk computed in
// the step before; that one projects the chunk's K (its states arrived after the step) in the
// same step the new one starts. The new one adopts it even when its row comes first.
TEST_F(PlannerPrefixTest, AdoptsBlocksPublishedInItsOwnStep) {
  std::string error;
  const std::shared_ptr<const RetrievalHead> head = HiddenPathHead(&error);
  if (head == nullptr) GTEST_SKIP() << error;
  const int width = head->fused_hidden_size();
  std::mt19937 rng(5);
  const auto [a, b, a_states, b_states] = ShareStart(rng, 40, 10, width);

  auto planner = MakePlanner(head, 5);
  ASSERT_NE(planner, nullptr);
  RunStep(*planner, 1, a, 0, 40, a_states);
  // One step: B's first chunk (past the 32 cached positions) before A's next one.
  const std::array<PlanRow, 2> rows{PlanRow{2, AttentionMode::kSpecontext, 0, {b.data(), 32}},
                                    PlanRow{1, AttentionMode::kSpecontext, 0, {a.data(), 40}}};
  BatchStep batch;
  batch.sequences.resize(2);
  batch.sequences[0].tokens.assign(b.begin() + 32, b.begin() + 45);
  batch.sequences[0].start_position = 32;
  batch.sequences[1].tokens.assign(a.begin() + 40, a.begin() + 45);
  batch.sequences[1].start_position = 40;
  ASSERT_TRUE(planner->Plan(rows, &batch).ok());
  EXPECT_EQ(planner->counters().tokens_adopted, 32);
  EXPECT_EQ(planner->counters().tokens_unknown_input, 0);
  ASSERT_TRUE(planner->ObserveHidden(2, 32, {b_states.data() + 32 * width, 13u * width}).ok());
  ASSERT_TRUE(planner->ObserveHidden(1, 40, {a_states.data() + 40 * width, 5u * width}).ok());
  // B then selects as a planner that ran its whole prompt does.
  auto exact = MakePlanner(head, 5);
  ASSERT_NE(exact, nullptr);
  RunStep(*exact, 3, b, 0, 45, b_states);
  for (int pos = 45; pos < 50; ++pos) {
    EXPECT_EQ(RunStep(*planner, 2, b, pos, pos + 1, b_states),
              RunStep(*exact, 3, b, pos, pos + 1, b_states))
        << "position " << pos;
  }
  EXPECT_EQ(planner->counters().tokens_unknown_input, 0);
}

TEST_F(PlannerPrefixTest, KFromUnknownInputsIsNeverStored) {
  std::string error;
  const std::shared_ptr<const RetrievalHead> head = HiddenPathHead(&error);
  if (head == nullptr) GTEST_SKIP() << error;
  std::mt19937 rng(17);
  const std::vector<int32_t> tokens = RandomTokens(rng, 40);
  const std::vector<float> states = RandomStates(rng, tokens.size() * head->fused_hidden_size());
  auto planner = MakePlanner(head, 5);
  ASSERT_NE(planner, nullptr);
  // Sequence 1 ran [0, 20) itself: block 0 is stored.
  RunStep(*planner, 1, tokens, 0, 20, states);
  RunStep(*planner, 1, tokens, 20, 21, states);
  // Sequence 2 starts at 20: block 0 comes from the store, but positions 17..20 read states
  // nobody handed over. Block 1's last state arrives; its K is still not the exact one.
  RunStep(*planner, 2, tokens, 20, 36, states);
  EXPECT_EQ(planner->counters().tokens_adopted, 16);
  RunStep(*planner, 2, tokens, 36, 37, states);
  EXPECT_EQ(planner->counters().tokens_unknown_input, 4);
  planner->Release(1);
  planner->Release(2);
  const SpecontextCounters before = planner->counters();
  RunStep(*planner, 3, tokens, 32, 40, states);
  EXPECT_EQ((planner->counters() - before).tokens_adopted, 16);
}

TEST_F(PlannerPrefixTest, WithoutTheHiddenPathBlocksAreSharedAndCounted) {
  constexpr int64_t kBudget = 6;
  std::mt19937 rng(8);
  const std::vector<int32_t> a = RandomTokens(rng, 50);
  auto planner = MakePlanner(*head_, kBudget);
  ASSERT_NE(planner, nullptr);
  RunStep(*planner, 1, a, 0, 40);
  for (int pos = 40; pos < 50; ++pos) RunStep(*planner, 1, a, pos, pos + 1);
  planner->Release(1);

  // B shares A's 48 tokens: blocks 0 and 1 from the prompt, block 2 from A's decode.
  const std::vector<int32_t> b = Join({a.begin(), a.begin() + 48}, RandomTokens(rng, 8));
  SpecontextCounters before = planner->counters();
  RunStep(*planner, 2, b, 48, 52);
  for (int pos = 52; pos < 56; ++pos) {
    EXPECT_EQ(RunStep(*planner, 2, b, pos, pos + 1),
              Expected({b.begin(), b.begin() + pos + 1}, {kBudget, 0, 1}))
        << "position " << pos;
  }
  SpecontextCounters used = planner->counters() - before;
  EXPECT_EQ(used.tokens_adopted, 48);
  EXPECT_EQ(used.tokens_projected, 8);  // B's own positions only

  // A token changed in block 1 keeps block 0 only; one in block 0 keeps nothing.
  for (auto [changed, adopted] : {std::pair{20, 16}, std::pair{3, 0}}) {
    std::vector<int32_t> c = a;
    c[changed] = (c[changed] + 1) % 512;
    before = planner->counters();
    RunStep(*planner, 3, c, 40, 41);
    used = planner->counters() - before;
    EXPECT_EQ(used.tokens_adopted, adopted) << "token " << changed << " changed";
    EXPECT_EQ(used.tokens_projected, 41 - adopted) << "token " << changed << " changed";
    planner->Release(3);
  }
}

TEST_F(PlannerPrefixTest, RecomputeOffersTheBlocksPastTheCutAgain) {
  std::mt19937 rng(3);
  const std::vector<int32_t> a = RandomTokens(rng, 41);
  auto planner = MakePlanner(*head_, 6);
  ASSERT_NE(planner, nullptr);
  RunStep(*planner, 1, a, 0, 40);
  RunStep(*planner, 1, a, 40, 41);  // stores blocks 0 and 1
  // A recompute from position 20 with other tokens there: block 1 is a different one now.
  const std::vector<int32_t> other = Join({a.begin(), a.begin() + 20}, RandomTokens(rng, 21));
  RunStep(*planner, 1, other, 20, 40);
  RunStep(*planner, 1, other, 40, 41);
  planner->Release(1);
  for (const std::vector<int32_t>* tokens : {&a, &other}) {
    const SpecontextCounters before = planner->counters();
    RunStep(*planner, 2, *tokens, 32, 40);
    EXPECT_EQ((planner->counters() - before).tokens_adopted, 32);
    planner->Release(2);
  }
}

}  // namespace
}  // namespace specontext
