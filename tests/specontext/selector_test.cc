// Head-level top-B selection against a brute-force double-precision reference.
#include "engine/specontext/selector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

namespace specontext {
namespace {

struct Case {
  int num_heads;
  int kv_heads;
  int head_dim;
  int64_t positions;
  SelectionOptions options;
};

// Group-max softmax weights per KV head, in double.
std::vector<std::vector<double>> ReferenceWeights(const std::vector<float>& q, int num_heads,
                                                  const HeadKvCache& cache) {
  const int kv = cache.num_kv_heads(), dim = cache.head_dim(), group = num_heads / kv;
  std::vector<std::vector<double>> weights(kv, std::vector<double>(cache.size(), 0.0));
  for (int h = 0; h < num_heads; ++h) {
    const float* keys = cache.Head(h / group);
    std::vector<double> s(cache.size());
    for (int64_t j = 0; j < cache.size(); ++j) {
      double dot = 0;
      for (int d = 0; d < dim; ++d) dot += double{q[h * dim + d]} * keys[j * dim + d];
      s[j] = dot / std::sqrt(double(dim));
    }
    const double m = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (double& v : s) sum += (v = std::exp(v - m));
    for (int64_t j = 0; j < cache.size(); ++j) {
      weights[h / group][j] = std::max(weights[h / group][j], s[j] / sum);
    }
  }
  return weights;
}

std::set<int32_t> Forced(int64_t count, const SelectionOptions& o) {
  std::set<int32_t> forced;
  const int64_t budget = std::min(o.budget, count);
  for (int64_t j = 0; j < std::min(o.sink_tokens, count) && int64_t(forced.size()) < budget; ++j)
    forced.insert(int32_t(j));
  for (int64_t j = count - 1; j >= std::max<int64_t>(0, count - o.recent_window); --j) {
    if (int64_t(forced.size()) < budget) forced.insert(int32_t(j));
  }
  return forced;
}

HeadKvCache RandomCache(std::mt19937& rng, int kv_heads, int dim, int64_t count) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  HeadKvCache cache(kv_heads, dim);
  std::vector<float> row(kv_heads * dim);
  for (int64_t j = 0; j < count; ++j) {
    for (float& v : row) v = normal(rng);
    cache.Append(row.data(), 1);
  }
  return cache;
}

TEST(SelectorTest, MatchesBruteForceOnRandomInputs) {
  const Case cases[] = {
      {8, 2, 16, 200, {32, 0, 0}},  {8, 2, 16, 200, {32, 4, 8}}, {4, 4, 8, 57, {10, 2, 1}},
      {6, 1, 32, 300, {64, 0, 16}}, {8, 8, 16, 33, {5, 0, 0}},   {8, 2, 16, 40, {40, 4, 4}},
      {8, 2, 16, 10, {64, 0, 0}},   {4, 2, 8, 100, {6, 4, 8}},   {4, 2, 8, 1, {1, 0, 0}},
  };
  std::mt19937 rng(20261123);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << "heads " << c.num_heads << "/" << c.kv_heads << " S " << c.positions << " B "
                 << c.options.budget << " sinks " << c.options.sink_tokens << " window "
                 << c.options.recent_window);
    HeadKvCache cache = RandomCache(rng, c.kv_heads, c.head_dim, c.positions);
    std::vector<float> q(c.num_heads * c.head_dim);
    for (float& v : q) v = normal(rng);
    Selection got;
    ASSERT_TRUE(
        SelectPositions(q, c.num_heads, cache, c.options, cpu::ThreadPool::Shared(), &got).ok());
    const auto weights = ReferenceWeights(q, c.num_heads, cache);
    const std::set<int32_t> forced = Forced(c.positions, c.options);
    const int64_t budget = std::min(c.options.budget, c.positions);
    ASSERT_EQ(got.positions.size(), size_t(c.kv_heads));
    double mass = 0;
    for (int h = 0; h < c.kv_heads; ++h) {
      const std::vector<int32_t>& p = got.positions[h];
      ASSERT_EQ(int64_t(p.size()), budget);
      ASSERT_TRUE(std::is_sorted(p.begin(), p.end()));
      const std::set<int32_t> chosen(p.begin(), p.end());
      ASSERT_EQ(chosen.size(), p.size()) << "duplicates";
      for (int32_t f : forced) EXPECT_TRUE(chosen.count(f)) << "forced position " << f;
      // Every free pick outweighs every position left out.
      double lowest_pick = INFINITY, highest_left = -INFINITY, total = 0, picked = 0;
      for (int64_t j = 0; j < c.positions; ++j) {
        total += weights[h][j];
        if (chosen.count(int32_t(j))) picked += weights[h][j];
        if (forced.count(int32_t(j))) continue;
        if (chosen.count(int32_t(j)))
          lowest_pick = std::min(lowest_pick, weights[h][j]);
        else
          highest_left = std::max(highest_left, weights[h][j]);
      }
      EXPECT_GE(lowest_pick, highest_left - 1e-6);
      mass += picked / total;
    }
    EXPECT_NEAR(got.selected_mass, mass / c.kv_heads, 1e-5);
    if (budget == c.positions) {
      EXPECT_NEAR(got.selected_mass, 1.0, 1e-6);
    }
  }
}

TEST(SelectorTest, GroupMaxKeepsWhatAnyQueryHeadNeeds) {
  // Two query heads share a KV head: head 0 attends sharply to position 3, head 1 to position 6
  // with some weight on 5. The group's set keeps each query head's peak.
  HeadKvCache cache(1, 2);
  const float keys[8][2] = {{0, 0}, {0, 0}, {0, 0}, {6, 0}, {0, 0}, {2.2f, 2.2f}, {0, 6}, {0, 0}};
  for (const auto& k : keys) cache.Append(k, 1);
  const std::vector<float> q = {3, 0, 0, 1};
  Selection got;
  ASSERT_TRUE(SelectPositions(q, 2, cache, {2, 0, 0}, cpu::ThreadPool::Shared(), &got).ok());
  EXPECT_EQ(got.positions[0], (std::vector<int32_t>{3, 6}));
}

TEST(SelectorTest, TiesGoToTheEarlierPosition) {
  HeadKvCache cache(2, 4);
  const std::vector<float> row(8, 0.5f);
  for (int j = 0; j < 20; ++j) cache.Append(row.data(), 1);
  const std::vector<float> q(4 * 4, 1.0f);
  Selection got;
  ASSERT_TRUE(SelectPositions(q, 4, cache, {6, 1, 2}, cpu::ThreadPool::Shared(), &got).ok());
  for (const auto& p : got.positions) EXPECT_EQ(p, (std::vector<int32_t>{0, 1, 2, 3, 18, 19}));
  EXPECT_NEAR(got.selected_mass, 6.0 / 20.0, 1e-6);
}

TEST(SelectorTest, ForcedPositionsBeyondTheBudgetKeepSinksFirst) {
  std::mt19937 rng(7);
  HeadKvCache cache = RandomCache(rng, 1, 4, 30);
  const std::vector<float> q(4, 1.0f);
  Selection got;
  ASSERT_TRUE(SelectPositions(q, 1, cache, {5, 3, 10}, cpu::ThreadPool::Shared(), &got).ok());
  EXPECT_EQ(got.positions[0], (std::vector<int32_t>{0, 1, 2, 28, 29}));
}

TEST(SelectorTest, MemoryRanksByTheDecayedMaxAndReportsThisStepsMass) {
  std::mt19937 rng(20261124);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  const int heads = 4, kv_heads = 2, dim = 8;
  const SelectionOptions options{12, 2, 1, 0.9};
  HeadKvCache cache = RandomCache(rng, kv_heads, dim, 40);
  SelectionMemory memory;
  std::vector<std::vector<double>> rank;  // the reference's ranking weights per KV head
  for (int step = 0; step < 5; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    std::vector<float> row(kv_heads * dim);
    for (float& v : row) v = normal(rng);
    cache.Append(row.data(), 1);
    std::vector<float> q(heads * dim);
    for (float& v : q) v = normal(rng);
    Selection got;
    ASSERT_TRUE(
        SelectPositions(q, heads, cache, options, cpu::ThreadPool::Shared(), &got, &memory).ok());
    const auto weights = ReferenceWeights(q, heads, cache);
    rank.resize(kv_heads);
    const std::set<int32_t> forced = Forced(cache.size(), options);
    double mass = 0;
    for (int h = 0; h < kv_heads; ++h) {
      std::vector<double> next = weights[h];
      for (size_t j = 0; j < rank[h].size(); ++j) {
        next[j] = std::max(next[j], options.memory_decay * rank[h][j]);
      }
      rank[h] = next;
      ASSERT_EQ(memory.weights[h].size(), size_t(cache.size()));
      for (int64_t j = 0; j < cache.size(); ++j) EXPECT_NEAR(memory.weights[h][j], next[j], 1e-5);
      const std::set<int32_t> chosen(got.positions[h].begin(), got.positions[h].end());
      ASSERT_EQ(int64_t(chosen.size()), options.budget);
      double lowest_pick = INFINITY, highest_left = -INFINITY, total = 0, picked = 0;
      for (int64_t j = 0; j < cache.size(); ++j) {
        total += weights[h][j];
        if (chosen.count(int32_t(j))) picked += weights[h][j];
        if (forced.count(int32_t(j))) continue;
        if (chosen.count(int32_t(j))) {
          lowest_pick = std::min(lowest_pick, next[j]);
        } else {
          highest_left = std::max(highest_left, next[j]);
        }
      }
      EXPECT_GE(lowest_pick, highest_left - 1e-6);
      mass += picked / total;
    }
    EXPECT_NEAR(got.selected_mass, mass / kv_heads, 1e-5);
  }
}

TEST(SelectorTest, MemoryKeepsWhatTheHeadFoundAfterItsWeightFades) {
  // Step 1's query finds position 5 (the other free slot goes to the earliest of the flat rest);
  // step 2's finds positions 10 and 11 instead. Only the memory keeps 5 in the list.
  HeadKvCache cache(1, 2);
  for (int j = 0; j < 16; ++j) {
    const float k[2] = {j == 5 ? 8.0f : 0.0f, j == 10 || j == 11 ? 3.0f : 0.0f};
    cache.Append(k, 1);
  }
  auto& pool = cpu::ThreadPool::Shared();
  for (const double decay : {0.0, 0.95}) {
    SCOPED_TRACE(::testing::Message() << "decay " << decay);
    SelectionMemory memory;
    Selection got;
    ASSERT_TRUE(
        SelectPositions(std::vector<float>{1, 0}, 1, cache, {3, 0, 1, decay}, pool, &got, &memory)
            .ok());
    EXPECT_EQ(got.positions[0], (std::vector<int32_t>{0, 5, 15}));
    ASSERT_TRUE(
        SelectPositions(std::vector<float>{0, 1}, 1, cache, {3, 0, 1, decay}, pool, &got, &memory)
            .ok());
    const std::vector<int32_t> expected =
        decay > 0 ? std::vector<int32_t>{5, 10, 15} : std::vector<int32_t>{10, 11, 15};
    EXPECT_EQ(got.positions[0], expected);
  }
}

TEST(SelectorTest, MemoryOfALongerCacheIsCutToTheCache) {
  std::mt19937 rng(11);
  HeadKvCache cache = RandomCache(rng, 1, 4, 20);
  SelectionMemory memory{{std::vector<float>(50, 1.0f)}};
  Selection got;
  ASSERT_TRUE(SelectPositions(std::vector<float>(4, 0.5f), 1, cache, {4, 0, 1, 0.5},
                              cpu::ThreadPool::Shared(), &got, &memory)
                  .ok());
  ASSERT_EQ(memory.weights[0].size(), 20u);
  // Every remembered position ranks at 0.5 at least: the first three win the free slots.
  EXPECT_EQ(got.positions[0], (std::vector<int32_t>{0, 1, 2, 19}));
}

TEST(SelectorTest, BadInputsAreErrors) {
  std::mt19937 rng(3);
  HeadKvCache cache = RandomCache(rng, 2, 4, 10);
  Selection got;
  auto& pool = cpu::ThreadPool::Shared();
  EXPECT_FALSE(SelectPositions(std::vector<float>(12), 3, cache, {4}, pool, &got).ok());
  EXPECT_FALSE(SelectPositions(std::vector<float>(8), 4, cache, {4}, pool, &got).ok());
  EXPECT_FALSE(SelectPositions(std::vector<float>(16), 4, cache, {0}, pool, &got).ok());
  EXPECT_FALSE(SelectPositions(std::vector<float>(16), 4, cache, {4, -1, 0}, pool, &got).ok());
  SelectionMemory memory;
  for (const double decay : {-0.1, 1.5, double(NAN)}) {
    EXPECT_FALSE(
        SelectPositions(std::vector<float>(16), 4, cache, {4, 0, 1, decay}, pool, &got, &memory)
            .ok());
  }
  std::vector<float> nan_q(16, 0.0f);
  nan_q[0] = NAN;
  EXPECT_FALSE(SelectPositions(nan_q, 4, cache, {4}, pool, &got).ok());
  HeadKvCache empty(2, 4);
  EXPECT_EQ(SelectPositions(std::vector<float>(16), 4, empty, {4}, pool, &got).code(),
            StatusCode::kFailedPrecondition);
}

TEST(HeadKvCacheTest, AppendAndTruncateKeepPerHeadRows) {
  HeadKvCache cache(2, 3);
  const float rows[2][6] = {{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12}};
  cache.Append(&rows[0][0], 2);
  ASSERT_EQ(cache.size(), 2);
  EXPECT_EQ(std::vector<float>(cache.Head(1), cache.Head(1) + 6),
            (std::vector<float>{4, 5, 6, 10, 11, 12}));
  cache.Truncate(1);
  cache.Append(&rows[0][0], 1);
  EXPECT_EQ(std::vector<float>(cache.Head(0), cache.Head(0) + 6),
            (std::vector<float>{1, 2, 3, 1, 2, 3}));
  cache.Truncate(99);
  EXPECT_EQ(cache.size(), 2);
}

}  // namespace
}  // namespace specontext
