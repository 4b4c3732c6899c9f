// Block tables kept on the device (engine/cuda/device_block_tables.h): the tables a step
// assembles on the device must equal, entry for entry, what packing every row's whole table on
// the host gives (the CPU reference below), while only entries new since a sequence's previous
// step are uploaded for a sequence that vouches for its table. The pointers are never
// dereferenced, so made-up addresses stand for blocks.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "engine/cuda/device_block_tables.h"
#include "engine/device.h"

namespace specontext::testing_gpu {
namespace {

constexpr int kLayers = 3, kBlockTokens = 16;

KvLayout Layout() {
  return {.num_layers = kLayers, .num_kv_heads = 2, .head_dim = 64, .block_tokens = kBlockTokens};
}

std::byte* Fake(uint64_t v) { return reinterpret_cast<std::byte*>(v); }

// A sequence whose blocks are fresh made-up addresses, `blocks` per layer.
SequenceStep Sequence(uint64_t id, uint64_t version, int blocks, std::mt19937_64& rng) {
  SequenceStep step{.tokens = {1}, .seq_id = id};
  step.table_version = version;
  step.block_table.assign(kLayers, {});
  for (auto& layer : step.block_table) {
    for (int b = 0; b < blocks; ++b) layer.push_back(Fake((rng() | 1) << 4));
  }
  return step;
}

// The whole packed tables: [layer][rows][stride], slot blocks from slot_block.
// slots[layer * rows + row]: that pair's slot blocks.
std::vector<void*> Reference(const BatchStep& batch, const std::vector<int>& order, int rows,
                             int stride, int slot_block,
                             const std::vector<std::vector<void*>>& slots) {
  std::vector<void*> out(static_cast<size_t>(kLayers) * rows * stride, nullptr);
  for (int l = 0; l < kLayers; ++l) {
    for (int r = 0; r < rows; ++r) {
      void** row = out.data() + (static_cast<size_t>(l) * rows + r) * stride;
      if (r < static_cast<int>(order.size())) {
        const SequenceStep& s = batch.sequences[order[r]];
        const int used = Layout().BlocksFor(s.start_position + 1);
        for (int b = 0; b < used; ++b) row[b] = s.block_table[l][b];
      }
      const std::vector<void*>& blocks = slots[static_cast<size_t>(l) * rows + r];
      for (size_t b = 0; slot_block > 0 && b < blocks.size(); ++b) row[slot_block + b] = blocks[b];
    }
  }
  return out;
}

class DeviceBlockTablesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
    auto tables = cuda::DeviceBlockTables::Create(Layout(), 8);
    ASSERT_TRUE(tables.ok()) << tables.status().ToString();
    tables_ = std::move(tables).value();
    auto out = cuda::DeviceBuffer::Allocate(sizeof(void*) * kLayers * 8 * 512);
    ASSERT_TRUE(out.ok());
    out_ = std::move(out).value();
  }

  // Stages and assembles one step (slots at some (layer, row) pairs when slot_block > 0), and
  // checks every entry against the reference; returns the entries uploaded.
  int64_t StepAndCheck(const BatchStep& batch, const std::vector<int>& order, int rows,
                       int slot_block) {
    int stride = slot_block;
    if (slot_block == 0) {
      for (const SequenceStep& s : batch.sequences) {
        stride = std::max(stride, Layout().BlocksFor(s.start_position + 1));
      }
    }
    stride += 4;
    const int64_t before = tables_.entries_uploaded();
    EXPECT_TRUE(tables_.Stage(batch, order, rows).ok());
    // Slot blocks at every other pair, 1 to 4 of them, in no particular order (lent blocks
    // of the KV store's pool are scattered).
    std::vector<std::vector<void*>> slots(static_cast<size_t>(kLayers) * rows);
    EXPECT_EQ(tables_.slot_ranges().size(), slots.size());
    std::vector<void*> all;
    for (size_t i = 0; slot_block > 0 && i < slots.size(); i += 2) {
      for (size_t b = 0; b < 1 + i % 4; ++b) {
        slots[i].push_back(Fake(0x7000000 + i * 0x10000 + (b * 7919 % 11) * 0x100));
      }
      all.insert(all.end(), slots[i].begin(), slots[i].end());
    }
    auto device = cuda::DeviceBuffer::Allocate(sizeof(void*) * std::max<size_t>(all.size(), 1));
    EXPECT_TRUE(device.ok());
    EXPECT_EQ(
        cudaMemcpy(device->data(), all.data(), sizeof(void*) * all.size(), cudaMemcpyHostToDevice),
        cudaSuccess);
    for (size_t i = 0, at = 0; i < slots.size(); ++i) {
      if (slots[i].empty()) continue;
      tables_.slot_ranges()[i] = {.blocks = device->as<void*>() + at,
                                  .count = static_cast<int32_t>(slots[i].size())};
      at += slots[i].size();
    }
    EXPECT_TRUE(tables_.Assemble(out_.as<void*>(), stride, slot_block, nullptr).ok());
    std::vector<void*> got(static_cast<size_t>(kLayers) * rows * stride);
    EXPECT_EQ(
        cudaMemcpy(got.data(), out_.data(), got.size() * sizeof(void*), cudaMemcpyDeviceToHost),
        cudaSuccess);
    const auto want = Reference(batch, order, rows, stride, slot_block, slots);
    for (size_t i = 0; i < want.size(); ++i) {
      if (got[i] != want[i]) {
        ADD_FAILURE() << "entry " << i << " of [layer][row][" << stride << "]";
        break;
      }
    }
    return tables_.entries_uploaded() - before;
  }

  cuda::DeviceBlockTables tables_;
  cuda::DeviceBuffer out_;
};

TEST_F(DeviceBlockTablesTest, UploadsOnlyNewEntriesOfVouchedTables) {
  std::mt19937_64 rng(5);
  BatchStep batch;
  batch.sequences.push_back(Sequence(1, 7, 200, rng));  // vouched
  batch.sequences.push_back(Sequence(2, 0, 200, rng));  // no promise: whole every step
  batch.sequences.push_back(Sequence(3, 9, 200, rng));  // vouched
  batch.sequences[0].start_position = 40;               // 3 blocks
  batch.sequences[1].start_position = 17;               // 2 blocks
  batch.sequences[2].start_position = 15;               // 1 block
  // Packed order differs from the batch's, with a padding row.
  EXPECT_EQ(StepAndCheck(batch, {2, 0, 1}, 4, 0), kLayers * (1 + 3 + 2));

  // One more token each: only sequence 3 crosses into a new block.
  for (SequenceStep& s : batch.sequences) ++s.start_position;
  EXPECT_EQ(StepAndCheck(batch, {0, 1, 2}, 3, 16), kLayers * (0 + 2 + 1));

  // Sequence 3's blocks moved (a new version): all of its entries again.
  batch.sequences[2].block_table[1][0] = Fake(0x5550);
  batch.sequences[2].table_version = 10;
  EXPECT_EQ(StepAndCheck(batch, {1, 2, 0}, 3, 0), kLayers * (2 + 2 + 0));

  // Past the first device array (64 entries per layer): a larger one, filled whole.
  batch.sequences[0].start_position = 64 * kBlockTokens + 3;
  EXPECT_EQ(StepAndCheck(batch, {0, 1, 2}, 3, 80), kLayers * (65 + 2 + 0));

  // Released: the same id comes back with the same version but other blocks, uploaded whole.
  tables_.Release(1);
  batch.sequences[0] = Sequence(1, 7, 200, rng);
  batch.sequences[0].start_position = 20;
  EXPECT_EQ(StepAndCheck(batch, {0, 1, 2}, 3, 0), kLayers * (2 + 2 + 0));
}

TEST_F(DeviceBlockTablesTest, NullEntriesAreRefusedAndFailedStepsUploadAgain) {
  std::mt19937_64 rng(6);
  BatchStep batch;
  batch.sequences.push_back(Sequence(1, 3, 8, rng));
  batch.sequences[0].start_position = 20;
  EXPECT_EQ(StepAndCheck(batch, {0}, 1, 0), kLayers * 2);
  batch.sequences[0].start_position = 40;
  batch.sequences[0].block_table[2][2] = nullptr;  // a new entry
  const Status st = tables_.Stage(batch, std::vector<int>{0}, 1);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("layer 2 block 2 is null"), std::string::npos) << st.ToString();
  // The refused step forgot every device table: the next one uploads whole.
  batch.sequences[0].block_table[2][2] = Fake(0x990);
  EXPECT_EQ(StepAndCheck(batch, {0}, 1, 0), kLayers * 3);
  EXPECT_EQ(tables_.Stage(batch, std::vector<int>{0, 0}, 1).code(),
            StatusCode::kInvalidArgument);  // more packed sequences than rows
}

}  // namespace
}  // namespace specontext::testing_gpu
