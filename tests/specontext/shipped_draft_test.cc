// The retrieval heads shipped with the default model load against their prepared targets as
// EAGLE-3 heads of the target's shape, and their queries concentrate their weight: 64 of 512
// positions per KV head carry far more than the 1/8 a flat distribution would give.
// models/SmolLM2-135M-Instruct-eagle3 serves the default model; models/SmolLM2-135M-Instruct-32K-
// eagle3 its long-context variant, with the variant's YaRN RoPE. Both keep only the tensors a
// retrieval head reads. How well they select is measured on the GPU host (docs/training.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "engine/model/default_model_path.h"
#include "engine/specontext/retrieval_head.h"
#include "engine/specontext/selector.h"

namespace specontext {
namespace {

struct Shipped {
  std::string target_dir;
  std::string head;
  RopeScaling::Type rope;
};

class ShippedDraft : public ::testing::TestWithParam<Shipped> {};

TEST_P(ShippedDraft, LoadsAgainstItsTargetAndProjects) {
  const std::string target_dir = GetParam().target_dir;
  if (!std::filesystem::exists(target_dir + "/config.json")) {
    GTEST_SKIP() << "the model is not prepared at " << target_dir;
  }
  auto target = LoadModel(target_dir);
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  auto head = RetrievalHead::Load(std::string(SPECONTEXT_SOURCE_DIR) + "/models/" + GetParam().head,
                                  **target, {});
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ((*head)->source(), RetrievalHead::Source::kEagle3);
  EXPECT_EQ((*head)->num_heads(), 9);
  EXPECT_EQ((*head)->num_kv_heads(), 3);
  EXPECT_EQ((*head)->head_dim(), 64);
  EXPECT_EQ((*head)->config().rope_scaling.type, GetParam().rope);
  EXPECT_EQ((*head)->config().rope_scaling.type, (*target)->config.rope_scaling.type);

  std::vector<int32_t> tokens;
  for (int i = 0; i < 512; ++i) tokens.push_back(1000 + (i * 37) % 5000);
  const int n = static_cast<int>(tokens.size());
  auto& pool = cpu::ThreadPool::Shared();
  std::vector<float> k(static_cast<size_t>(n) * 3 * 64), q(9 * 64);
  ASSERT_TRUE((*head)->Project(tokens, 0, {}, nullptr, k.data(), pool).ok());
  ASSERT_TRUE((*head)->Project({&tokens.back(), 1}, n - 1, {}, q.data(), nullptr, pool).ok());
  for (float v : q) ASSERT_TRUE(std::isfinite(v));
  HeadKvCache cache(3, 64);
  cache.Append(k.data(), n);
  Selection selection;
  ASSERT_TRUE(
      SelectPositions(q, 9, cache, {.budget = 64, .recent_window = 1}, pool, &selection).ok());
  ASSERT_EQ(selection.positions.size(), 3u);
  for (const auto& list : selection.positions) {
    ASSERT_EQ(list.size(), 64u);
    EXPECT_EQ(list.back(), n - 1);  // the recent window keeps the token's own position
  }
  EXPECT_GT(selection.selected_mass, 0.25) << "64 of " << n << " positions";
}

INSTANTIATE_TEST_SUITE_P(
    Heads, ShippedDraft,
    ::testing::Values(Shipped{DefaultModelPath(), "SmolLM2-135M-Instruct-eagle3",
                              RopeScaling::Type::kNone},
                      Shipped{DefaultModelPath() + "-32K", "SmolLM2-135M-Instruct-32K-eagle3",
                              RopeScaling::Type::kYarn}),
    [](const ::testing::TestParamInfo<Shipped>& info) {
      return info.index == 0 ? std::string("DefaultModel") : std::string("LongContextVariant");
    });

}  // namespace
}  // namespace specontext
