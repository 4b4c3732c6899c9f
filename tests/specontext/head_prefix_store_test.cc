// The CPU planner's store of head K blocks (LRU, token-checked), and the reads it relies on:
// HeadKvCache::CopyRows and FusedHistory::KnowsAll / State.
#include "engine/specontext/head_prefix_store.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "engine/specontext/fused_history.h"
#include "engine/specontext/head_kv_cache.h"

namespace specontext {
namespace {

constexpr int kRowWidth = 2, kStateWidth = 3;

struct TestBlock {
  std::vector<int32_t> tokens;
  uint64_t key;
  std::vector<float> k, tail;
};

// A block of its own prefix whose K rows and tail state are all `value`.
TestBlock MakeBlock(int32_t first_token, float value) {
  TestBlock b;
  b.tokens.resize(kHeadPrefixBlockTokens);
  std::iota(b.tokens.begin(), b.tokens.end(), first_token);
  b.key = PrefixBlockKeys(b.tokens, kHeadPrefixBlockTokens)[0];
  b.k.assign(kHeadPrefixBlockTokens * kRowWidth, value);
  b.tail.assign(kStateWidth, value);
  return b;
}

bool Put(HeadPrefixStore& store, const TestBlock& b) {
  return store.Put(b.key, b.tokens, b.k, b.tail);
}

TEST(HeadPrefixStoreTest, FindsWhatWasPutAndEvictsTheLeastRecentlyUsed) {
  HeadPrefixStore store(2, kRowWidth, kStateWidth);
  const TestBlock a = MakeBlock(0, 1.0f), b = MakeBlock(100, 2.0f), c = MakeBlock(200, 3.0f);
  ASSERT_TRUE(Put(store, a));
  ASSERT_TRUE(Put(store, b));
  EXPECT_TRUE(Put(store, a));  // held already: only marked used
  EXPECT_EQ(store.size(), 2);
  auto found = store.Find(a.key, a.tokens);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(std::vector<float>(found->k.begin(), found->k.end()), a.k);
  EXPECT_EQ(std::vector<float>(found->tail_state.begin(), found->tail_state.end()), a.tail);
  // The key's own tokens are checked.
  EXPECT_FALSE(store.Find(a.key, b.tokens).has_value());

  // Full: c takes the room of b, the least recently used (a was found after it).
  ASSERT_TRUE(Put(store, c));
  EXPECT_EQ(store.size(), 2);
  EXPECT_FALSE(store.Find(b.key, b.tokens).has_value());
  ASSERT_TRUE(store.Find(c.key, c.tokens).has_value());
  EXPECT_EQ(store.Find(c.key, c.tokens)->k[0], 3.0f);
  // Finding c made a the least recently used: b comes back in its place.
  ASSERT_TRUE(Put(store, b));
  EXPECT_FALSE(store.Find(a.key, a.tokens).has_value());
  EXPECT_EQ(store.Find(b.key, b.tokens)->tail_state[2], 2.0f);
  EXPECT_EQ(store.Find(c.key, c.tokens)->k.back(), 3.0f);
}

TEST(HeadPrefixStoreTest, CapacityZeroStoresNothingAndNoStateWidthKeepsNoState) {
  HeadPrefixStore off(0, kRowWidth, kStateWidth);
  const TestBlock a = MakeBlock(0, 1.0f);
  EXPECT_FALSE(Put(off, a));
  EXPECT_EQ(off.size(), 0);
  EXPECT_FALSE(off.Find(a.key, a.tokens).has_value());

  HeadPrefixStore stateless(1, kRowWidth, 0);
  ASSERT_TRUE(stateless.Put(a.key, a.tokens, a.k, {}));
  auto found = stateless.Find(a.key, a.tokens);
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->tail_state.empty());
  EXPECT_EQ(found->k.size(), a.k.size());
}

TEST(HeadKvCacheTest, CopyRowsReadsBackAppendsLayout) {
  HeadKvCache cache(2, 3);
  std::vector<float> rows(5 * 6);
  std::iota(rows.begin(), rows.end(), 0.0f);
  cache.Append(rows.data(), 2);
  cache.Append(rows.data() + 12, 3);
  std::vector<float> out(3 * 6);
  cache.CopyRows(1, 3, out.data());
  EXPECT_EQ(out, std::vector<float>(rows.begin() + 6, rows.begin() + 24));
}

TEST(FusedHistoryTest, KnowsAllAndState) {
  FusedHistory fused(2);
  EXPECT_TRUE(fused.KnowsAll(0, 1));  // position 0's input is zeros by definition
  EXPECT_FALSE(fused.KnowsAll(0, 2));
  EXPECT_TRUE(fused.State(0).empty());
  fused.Observe(0, std::vector<float>{0, 0, 1, 1, 2, 2, 3, 3});  // positions 0..3
  EXPECT_TRUE(fused.KnowsAll(0, 5));                             // reads states 0..3
  EXPECT_FALSE(fused.KnowsAll(0, 6));
  EXPECT_EQ(fused.State(2)[1], 2.0f);
  EXPECT_TRUE(fused.State(4).empty());
  fused.DropBefore(2);
  EXPECT_TRUE(fused.State(1).empty());
  EXPECT_FALSE(fused.KnowsAll(2, 1));  // reads state 1
  EXPECT_TRUE(fused.KnowsAll(3, 2));
  // A state observed after a gap (an adopted prefix's last one) is known alone.
  fused.Observe(15, std::vector<float>{7, 7});
  EXPECT_TRUE(fused.KnowsAll(16, 1));
  EXPECT_FALSE(fused.KnowsAll(16, 2));
  EXPECT_EQ(fused.State(15)[0], 7.0f);
  EXPECT_TRUE(fused.State(3).empty());
}

}  // namespace
}  // namespace specontext
