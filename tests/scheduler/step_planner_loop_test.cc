// The engine loop's SpeContext hook, with a planner written for the test: the loop plans every
// step with each request's mode and budget, releases a sequence's state whenever it leaves
// (finished, cancelled, preempted), a planner that lists every position changes nothing, a
// request the planner rejects fails alone, and sparse rows the planner finds unsure run again
// densely, at the server's threshold or the request's own.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <numeric>

#include "engine/specontext/step_planner.h"
#include "tests/scheduler/engine_fixture.h"

namespace specontext::testing {
namespace {

using Outcome = EngineFixture::Outcome;

constexpr int64_t kFailingBudget = 13;  // requests with this budget are refused by the planner

// Lists, for every decode row not running dense, the last `window` positions per KV head (0:
// every position); records what the loop tells it. A sparse row whose top token's probability
// is below `redo_below` runs again densely.
class RecordingPlanner : public StepPlanner {
 public:
  RecordingPlanner(int kv_heads, int window, double redo_below = 0.0)
      : kv_heads_(kv_heads), window_(window), redo_below_(redo_below) {}

  bool RedoDense(double probability, double threshold) override {
    std::lock_guard<std::mutex> lock(mutex_);
    probabilities_.push_back(probability);
    redone_ += probability < threshold;
    return probability < threshold;
  }
  std::vector<double> probabilities() {
    std::lock_guard<std::mutex> lock(mutex_);
    return probabilities_;
  }
  double redo_probability() const override { return redo_below_; }
  // Its windowed lists hold `window` positions: the placement keeps slots for that many.
  int64_t SparseBudget(AttentionMode mode, int64_t /*budget*/) const override {
    return mode == AttentionMode::kDense ? 0 : window_;
  }
  int redone() {
    std::lock_guard<std::mutex> lock(mutex_);
    return redone_;
  }

  Status Plan(std::span<const PlanRow> rows, BatchStep* batch) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (rows.size() != batch->sequences.size()) return Internal("rows and batch differ");
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].budget == kFailingBudget) return InvalidArgument("refused by the test planner");
      SequenceStep& step = batch->sequences[i];
      planned_[rows[i].seq_id].push_back(rows[i]);
      const bool decode = step.tokens.size() == 1 && !rows[i].prompt_chunk;
      if (!decode || rows[i].mode == AttentionMode::kDense) continue;
      const int32_t position = step.start_position;
      const int32_t first = window_ > 0 ? std::max(0, position - window_ + 1) : 0;
      std::vector<int32_t> list(position - first + 1);
      std::iota(list.begin(), list.end(), first);
      step.sparse_positions.assign(kv_heads_, list);
      sparse_rows_++;
    }
    return Status::Ok();
  }

  void Release(uint64_t seq_id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    released_[seq_id]++;
  }

  std::map<uint64_t, std::vector<PlanRow>> planned() {
    std::lock_guard<std::mutex> lock(mutex_);
    return planned_;
  }
  std::map<uint64_t, int> released() {
    std::lock_guard<std::mutex> lock(mutex_);
    return released_;
  }
  int sparse_rows() {
    std::lock_guard<std::mutex> lock(mutex_);
    return sparse_rows_;
  }

 private:
  std::mutex mutex_;
  const int kv_heads_;
  const int window_;
  const double redo_below_;
  std::vector<double> probabilities_;
  int redone_ = 0;
  std::map<uint64_t, std::vector<PlanRow>> planned_;
  std::map<uint64_t, int> released_;
  int sparse_rows_ = 0;
};

std::vector<Outcome> RunAll(EngineFixture& engine, std::vector<GenerationRequest> requests) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (auto& request : requests) {
    auto stream = engine.loop().Submit(std::move(request));
    EXPECT_TRUE(stream.ok()) << stream.status().ToString();
    if (stream.ok()) streams.push_back(*stream);
  }
  std::vector<Outcome> outcomes;
  for (auto& stream : streams) outcomes.push_back(EngineFixture::Collect(*stream));
  return outcomes;
}

std::vector<GenerationRequest> Requests(const std::vector<int>& lengths, int vocab,
                                        int max_tokens) {
  std::vector<GenerationRequest> requests;
  for (size_t i = 0; i < lengths.size(); ++i) {
    requests.push_back(GreedyRequest(MakePrompt(lengths[i], vocab, 50 + i), max_tokens));
  }
  return requests;
}

int KvHeads() {
  auto model = LoadModel("preset:tiny-llama");
  EXPECT_TRUE(model.ok());
  return model.ok() ? (*model)->config.num_kv_heads : 1;
}

TEST(StepPlannerLoopTest, EveryPositionListedMatchesDenseAndReleasesEachSequence) {
  RecordingPlanner planner(KvHeads(), 0);
  EngineFixture planned({.planner = &planner});
  EngineFixture dense;
  const int vocab = dense.config().vocab_size;
  auto requests = Requests({9, 40, 23}, vocab, 10);
  requests[1].attention = AttentionMode::kSpecontext;
  requests[1].sparse_budget = 64;
  requests[2].attention = AttentionMode::kDense;
  const auto got = RunAll(planned, requests);
  const auto want = RunAll(dense, Requests({9, 40, 23}, vocab, 10));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].finish, FinishReason::kLength) << got[i].error.ToString();
    EXPECT_EQ(got[i].tokens, want[i].tokens) << "request " << i;
  }
  // Two requests decode sparse for 9 steps each (the first token comes from the prefill).
  EXPECT_EQ(planner.sparse_rows(), 2 * 9);

  const auto plans = planner.planned();
  ASSERT_EQ(plans.size(), 3u);
  std::vector<PlanRow> firsts;
  for (const auto& [seq_id, rows] : plans) {
    EXPECT_EQ(rows.size(), 10u) << "one prefill and nine decode steps for " << seq_id;
    for (const PlanRow& row : rows) EXPECT_EQ(row.seq_id, seq_id);
    // The prompt is one prefill step; every later row decodes.
    for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].prompt_chunk, i == 0);
    firsts.push_back(rows.front());
  }
  std::sort(firsts.begin(), firsts.end(),
            [](const PlanRow& a, const PlanRow& b) { return a.seq_id < b.seq_id; });
  EXPECT_EQ(firsts[0].mode, AttentionMode::kDefault);
  EXPECT_EQ(firsts[1].mode, AttentionMode::kSpecontext);
  EXPECT_EQ(firsts[1].budget, 64);
  EXPECT_EQ(firsts[2].mode, AttentionMode::kDense);
  for (const auto& [seq_id, count] : planner.released()) EXPECT_EQ(count, 1) << seq_id;
  EXPECT_EQ(planner.released().size(), 3u);
}

TEST(StepPlannerLoopTest, SparseWindowRunsAndEveryExitIsReleased) {
  RecordingPlanner planner(KvHeads(), 8);
  EngineFixtureOptions scarce{.host_blocks = 2 * 12, .planner = &planner};
  EngineFixture tight(scarce);
  const auto outcomes = RunAll(tight, Requests({60, 50, 70, 45}, tight.config().vocab_size, 40));
  for (const Outcome& outcome : outcomes) {
    EXPECT_EQ(outcome.finish, FinishReason::kLength) << outcome.error.ToString();
    EXPECT_EQ(outcome.tokens.size(), 40u);
  }
  // Each finish and each preemption (if admission let any happen) releases once.
  const int64_t preemptions = tight.loop().preemptions();
  int releases = 0;
  for (const auto& [seq_id, count] : planner.released()) releases += count;
  EXPECT_EQ(releases, 4 + preemptions);
  EXPECT_GT(planner.sparse_rows(), 0);
}

// Records the most GPU-tier bytes lent as slots at any step's end.
class SlotWatcher : public PlacementObserver {
 public:
  void OnKvTiers(const KvTierSnapshot& snapshot) override {
    most_ = std::max(most_, snapshot.slot_bytes);
  }
  int64_t most() const { return most_; }

 private:
  int64_t most_ = 0;
};

// Sparse rows on a small (emulated) GPU tier borrow their slots from it: the placement counts
// them, the store lends them and takes them back, every step passes the integrity check, and
// the tokens are those of a store with room for everything.
TEST(StepPlannerLoopTest, SparseRowsBorrowSlotsFromTheGpuTier) {
  RecordingPlanner tiered_planner(KvHeads(), 8), roomy_planner(KvHeads(), 8);
  SlotWatcher watcher;
  EngineFixture tiered({.gpu_blocks = 12,
                        .placement = {.observer = &watcher, .check_integrity_every_step = true},
                        .planner = &tiered_planner});
  EngineFixture roomy({.planner = &roomy_planner});
  const int vocab = roomy.config().vocab_size;
  auto requests = [&] {
    auto r = Requests({60, 50, 70}, vocab, 30);
    for (GenerationRequest& request : r) request.attention = AttentionMode::kSpecontext;
    return r;
  };
  const auto got = RunAll(tiered, requests());
  const auto want = RunAll(roomy, requests());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].finish, FinishReason::kLength) << got[i].error.ToString();
    EXPECT_EQ(got[i].tokens, want[i].tokens) << "request " << i;
  }
  EXPECT_GT(tiered_planner.sparse_rows(), 0);
  EXPECT_GT(watcher.most(), 0);
  EXPECT_EQ(tiered.store().LentSlotBlocks(), 0);
  tiered.store().DropUnusedPrefixes();  // cached prompt blocks outlive their requests
  EXPECT_EQ(tiered.store().Usage(Tier::kGpu).used_blocks, 0);
}

TEST(StepPlannerLoopTest, UnsureSparseRowsRunAgainDensely) {
  EngineFixture dense;
  const int vocab = dense.config().vocab_size;
  const auto want = RunAll(dense, Requests({60, 50, 70}, vocab, 24));
  // A window of 8 changes the tokens; run again densely, every sparse row gives dense's.
  RecordingPlanner windowed(KvHeads(), 8), redone(KvHeads(), 8, 1.01);
  EngineFixture sparse({.planner = &windowed}), again({.planner = &redone});
  const auto sparse_out = RunAll(sparse, Requests({60, 50, 70}, vocab, 24));
  const auto got = RunAll(again, Requests({60, 50, 70}, vocab, 24));
  bool sparse_differs = false;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].finish, FinishReason::kLength) << got[i].error.ToString();
    EXPECT_EQ(got[i].tokens, want[i].tokens) << "request " << i;
    sparse_differs |= sparse_out[i].tokens != want[i].tokens;
  }
  EXPECT_TRUE(sparse_differs) << "a window of 8 gives the dense tokens: the test shows nothing";
  EXPECT_EQ(windowed.redone(), 0);
  EXPECT_GT(redone.sparse_rows(), 0);
  EXPECT_EQ(redone.redone(), redone.sparse_rows());
  for (double p : redone.probabilities()) {
    EXPECT_GT(p, 0.0);
    EXPECT_LE(p, 1.0);
  }
}

TEST(StepPlannerLoopTest, RequestsChooseTheirOwnRedoThreshold) {
  EngineFixture dense;
  const int vocab = dense.config().vocab_size;
  const std::vector<int> lengths = {60, 50, 70};
  const auto want = RunAll(dense, Requests(lengths, vocab, 24));
  RecordingPlanner windowed(KvHeads(), 8);
  EngineFixture sparse({.planner = &windowed});
  const auto sparse_out = RunAll(sparse, Requests(lengths, vocab, 24));
  // Request k is the one that keeps the server's choice: its window-of-8 tokens differ from
  // dense's, so whether it ran again shows.
  size_t k = 0;
  while (k < want.size() && sparse_out[k].tokens == want[k].tokens) ++k;
  ASSERT_LT(k, want.size()) << "a window of 8 gives the dense tokens: the test shows nothing";

  // A server that never re-runs; the other requests ask for every sparse row again (a top-token
  // probability below 1).
  RecordingPlanner never(KvHeads(), 8);
  EngineFixture opt_in({.planner = &never});
  auto requests = Requests(lengths, vocab, 24);
  for (size_t i = 0; i < requests.size(); ++i) {
    if (i != k) requests[i].sparse_redo_probability = 1.0;
  }
  const auto got = RunAll(opt_in, requests);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].tokens, i == k ? sparse_out[i].tokens : want[i].tokens) << "request " << i;
  }
  EXPECT_GT(never.redone(), 0);
  EXPECT_LT(never.redone(), never.sparse_rows());

  // A server that re-runs every sparse row; request k opts out with 0.
  RecordingPlanner always(KvHeads(), 8, 1.01);
  EngineFixture opt_out({.planner = &always});
  requests = Requests(lengths, vocab, 24);
  requests[k].sparse_redo_probability = 0.0;
  const auto got_out = RunAll(opt_out, requests);
  for (size_t i = 0; i < got_out.size(); ++i) {
    EXPECT_EQ(got_out[i].tokens, i == k ? sparse_out[i].tokens : want[i].tokens) << "request " << i;
  }
}

TEST(StepPlannerLoopTest, CancelledRequestIsReleased) {
  RecordingPlanner planner(KvHeads(), 0);
  // Long enough that it is still running when the cancellation arrives.
  EngineFixture engine({.max_model_len = 2048, .planner = &planner});
  auto stream =
      engine.loop().Submit(GreedyRequest(MakePrompt(12, engine.config().vocab_size, 3), 2000));
  ASSERT_TRUE(stream.ok());
  ASSERT_TRUE((*stream)->Next(std::chrono::seconds(30)).has_value());  // it is running
  (*stream)->Cancel();
  const Outcome outcome = EngineFixture::Collect(**stream);
  EXPECT_EQ(outcome.finish, FinishReason::kAbort);
  const auto released = planner.released();
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released.begin()->second, 1);
}

TEST(StepPlannerLoopTest, RequestThePlannerRefusesFailsAlone) {
  RecordingPlanner planner(KvHeads(), 0);
  EngineFixture planned({.planner = &planner});
  EngineFixture dense;
  const int vocab = dense.config().vocab_size;
  auto requests = Requests({20, 31, 26}, vocab, 8);
  requests[1].attention = AttentionMode::kSpecontext;
  requests[1].sparse_budget = kFailingBudget;
  const auto got = RunAll(planned, requests);
  const auto want = RunAll(dense, Requests({20, 31, 26}, vocab, 8));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].finish, FinishReason::kError);
  EXPECT_NE(got[1].error.message().find("refused by the test planner"), std::string::npos)
      << got[1].error.ToString();
  for (size_t i : {0u, 2u}) {
    EXPECT_EQ(got[i].finish, FinishReason::kLength) << got[i].error.ToString();
    EXPECT_EQ(got[i].tokens, want[i].tokens) << "request " << i;
  }
  EXPECT_EQ(planner.released().size(), 3u);
}

TEST(StepPlannerLoopTest, SubmitValidatesAttentionFields) {
  EngineFixture no_planner;
  auto request = GreedyRequest(MakePrompt(5, no_planner.config().vocab_size, 4), 2);
  request.attention = AttentionMode::kSpecontext;
  auto refused = no_planner.loop().Submit(request);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("specontext"), std::string::npos);
  request.attention = AttentionMode::kDense;
  request.sparse_budget = -1;
  EXPECT_EQ(no_planner.loop().Submit(request).status().code(), StatusCode::kInvalidArgument);
  request.sparse_budget = 0;
  for (double redo : {-0.5, 1.5}) {
    request.sparse_redo_probability = redo;
    EXPECT_EQ(no_planner.loop().Submit(request).status().code(), StatusCode::kInvalidArgument);
  }
  request.sparse_redo_probability.reset();
  auto accepted = no_planner.loop().Submit(request);
  ASSERT_TRUE(accepted.ok());
  EXPECT_EQ(EngineFixture::Collect(**accepted).finish, FinishReason::kLength);
}

}  // namespace
}  // namespace specontext::testing
