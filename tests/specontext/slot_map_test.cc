// SlotMap against a simulated GPU slot buffer: after every step's loads are applied, each
// listed position must be found in its slot, positions still selected must not move, and only
// positions absent from the previous list may be copied.
#include "engine/specontext/slot_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

namespace specontext {
namespace {

// One step's lists: per head, `keep_fraction` of the previous list (its own position dropped)
// survives, the rest is drawn afresh below `own`, and `own` ends the list.
std::vector<std::vector<int32_t>> NextLists(const std::vector<std::vector<int32_t>>& previous,
                                            int heads, int budget, int32_t own,
                                            double keep_fraction, std::mt19937& rng) {
  std::vector<std::vector<int32_t>> lists(heads);
  for (int h = 0; h < heads; ++h) {
    std::set<int32_t> chosen;
    if (!previous.empty()) {
      for (size_t i = 0; i + 1 < previous[h].size(); ++i) {
        if (std::uniform_real_distribution<>(0, 1)(rng) < keep_fraction) {
          chosen.insert(previous[h][i]);
        }
      }
    }
    const int want = std::min<int>(budget - 1, own);
    while (static_cast<int>(chosen.size()) > want) chosen.erase(std::prev(chosen.end()));
    while (static_cast<int>(chosen.size()) < want) chosen.insert(rng() % own);
    lists[h].assign(chosen.begin(), chosen.end());
    lists[h].push_back(own);
  }
  return lists;
}

TEST(SlotMapTest, LoadsOnlyNewPositionsAndKeepsTheRestInPlace) {
  constexpr int kHeads = 3, kBudget = 64;
  std::mt19937 rng(7);
  SlotMap map(kHeads, kBudget - 1);
  // The simulated device: which position each slot of each head holds (-1: nothing yet).
  std::vector<std::vector<int32_t>> device(kHeads, std::vector<int32_t>(kBudget - 1, -1));
  std::vector<std::vector<int32_t>> previous;
  std::vector<std::vector<int32_t>> previous_slots;
  int64_t total_reused = 0, total_loaded = 0;
  SlotAssignment a;  // reused across steps, as ElasticKv does: nothing may leak between them
  for (int32_t own = 100; own < 400; ++own) {
    const double keep = own % 50 == 0 ? 0.0 : 0.9;  // now and then a whole new selection
    auto lists = NextLists(previous, kHeads, kBudget, own, keep, rng);
    ASSERT_TRUE(map.Assign(lists, &a).ok());
    EXPECT_EQ(a.fresh, previous.empty());
    int64_t loaded = 0;
    for (int h = 0; h < kHeads; ++h) {
      const auto& list = lists[h];
      ASSERT_EQ(a.slots[h].size(), list.size() - 1);
      std::set<int32_t> before;
      if (!previous.empty()) before.insert(previous[h].begin(), previous[h].end() - 1);
      for (const SlotLoad& load : a.loads[h]) {
        EXPECT_FALSE(before.contains(load.position)) << "copied a position already there";
        device[h][load.slot] = load.position;
      }
      loaded += static_cast<int64_t>(a.loads[h].size());
      std::set<int32_t> used(a.slots[h].begin(), a.slots[h].end());
      EXPECT_EQ(used.size(), a.slots[h].size()) << "two positions share a slot";
      for (size_t i = 0; i + 1 < list.size(); ++i) {
        ASSERT_EQ(device[h][a.slots[h][i]], list[i]) << "head " << h << " position " << list[i];
        if (before.contains(list[i])) {
          const auto at = std::lower_bound(previous[h].begin(), previous[h].end(), list[i]);
          EXPECT_EQ(previous_slots[h][at - previous[h].begin()], a.slots[h][i]) << "moved";
        }
      }
      // A newly offloaded layer's whole copy is the same map.
      const std::vector<SlotLoad> resident = map.Resident(h);
      ASSERT_EQ(resident.size(), list.size() - 1);
      for (size_t i = 0; i < resident.size(); ++i) {
        EXPECT_EQ(resident[i].position, list[i]);
        EXPECT_EQ(resident[i].slot, a.slots[h][i]);
      }
    }
    EXPECT_EQ(a.loaded, loaded);
    EXPECT_EQ(a.reused + a.loaded, kHeads * static_cast<int64_t>(kBudget - 1));
    total_reused += a.reused;
    total_loaded += a.loaded;
    previous = lists;
    previous_slots = a.slots;
  }
  // With 90% kept per step, about a tenth is loaded (the full reloads add a little).
  const double fraction = double(total_loaded) / double(total_reused + total_loaded);
  EXPECT_GT(fraction, 0.05);
  EXPECT_LT(fraction, 0.2);
}

TEST(SlotMapTest, ShorterAndLongerListsWithinCapacity) {
  SlotMap map(1, 8);
  SlotAssignment a;
  ASSERT_TRUE(map.Assign(std::vector<std::vector<int32_t>>{{1, 5, 9, 20}}, &a).ok());
  EXPECT_EQ(a.loaded, 3);
  ASSERT_TRUE(map.Assign(std::vector<std::vector<int32_t>>{{5, 21}}, &a).ok());
  EXPECT_EQ(a.loaded, 0);
  EXPECT_EQ(a.reused, 1);
  // 1 and 9 dropped out but stayed in their slots: 1 is found there, 9 gives its slot up.
  ASSERT_TRUE(map.Assign(std::vector<std::vector<int32_t>>{{0, 1, 2, 3, 4, 5, 6, 7, 22}}, &a).ok());
  EXPECT_EQ(a.reused, 2);
  EXPECT_EQ(a.recalled, 1);
  EXPECT_EQ(a.loaded, 6);
  std::set<int32_t> slots(a.slots[0].begin(), a.slots[0].end());
  EXPECT_EQ(slots.size(), 8u);
  EXPECT_EQ(*slots.rbegin(), 7);
  map.Clear();
  ASSERT_TRUE(map.Assign(std::vector<std::vector<int32_t>>{{5, 23}}, &a).ok());
  EXPECT_EQ(a.loaded, 1) << "a cleared map trusts nothing";
  EXPECT_TRUE(a.fresh);
}

TEST(SlotMapTest, DroppedPositionsStayInSpareSlotsOldestGivenUpFirst) {
  EXPECT_EQ(SlotCapacity(8, 4), 12);  // a quarter more, in whole blocks
  EXPECT_EQ(SlotCapacity(2047, 16), 2560);
  SlotMap map(1, 12);
  SlotAssignment a;
  auto assign = [&](std::vector<int32_t> list) {
    list.push_back(100);  // the token's own position
    EXPECT_TRUE(map.Assign(std::vector<std::vector<int32_t>>{list}, &a).ok());
  };
  assign({0, 1, 2, 3, 4, 5, 6, 7});  // slots 0-7
  EXPECT_EQ(a.loaded, 8);
  assign({2, 3, 4, 5, 6, 7, 10, 11});  // 0 and 1 drop out; 10 and 11 take free slots 8, 9
  EXPECT_EQ(a.loaded, 2);
  assign({4, 5, 6, 7, 10, 11, 12, 13});  // 2 and 3 drop out; the last free slots go
  EXPECT_EQ(a.loaded, 2);
  EXPECT_EQ(map.Resident(0).size(), 12u);   // 8 selected, 4 kept
  assign({0, 4, 5, 6, 7, 10, 11, 12, 13});  // 0 comes back: found in slot 0
  EXPECT_EQ(a.loaded, 0);
  EXPECT_EQ(a.recalled, 1);
  EXPECT_EQ(a.slots[0][0], 0);
  // 0 drops out again; 20 needs a slot and takes that of 1, dropped longest ago (0's first
  // drop no longer counts).
  assign({4, 5, 6, 7, 10, 11, 12, 13, 20});
  ASSERT_EQ(a.loads[0].size(), 1u);
  EXPECT_EQ(a.loads[0][0].position, 20);
  EXPECT_EQ(a.loads[0][0].slot, 1);
  std::set<int32_t> resident;
  for (const SlotLoad& r : map.Resident(0)) resident.insert(r.position);
  EXPECT_EQ(resident, (std::set<int32_t>{0, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 20}));
  // Flickering positions for many steps: every step finds them kept, nothing is copied.
  for (int step = 0; step < 200; ++step) {
    assign(step % 2 == 0 ? std::vector<int32_t>{2, 3, 4, 5, 6, 7, 10, 11, 12}
                         : std::vector<int32_t>{0, 4, 5, 6, 7, 10, 11, 12, 13});
    EXPECT_EQ(a.loaded, 0) << "step " << step;
  }
  map.Clear();
  assign({0});
  EXPECT_TRUE(a.fresh);
  EXPECT_EQ(a.loaded, 1);
}

TEST(SlotMapTest, RefusesListsItCannotHoldAndStaysUnchanged) {
  SlotMap map(2, 2);
  SlotAssignment a;
  ASSERT_TRUE(map.Assign(std::vector<std::vector<int32_t>>{{1, 2, 3}, {4, 5, 6}}, &a).ok());
  EXPECT_FALSE(map.Assign(std::vector<std::vector<int32_t>>{{1, 2, 3, 4}, {4, 5, 6}}, &a).ok());
  EXPECT_FALSE(map.Assign(std::vector<std::vector<int32_t>>{{2, 1, 3}, {4, 5, 6}}, &a).ok());
  EXPECT_FALSE(map.Assign(std::vector<std::vector<int32_t>>{{1, 2, 3}}, &a).ok());
  EXPECT_FALSE(map.Assign(std::vector<std::vector<int32_t>>{{}, {4, 5, 6}}, &a).ok());
  ASSERT_TRUE(map.Assign(std::vector<std::vector<int32_t>>{{1, 2, 7}, {4, 5, 7}}, &a).ok());
  EXPECT_EQ(a.reused, 4);
  EXPECT_EQ(a.loaded, 0);
}

}  // namespace
}  // namespace specontext
