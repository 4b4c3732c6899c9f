#include "kv_store/kv_store.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "tests/kv_store/kv_test_util.h"

namespace specontext {
namespace {

using testing_kv::BlockMatches;
using testing_kv::FillBlock;
using testing_kv::SmallLayout;
using testing_kv::TempDir;

#define EXPECT_INTEGRITY(store)                 \
  do {                                          \
    const Status _s = (store).CheckIntegrity(); \
    EXPECT_TRUE(_s.ok()) << _s.ToString();      \
  } while (0)

class KvStoreTest : public ::testing::Test {
 protected:
  // emulated_gpu_blocks > 0: a GPU tier of that many blocks, backed by host memory.
  std::unique_ptr<KvStore> Make(int32_t host_blocks, int32_t nvme_blocks = 0,
                                int32_t emulated_gpu_blocks = 0) {
    KvStoreOptions options;
    options.layout = SmallLayout();
    options.gpu_blocks = emulated_gpu_blocks;
    options.emulate_gpu = emulated_gpu_blocks > 0;
    options.host_blocks = host_blocks;
    options.nvme_blocks = nvme_blocks;
    options.nvme_path = dir_.File("kv.bin");
    auto store = KvStore::Create(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  // Writes the pattern of (seq, layer, block) into every block of positions [0, length).
  static void Fill(KvStore& store, SequenceId seq, int64_t length) {
    auto table = store.BeginStep(seq, 0, length);
    ASSERT_TRUE(table.ok()) << table.status().ToString();
    for (size_t l = 0; l < table->size(); ++l) {
      for (size_t b = 0; b < (*table)[l].size(); ++b) {
        FillBlock((*table)[l][b], store.layout().BlockBytes(), seq, l, b);
      }
    }
    ASSERT_TRUE(store.EndStep(seq).ok());
  }
  // True when every block of [0, length) still holds `owner`'s pattern.
  static bool Holds(KvStore& store, SequenceId seq, int64_t length, SequenceId owner) {
    auto table = store.BeginStep(seq, length - 1, 1);
    EXPECT_TRUE(table.ok()) << table.status().ToString();
    if (!table.ok()) return false;
    bool all = true;
    for (size_t l = 0; l < table->size(); ++l) {
      for (size_t b = 0; b < (*table)[l].size(); ++b) {
        all = all && BlockMatches((*table)[l][b], store.layout().BlockBytes(), owner, l, b);
      }
    }
    EXPECT_TRUE(store.EndStep(seq).ok());
    return all;
  }
  const std::vector<Tier> kAllHost = std::vector<Tier>(4, Tier::kHost);
  TempDir dir_;
};

TEST_F(KvStoreTest, AllocateExtendFreeAccountsBlocksAndTokens) {
  auto store = Make(32);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AddSequence(1, kAllHost).ok());
  EXPECT_INTEGRITY(*store);
  ASSERT_TRUE(store->Extend(1, 10).ok());  // 3 blocks of 4 per layer
  EXPECT_INTEGRITY(*store);
  PoolUsage usage = store->Usage(Tier::kHost);
  EXPECT_EQ(usage.used_blocks, 12);
  EXPECT_EQ(usage.used_bytes, 12 * store->layout().BlockBytes());
  EXPECT_EQ(usage.tokens, 40);
  ASSERT_TRUE(store->Extend(1, 12).ok());
  EXPECT_EQ(store->Usage(Tier::kHost).used_blocks, 12);
  EXPECT_EQ(store->Usage(Tier::kHost).tokens, 48);
  EXPECT_EQ(*store->Length(1), 12);
  ASSERT_TRUE(store->FreeSequence(1).ok());
  EXPECT_INTEGRITY(*store);
  EXPECT_EQ(store->Usage(Tier::kHost).used_blocks, 0);
  EXPECT_EQ(store->Usage(Tier::kHost).tokens, 0);
}

TEST_F(KvStoreTest, ExtendIsAllOrNothing) {
  auto store = Make(10);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AddSequence(1, kAllHost).ok());
  ASSERT_TRUE(store->Extend(1, 4).ok());
  const Status status = store->Extend(1, 12);  // needs 12 blocks, 10 exist
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted) << status.ToString();
  EXPECT_EQ(store->Usage(Tier::kHost).used_blocks, 4);
  EXPECT_EQ(*store->Length(1), 4);
  EXPECT_INTEGRITY(*store);
}

TEST_F(KvStoreTest, StepTablesCoverTheStepAndKeepData) {
  auto store = Make(32);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AddSequence(5, kAllHost).ok());
  ASSERT_TRUE(store->Extend(5, 9).ok());
  Fill(*store, 5, 9);
  auto table = store->BeginStep(5, 2, 3);  // positions [2, 5) use blocks 0 and 1
  ASSERT_TRUE(table.ok());
  ASSERT_EQ(table->size(), 4u);
  EXPECT_EQ((*table)[0].size(), 2u);
  EXPECT_EQ(store->BeginStep(5, 0, 1).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->EndStep(5).ok());
  EXPECT_TRUE(Holds(*store, 5, 9, 5));
  EXPECT_EQ(store->BeginStep(5, 8, 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->EndStep(5).code(), StatusCode::kFailedPrecondition);
  EXPECT_INTEGRITY(*store);
}

// Tables kept between steps: new blocks are appended to what the caller holds while the
// version stands; a move or NVMe staging gives a new version and whole new tables, which must
// equal what fresh tables hold.
TEST_F(KvStoreTest, KeptStepTablesGrowInPlaceUntilAnEntryChanges) {
  auto store = Make(64, 32);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AddSequence(1, kAllHost).ok());
  ASSERT_TRUE(store->AddSequence(2, kAllHost).ok());
  ASSERT_TRUE(store->Extend(1, 3).ok());
  StepTables kept;
  ASSERT_TRUE(store->BeginStep(1, 0, 3, &kept).ok());
  const uint64_t first = kept.version;
  EXPECT_NE(first, 0u);
  ASSERT_EQ(kept.blocks.size(), 4u);
  EXPECT_EQ(kept.blocks[0].size(), 1u);
  ASSERT_TRUE(store->EndStep(1).ok());
  auto expect_fresh = [&](int64_t start) {
    auto fresh = store->BeginStep(1, start, 1);
    ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
    EXPECT_EQ(*fresh, kept.blocks);
    ASSERT_TRUE(store->EndStep(1).ok());
  };

  // Decode steps: one block more at position 4, the first entries left as they were.
  ASSERT_TRUE(store->Extend(1, 5).ok());
  std::byte* const block0 = kept.blocks[3][0];
  ASSERT_TRUE(store->BeginStep(1, 4, 1, &kept).ok());
  EXPECT_EQ(kept.version, first);
  EXPECT_EQ(kept.blocks[3].size(), 2u);
  EXPECT_EQ(kept.blocks[3][0], block0);
  ASSERT_TRUE(store->EndStep(1).ok());
  expect_fresh(4);

  // Layer 3 moves to NVMe: a new version, staged pointers, and again at the next step.
  ASSERT_TRUE(store->MoveLayer(1, 3, Tier::kNvme).ok());
  ASSERT_TRUE(store->FinishMoves(1).ok());
  ASSERT_TRUE(store->BeginStep(1, 4, 1, &kept).ok());
  const uint64_t staged = kept.version;
  EXPECT_GT(staged, first);
  EXPECT_EQ(kept.blocks[3].size(), 2u);
  ASSERT_TRUE(store->EndStep(1).ok());
  ASSERT_TRUE(store->BeginStep(1, 4, 1, &kept).ok());
  EXPECT_GT(kept.version, staged);
  ASSERT_TRUE(store->EndStep(1).ok());

  // Back on the host: one more version, then steady again; versions are never shared.
  ASSERT_TRUE(store->MoveLayer(1, 3, Tier::kHost).ok());
  ASSERT_TRUE(store->FinishMoves(1).ok());
  ASSERT_TRUE(store->BeginStep(1, 4, 1, &kept).ok());
  const uint64_t back = kept.version;
  ASSERT_TRUE(store->EndStep(1).ok());
  expect_fresh(4);
  ASSERT_TRUE(store->BeginStep(1, 4, 1, &kept).ok());
  EXPECT_EQ(kept.version, back);
  ASSERT_TRUE(store->EndStep(1).ok());
  ASSERT_TRUE(store->Extend(2, 1).ok());
  StepTables other;
  ASSERT_TRUE(store->BeginStep(2, 0, 1, &other).ok());
  EXPECT_NE(other.version, back);
  ASSERT_TRUE(store->EndStep(2).ok());
  // Tables of another sequence, or of none, are replaced whole.
  ASSERT_TRUE(store->BeginStep(1, 4, 1, &other).ok());
  EXPECT_EQ(other.blocks, kept.blocks);
  ASSERT_TRUE(store->EndStep(1).ok());
  EXPECT_INTEGRITY(*store);
}

TEST_F(KvStoreTest, NvmeLayersAreStagedAndWrittenBack) {
  auto store = Make(16, 16);
  ASSERT_NE(store, nullptr);
  const std::vector<Tier> placement = {Tier::kHost, Tier::kHost, Tier::kNvme, Tier::kNvme};
  ASSERT_TRUE(store->AddSequence(2, placement).ok());
  ASSERT_TRUE(store->Extend(2, 8).ok());
  EXPECT_EQ(store->Usage(Tier::kNvme).used_blocks, 4);
  EXPECT_EQ(store->Usage(Tier::kHost).used_blocks, 4);
  auto table = store->BeginStep(2, 0, 8);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ(store->Usage(Tier::kHost).used_blocks, 8);  // 4 staging blocks
  EXPECT_INTEGRITY(*store);
  for (size_t l = 0; l < 4; ++l) {
    for (size_t b = 0; b < 2; ++b) FillBlock((*table)[l][b], store->layout().BlockBytes(), 2, l, b);
  }
  ASSERT_TRUE(store->EndStep(2).ok());
  EXPECT_EQ(store->Usage(Tier::kHost).used_blocks, 4);
  EXPECT_TRUE(Holds(*store, 2, 8, 2));  // read back from NVMe
  ASSERT_TRUE(store->FreeSequence(2).ok());
  EXPECT_EQ(store->Usage(Tier::kNvme).used_blocks, 0);
  EXPECT_INTEGRITY(*store);
}

TEST_F(KvStoreTest, LayersMoveBetweenTiersAndKeepTheirData) {
  auto store = Make(32, 32);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AddSequence(3, kAllHost).ok());
  ASSERT_TRUE(store->Extend(3, 11).ok());
  Fill(*store, 3, 11);
  auto ticket = store->MoveLayer(3, 3, Tier::kNvme);
  ASSERT_TRUE(ticket.ok()) << ticket.status().ToString();
  EXPECT_INTEGRITY(*store);  // both copies are accounted while in flight
  EXPECT_EQ(store->MoveLayer(3, 3, Tier::kNvme).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(ticket->Wait().ok());
  ASSERT_TRUE(store->CollectMoves().ok());
  EXPECT_EQ(*store->LayerTier(3, 3), Tier::kNvme);
  EXPECT_EQ(store->Usage(Tier::kHost).used_blocks, 9);
  EXPECT_EQ(store->Usage(Tier::kNvme).used_blocks, 3);
  EXPECT_EQ(store->Usage(Tier::kNvme).tokens, 11);
  EXPECT_INTEGRITY(*store);
  EXPECT_TRUE(Holds(*store, 3, 11, 3));
  // Back again; BeginStep waits for the move without an explicit CollectMoves.
  ASSERT_TRUE(store->MoveLayer(3, 3, Tier::kHost).ok());
  EXPECT_TRUE(Holds(*store, 3, 11, 3));
  EXPECT_EQ(*store->LayerTier(3, 3), Tier::kHost);
  EXPECT_EQ(store->Usage(Tier::kNvme).used_blocks, 0);
  EXPECT_EQ(store->MoveLayer(3, 0, Tier::kHost).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->MoveLayer(3, 0, Tier::kGpu).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->MoveLayer(3, 4, Tier::kNvme).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->MoveLayer(9, 0, Tier::kNvme).status().code(), StatusCode::kNotFound);
  EXPECT_INTEGRITY(*store);
}

TEST_F(KvStoreTest, AnEmulatedGpuTierHoldsLayersAndMovesThemByteExact) {
  auto created = Make(16, 16, 8);
  ASSERT_NE(created, nullptr);
  KvStore& store = *created;
  const std::vector<Tier> split = {Tier::kGpu, Tier::kGpu, Tier::kHost, Tier::kHost};
  ASSERT_TRUE(store.AddSequence(5, split).ok());
  ASSERT_TRUE(store.Extend(5, 11).ok());
  Fill(store, 5, 11);
  EXPECT_EQ(store.Usage(Tier::kGpu).used_blocks, 6);
  // GPU -> host -> NVMe, each awaited with FinishMoves: the freed blocks are free on return.
  ASSERT_TRUE(store.MoveLayer(5, 1, Tier::kHost).ok());
  ASSERT_TRUE(store.FinishMoves(5).ok());
  EXPECT_EQ(store.Usage(Tier::kGpu).used_blocks, 3);
  ASSERT_TRUE(store.MoveLayer(5, 1, Tier::kNvme).ok());
  ASSERT_TRUE(store.FinishMoves(5).ok());
  EXPECT_EQ(*store.LayerTier(5, 1), Tier::kNvme);
  EXPECT_TRUE(Holds(store, 5, 11, 5));
  EXPECT_EQ(store.FinishMoves(77).code(), StatusCode::kNotFound);
  EXPECT_INTEGRITY(store);

  // An unused cached prefix gives its GPU blocks back on request.
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  ASSERT_TRUE(store.CachePrefix(5, prompt).ok());
  ASSERT_TRUE(store.FreeSequence(5).ok());
  EXPECT_EQ(store.Usage(Tier::kGpu).used_blocks, 2);  // layer 0's two full blocks, cached
  EXPECT_TRUE(store.ReclaimPrefixBlocks(Tier::kGpu, 8));
  EXPECT_EQ(store.Usage(Tier::kGpu).free_blocks, 8);
  EXPECT_FALSE(store.ReclaimPrefixBlocks(Tier::kGpu, 9));
  EXPECT_INTEGRITY(store);
}

TEST_F(KvStoreTest, OffloadedLayersBorrowSlotBlocksFromTheGpuTier) {
  auto created = Make(16, 0, 8);
  ASSERT_NE(created, nullptr);
  KvStore& store = *created;
  ASSERT_TRUE(store.AddSequence(1, {Tier::kGpu, Tier::kHost, Tier::kHost, Tier::kHost}).ok());
  ASSERT_TRUE(store.Extend(1, 8).ok());  // 2 GPU blocks for layer 0
  SlotBlocks slots;
  ASSERT_TRUE(store.LendSlots(1, 2, 3, &slots).ok());
  EXPECT_EQ(slots.blocks.size(), 3u);
  EXPECT_NE(slots.lease, 0u);
  EXPECT_EQ(store.Usage(Tier::kGpu).used_blocks, 5);
  EXPECT_EQ(store.LentSlotBlocks(), 3);
  EXPECT_EQ(store.LayerSlotBlocks(1, 2), 3);
  EXPECT_EQ(store.LayerSlotBlocks(1, 1), 0);
  EXPECT_EQ(store.LayerSlotBlocks(7, 2), 0);
  EXPECT_INTEGRITY(store);

  // The same count: the same blocks under the same lease, nothing allocated.
  SlotBlocks again;
  ASSERT_TRUE(store.LendSlots(1, 2, 3, &again).ok());
  EXPECT_EQ(again.lease, slots.lease);
  EXPECT_EQ(again.blocks, slots.blocks);
  EXPECT_EQ(store.Usage(Tier::kGpu).used_blocks, 5);

  // More than the tier has left: none held, nothing leaked.
  SlotBlocks none;
  EXPECT_EQ(store.LendSlots(1, 3, 4, &none).code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(none.blocks.empty());
  EXPECT_EQ(none.lease, 0u);
  EXPECT_EQ(store.Usage(Tier::kGpu).used_blocks, 5);
  EXPECT_INTEGRITY(store);

  // Coming back to the GPU returns the slots first: the move fits in the room they held.
  ASSERT_TRUE(store.LendSlots(1, 1, 1, &none).ok());
  EXPECT_EQ(store.Usage(Tier::kGpu).free_blocks, 2);
  ASSERT_TRUE(store.MoveLayer(1, 2, Tier::kGpu).ok());
  ASSERT_TRUE(store.FinishMoves(1).ok());
  EXPECT_EQ(store.LentSlotBlocks(), 1);
  EXPECT_EQ(store.LendSlots(1, 2, 3, &none).code(), StatusCode::kFailedPrecondition);
  EXPECT_INTEGRITY(store);

  // Offloaded again, the layer gets a new lease even where the blocks are the same.
  ASSERT_TRUE(store.MoveLayer(1, 2, Tier::kHost).ok());
  ASSERT_TRUE(store.FinishMoves(1).ok());
  SlotBlocks relent;
  ASSERT_TRUE(store.LendSlots(1, 2, 3, &relent).ok());
  EXPECT_GT(relent.lease, slots.lease);
  EXPECT_INTEGRITY(store);

  EXPECT_EQ(store.LendSlots(1, 0, 1, &none).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.LendSlots(1, 9, 1, &none).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.LendSlots(1, 1, 0, &none).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.LendSlots(7, 1, 1, &none).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store.FreeSequence(1).ok());
  EXPECT_EQ(store.Usage(Tier::kGpu).used_blocks, 0);
  EXPECT_EQ(store.LentSlotBlocks(), 0);
  EXPECT_INTEGRITY(store);
}

TEST_F(KvStoreTest, FreeWhileAMoveIsInFlightLeaksNothing) {
  auto store = Make(32, 32);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AddSequence(4, kAllHost).ok());
  ASSERT_TRUE(store->Extend(4, 16).ok());
  for (int l = 0; l < 4; ++l) ASSERT_TRUE(store->MoveLayer(4, l, Tier::kNvme).ok());
  ASSERT_TRUE(store->FreeSequence(4).ok());
  EXPECT_EQ(store->Usage(Tier::kHost).used_blocks, 0);
  EXPECT_EQ(store->Usage(Tier::kNvme).used_blocks, 0);
  EXPECT_INTEGRITY(*store);
}

TEST_F(KvStoreTest, PrefixBlocksAreSharedAcrossSequencesPerLayer) {
  auto store = Make(40);
  ASSERT_NE(store, nullptr);
  std::vector<int32_t> prompt(10);
  std::iota(prompt.begin(), prompt.end(), 100);
  auto cached = store->AddSequence(1, kAllHost, prompt);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(*cached, 0);
  ASSERT_TRUE(store->Extend(1, 10).ok());
  Fill(*store, 1, 10);
  ASSERT_TRUE(store->CachePrefix(1, prompt).ok());  // blocks 0 and 1 are full
  EXPECT_INTEGRITY(*store);
  EXPECT_EQ(store->prefix_stats().entries, 2);

  std::vector<int32_t> other = prompt;
  other.resize(14, 7);
  cached = store->AddSequence(2, kAllHost, other);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(*cached, 8);
  EXPECT_INTEGRITY(*store);
  ASSERT_TRUE(store->Extend(2, 14).ok());
  // 12 blocks for sequence 1, and only 2 new blocks per layer for sequence 2.
  EXPECT_EQ(store->Usage(Tier::kHost).used_blocks, 12 + 8);
  auto table1 = store->BeginStep(1, 9, 1);
  ASSERT_TRUE(table1.ok());
  const auto shared = *table1;
  ASSERT_TRUE(store->EndStep(1).ok());
  auto table2 = store->BeginStep(2, 8, 6);
  ASSERT_TRUE(table2.ok());
  for (int l = 0; l < 4; ++l) {
    EXPECT_EQ((*table2)[l][0], shared[l][0]);
    EXPECT_EQ((*table2)[l][1], shared[l][1]);
    EXPECT_NE((*table2)[l][2], shared[l][2]);  // the partial third block is private
    EXPECT_TRUE(BlockMatches((*table2)[l][1], store->layout().BlockBytes(), 1, l, 1));
  }
  EXPECT_EQ(store->CachePrefix(2, other).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->EndStep(2).ok());
  EXPECT_EQ(store->BeginStep(2, 4, 1).status().code(), StatusCode::kInvalidArgument);

  // A prompt of exactly two blocks reuses one: the last token must still be computed.
  std::vector<int32_t> exact(prompt.begin(), prompt.begin() + 8);
  EXPECT_EQ(*store->AddSequence(3, kAllHost, exact), 4);
  const PrefixStats stats = store->prefix_stats();
  EXPECT_EQ(stats.query_tokens, 10 + 14 + 8);
  EXPECT_EQ(stats.hit_tokens, 8 + 4);
  for (SequenceId s : {1, 2, 3}) ASSERT_TRUE(store->FreeSequence(s).ok());
  EXPECT_INTEGRITY(*store);
  // The cache alone still holds the two shared blocks of every layer.
  EXPECT_EQ(store->Usage(Tier::kHost).used_blocks, 8);
}

TEST_F(KvStoreTest, UnusedPrefixBlocksAreEvictedWhenThePoolIsFull) {
  auto store = Make(16);
  ASSERT_NE(store, nullptr);
  std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  ASSERT_TRUE(store->AddSequence(1, kAllHost, prompt).ok());
  ASSERT_TRUE(store->Extend(1, 9).ok());
  ASSERT_TRUE(store->CachePrefix(1, prompt).ok());
  // In use by sequence 1: a 4-block-per-layer sequence cannot get the 12 held blocks.
  ASSERT_TRUE(store->AddSequence(2, kAllHost).ok());
  EXPECT_EQ(store->Extend(2, 16).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(store->prefix_stats().evictions, 0);
  ASSERT_TRUE(store->FreeSequence(1).ok());
  EXPECT_EQ(store->Usage(Tier::kHost).used_blocks, 8);  // cached, unused
  ASSERT_TRUE(store->Extend(2, 16).ok());
  EXPECT_EQ(store->prefix_stats().evictions, 2);
  EXPECT_EQ(store->prefix_stats().entries, 0);
  EXPECT_INTEGRITY(*store);
}

TEST_F(KvStoreTest, PrefixHitsRequireTheSameTierPerLayer) {
  auto store = Make(32, 32);
  ASSERT_NE(store, nullptr);
  std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(store->AddSequence(1, kAllHost, prompt).ok());
  ASSERT_TRUE(store->Extend(1, 6).ok());
  ASSERT_TRUE(store->CachePrefix(1, prompt).ok());
  const std::vector<Tier> mixed = {Tier::kHost, Tier::kHost, Tier::kHost, Tier::kNvme};
  EXPECT_EQ(*store->AddSequence(2, mixed, prompt), 0);
  EXPECT_EQ(*store->AddSequence(3, kAllHost, prompt), 4);
  // Moving a shared layer gives the sequence a private copy; the cache keeps the original.
  ASSERT_TRUE(store->Extend(3, 6).ok());
  ASSERT_TRUE(store->MoveLayer(3, 0, Tier::kNvme).ok());
  ASSERT_TRUE(store->FreeSequence(1).ok());
  ASSERT_TRUE(store->CollectMoves().ok());
  EXPECT_INTEGRITY(*store);
}

TEST_F(KvStoreTest, RejectsBadArguments) {
  auto store = Make(8);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->AddSequence(1, {Tier::kHost}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->AddSequence(1, std::vector<Tier>(4, Tier::kGpu)).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(store->AddSequence(1, kAllHost).ok());
  EXPECT_EQ(store->AddSequence(1, kAllHost).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store->Extend(1, 4).ok());
  EXPECT_EQ(store->Extend(1, 3).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Extend(2, 3).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->FreeSequence(2).code(), StatusCode::kNotFound);
  const std::vector<int32_t> too_long(5, 1);
  EXPECT_EQ(store->CachePrefix(1, too_long).code(), StatusCode::kInvalidArgument);
  EXPECT_INTEGRITY(*store);

  KvStoreOptions options;
  options.layout = SmallLayout();
  options.nvme_blocks = 4;
  options.nvme_path = dir_.File("x.bin");
  EXPECT_EQ(KvStore::Create(options).status().code(), StatusCode::kInvalidArgument);
  options.layout.head_dim = 0;
  EXPECT_EQ(KvStore::Create(options).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace specontext
