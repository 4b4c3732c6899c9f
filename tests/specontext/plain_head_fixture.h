// The planner tests' target (a tiny Llama with GQA) and a small model as its retrieval head (its
// first layer's Q/K; no generated EAGLE-3 fixture needed), loaded once per suite.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "engine/specontext/retrieval_head.h"
#include "engine/specontext/selector.h"
#include "tests/specontext/eagle3_fixture.h"

namespace specontext {

class PlainHeadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto target = LoadModel(testing::ModelsDir() + "/llama3-gqa-tied");
    ASSERT_TRUE(target.ok()) << target.status().ToString();
    target_ = std::move(target).value().release();
    auto head = RetrievalHead::Load(testing::ModelsDir() + "/qwen2-bias-yarn", *target_, {});
    ASSERT_TRUE(head.ok()) << head.status().ToString();
    head_ = new std::shared_ptr<const RetrievalHead>(std::move(head).value());
  }
  static void TearDownTestSuite() {
    delete head_;
    delete target_;
  }

  // What a planner with the head should pick for the last of `tokens`, computed from scratch.
  static std::vector<std::vector<int32_t>> Expected(const std::vector<int32_t>& tokens,
                                                    const SelectionOptions& options,
                                                    SelectionMemory* memory = nullptr) {
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
    EXPECT_TRUE(
        SelectPositions(q, head.num_heads(), cache, options, pool, &selection, memory).ok());
    return selection.positions;
  }

  // Ids within every test model's vocabulary.
  static std::vector<int32_t> RandomTokens(std::mt19937& rng, int n) {
    std::uniform_int_distribution<int32_t> dist(0, 511);
    std::vector<int32_t> tokens(n);
    for (int32_t& t : tokens) t = dist(rng);
    return tokens;
  }

  inline static Model* target_ = nullptr;
  inline static std::shared_ptr<const RetrievalHead>* head_ = nullptr;
};

}  // namespace specontext
