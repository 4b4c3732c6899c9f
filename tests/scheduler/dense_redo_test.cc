// The pieces of SpeContext's dense re-run: the top token's probability read from a summary and
// from a logits row, and the rows' step rebuilt dense with their tables and summary requests.
#include "scheduler/dense_redo.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace specontext {
namespace {

TEST(DenseRedoTest, TopTokenProbabilityFromRowsAndSummaries) {
  StepOutput rows;
  rows.vocab_size = 3;
  rows.logits = {0.0f,
                 std::log(3.0f),
                 0.0f,  // 3 / 5
                 5.0f,
                 5.0f,
                 5.0f,  // 1 / 3
                 std::numeric_limits<float>::quiet_NaN(),
                 1.0f,
                 0.0f};
  EXPECT_NEAR(TopTokenProbability(rows, 0), 0.6, 1e-6);
  EXPECT_NEAR(TopTokenProbability(rows, 1), 1.0 / 3, 1e-6);
  EXPECT_DOUBLE_EQ(TopTokenProbability(rows, 2), 1.0);  // nothing a re-run could settle

  StepOutput summaries;
  summaries.summaries.resize(2);
  summaries.summaries[0].sum = 4.0;
  summaries.summaries[1].sum = 2.0;
  summaries.summaries[1].non_finite = 1;
  EXPECT_DOUBLE_EQ(TopTokenProbability(summaries, 0), 0.25);
  EXPECT_DOUBLE_EQ(TopTokenProbability(summaries, 1), 1.0);
}

TEST(DenseRedoTest, BatchKeepsTheRowsTablesAndRequestsWithoutLists) {
  BatchStep batch;
  batch.capture_layers = {0, 3};
  batch.hidden_on_device = true;
  batch.dense_layers = 1;
  batch.summary.top_k = 8;
  std::byte block[16];
  for (int s = 0; s < 3; ++s) {
    SequenceStep step;
    step.seq_id = 10 + s;
    step.tokens = {s};
    step.start_position = 100 + s;
    step.block_table = {{block}};
    step.table_version = 7;
    step.sparse_positions = {{0, 100 + s}};
    batch.sequences.push_back(step);
    batch.summary.temperatures.push_back(0.5f + s);
    batch.summary.gather.push_back({s});
  }
  const size_t rows[] = {2, 0};
  const BatchStep dense = DenseRedoBatch(batch, rows);
  ASSERT_EQ(dense.sequences.size(), 2u);
  EXPECT_EQ(dense.capture_layers, batch.capture_layers);
  EXPECT_TRUE(dense.hidden_on_device);
  EXPECT_EQ(dense.dense_layers, 0);
  EXPECT_EQ(dense.summary.top_k, 8);
  EXPECT_EQ(dense.summary.temperatures, (std::vector<float>{2.5f, 0.5f}));
  EXPECT_EQ(dense.summary.gather, (std::vector<std::vector<int32_t>>{{2}, {0}}));
  for (size_t i = 0; i < 2; ++i) {
    const SequenceStep& want = batch.sequences[rows[i]];
    const SequenceStep& got = dense.sequences[i];
    EXPECT_EQ(got.seq_id, want.seq_id);
    EXPECT_EQ(got.tokens, want.tokens);
    EXPECT_EQ(got.start_position, want.start_position);
    EXPECT_EQ(got.block_table, want.block_table);
    EXPECT_EQ(got.table_version, want.table_version);
    EXPECT_TRUE(got.sparse_positions.empty());
  }
}

}  // namespace
}  // namespace specontext
