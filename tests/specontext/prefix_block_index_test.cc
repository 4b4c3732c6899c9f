// Chain keys over full blocks and the key → slot index both planners share for head K reuse.
#include "engine/specontext/prefix_block_index.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace specontext {
namespace {

std::vector<int32_t> Iota(int n, int32_t first = 0) {
  std::vector<int32_t> tokens(n);
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

TEST(PrefixBlockKeysTest, ChainOverFullBlocks) {
  const std::vector<int32_t> tokens = Iota(50);
  const std::vector<uint64_t> keys = PrefixBlockKeys(tokens, 16);
  ASSERT_EQ(keys.size(), 3u);  // the trailing 2 tokens are no block
  EXPECT_NE(keys[0], keys[1]);
  EXPECT_NE(keys[1], keys[2]);
  // The same prefix gives the same keys whatever follows it.
  EXPECT_EQ(PrefixBlockKeys({tokens.data(), 48}, 16), keys);
  EXPECT_EQ(PrefixBlockKeys({tokens.data(), 40}, 16), (std::vector<uint64_t>{keys[0], keys[1]}));
  EXPECT_TRUE(PrefixBlockKeys({tokens.data(), 15}, 16).empty());

  // A changed token changes its block's key and every later one: a key stands for its prefix.
  std::vector<int32_t> changed = tokens;
  changed[20] = 999;
  const std::vector<uint64_t> other = PrefixBlockKeys(changed, 16);
  ASSERT_EQ(other.size(), 3u);
  EXPECT_EQ(other[0], keys[0]);
  EXPECT_NE(other[1], keys[1]);
  EXPECT_NE(other[2], keys[2]);
}

TEST(PrefixBlockKeysTest, FromHashesOnlyTheNewBlocks) {
  const std::vector<int32_t> tokens = Iota(80, 7);
  const std::vector<uint64_t> whole = PrefixBlockKeys(tokens, 16);
  std::vector<uint64_t> grown = PrefixBlockKeys({tokens.data(), 20}, 16);
  grown = PrefixBlockKeys({tokens.data(), 52}, 16, std::move(grown));
  grown = PrefixBlockKeys(tokens, 16, std::move(grown));
  EXPECT_EQ(grown, whole);
  // Keys past the tokens given are cut.
  EXPECT_EQ(PrefixBlockKeys({tokens.data(), 33}, 16, whole),
            (std::vector<uint64_t>{whole[0], whole[1]}));
}

TEST(PrefixBlockIndexTest, FindInsertErase) {
  const std::vector<int32_t> tokens = Iota(32);
  const std::vector<uint64_t> keys = PrefixBlockKeys(tokens, 16);
  const std::span<const int32_t> first(tokens.data(), 16), second(tokens.data() + 16, 16);
  PrefixBlockIndex index(16);
  EXPECT_EQ(index.block_tokens(), 16);
  EXPECT_EQ(index.Find(keys[0], first), -1);
  ASSERT_TRUE(index.Insert(keys[0], first, 3));
  ASSERT_TRUE(index.Insert(keys[1], second, 5));
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.Find(keys[0], first), 3);
  EXPECT_EQ(index.Find(keys[1], second), 5);
  EXPECT_TRUE(index.Holds(3));
  // The block's own tokens are checked: a colliding key with other tokens finds nothing.
  EXPECT_EQ(index.Find(keys[0], second), -1);
  // A key is held by one slot only.
  EXPECT_FALSE(index.Insert(keys[0], first, 7));
  EXPECT_FALSE(index.Holds(7));
  EXPECT_EQ(index.Find(keys[0], first), 3);
  // Reusing a slot forgets what it held.
  const std::vector<int32_t> other = Iota(16, 100);
  const uint64_t other_key = PrefixBlockKeys(other, 16)[0];
  ASSERT_TRUE(index.Insert(other_key, other, 3));
  EXPECT_EQ(index.Find(keys[0], first), -1);
  EXPECT_EQ(index.Find(other_key, other), 3);
  EXPECT_EQ(index.size(), 2u);
  index.Erase(5);
  index.Erase(42);  // holding nothing: no-op
  EXPECT_EQ(index.Find(keys[1], second), -1);
  EXPECT_FALSE(index.Holds(5));
  EXPECT_EQ(index.size(), 1u);
}

}  // namespace
}  // namespace specontext
