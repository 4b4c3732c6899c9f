// The tiered KV store: one block pool per tier (GPU, pinned host, NVMe), a block table per
// (sequence, layer), a prefix cache shared across sequences, and asynchronous moves of whole
// layers between tiers. Every mutating call runs on the engine thread; only the copies run on
// the copy engine's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/batch.h"
#include "kv_store/block_pool.h"
#include "kv_store/block_table.h"
#include "kv_store/copy_engine.h"
#include "kv_store/kv_layout.h"
#include "kv_store/prefix_cache.h"

namespace specontext {

using SequenceId = uint64_t;

struct KvStoreOptions {
  KvLayout layout;
  int32_t gpu_blocks = 0;  // needs CUDA and a GPU when positive, unless emulated
  // Backs the GPU tier with host memory: the CPU backend's stand-in for device memory, so
  // placement across tiers runs (and is tested) without a GPU.
  bool emulate_gpu = false;
  int32_t host_blocks = 0;
  int32_t nvme_blocks = 0;
  std::string nvme_path;  // backing file of the NVMe tier, when nvme_blocks > 0
  bool prefix_caching = true;
};

// A step's block pointers (KvStore::BeginStep), kept by the caller between steps.
struct StepTables {
  uint64_t version = 0;  // the SequenceTable::version they match; 0: none yet
  std::vector<std::vector<std::byte*>> blocks;
};

class KvStore {
 public:
  static Result<std::unique_ptr<KvStore>> Create(const KvStoreOptions& options);

  const KvLayout& layout() const { return layout_; }
  bool HasTier(Tier tier) const { return pool(tier) != nullptr; }
  PoolUsage Usage(Tier tier) const;
  PrefixStats prefix_stats() const { return cache_.stats(); }

  // Registers a sequence with one tier per layer. With a prompt (and prefix caching on) it
  // adopts the longest cached prefix whose per-layer blocks sit on the requested tiers and
  // returns how many positions that covers: whole blocks, always fewer than the prompt, so
  // at least one token is left to compute.
  Result<int64_t> AddSequence(SequenceId seq, const std::vector<Tier>& placement,
                              std::span<const int32_t> prompt = {});
  // Grows every layer to hold `length` positions; all or nothing. Full pools first evict
  // unused prefix-cache entries.
  Status Extend(SequenceId seq, int64_t length);
  Status FreeSequence(SequenceId seq);
  // Evicts every prefix-cache entry no sequence uses; returns how many.
  int64_t DropUnusedPrefixes();
  // Offers the full blocks of `tokens` to the prefix cache: the tokens whose KV the sequence
  // already holds, from position 0.
  Status CachePrefix(SequenceId seq, std::span<const int32_t> tokens);

  // Copies one layer to an adjacent tier in the background; the table switches when the copy
  // completes and CollectMoves (or any call on the sequence) sees it.
  Result<CopyTicket> MoveLayer(SequenceId seq, int layer, Tier to);
  // Applies every completed move; the first failed move's error (that layer stays put).
  Status CollectMoves();
  // Waits for the sequence's moves and applies them, so the blocks they free are free.
  Status FinishMoves(SequenceId seq);
  // Evicts unused prefix-cache entries holding `tier` blocks until `free_blocks` are free
  // there; false when the cache cannot give that many.
  bool ReclaimPrefixBlocks(Tier tier, int64_t free_blocks);
  Result<Tier> LayerTier(SequenceId seq, int layer) const;
  Result<int64_t> Length(SequenceId seq) const;

  // Pointers for a step writing positions [start, start + count): per layer, the blocks that
  // cover [0, start + count), all compute-visible (NVMe layers are staged into host blocks).
  // Waits for the sequence's moves. EndStep writes staged blocks back and releases them.
  // `tables` is brought up to date in place: while its version is the sequence's, the entries
  // it holds are still right and only new blocks are appended, so a decode step costs what
  // changed, not the sequence's length. The version changes whenever an entry does (a layer
  // moved, blocks staged) and is never reused, across sequences too.
  Status BeginStep(SequenceId seq, int64_t start, int64_t count, StepTables* tables);
  // The same, into fresh tables.
  Result<std::vector<std::vector<std::byte*>>> BeginStep(SequenceId seq, int64_t start,
                                                         int64_t count);
  Status EndStep(SequenceId seq);

  // Elastic loading's slots for an offloaded layer: `blocks` blocks of the GPU tier that the
  // layer holds while it stays off the GPU, freed when it moves back or the sequence leaves.
  // While the count is unchanged the same blocks come back under the same lease; a new count
  // frees the old ones and makes a new lease. kResourceExhausted when the GPU tier cannot give
  // them (the layer then holds none); kFailedPrecondition for a layer on the GPU.
  Status LendSlots(SequenceId seq, int layer, int32_t blocks, SlotBlocks* out);
  // Blocks lent as slots: to one layer of a sequence (0 when none, or no such layer), and over
  // every sequence.
  int32_t LayerSlotBlocks(SequenceId seq, int layer) const;
  int64_t LentSlotBlocks() const;

  // Pools consistent; every table entry is an allocated block of the tier it claims; every
  // block's reference count equals its references from tables, moves, staging and the cache;
  // a block in two tables is a prefix-cache block. Cheap enough to call after every operation.
  Status CheckIntegrity() const;

 private:
  KvStore() = default;
  BlockPool* pool(Tier tier) const { return pools_[static_cast<int>(tier)].get(); }
  Result<SequenceTable*> Find(SequenceId seq);
  // Evicts the least recently used unused prefix entry, one holding a block on `freeing` when
  // given; false when there is none.
  bool EvictPrefix(std::optional<Tier> freeing);
  // Allocates on `tier`, evicting unused prefix-cache blocks of that tier when it is full.
  Result<int32_t> AllocateBlock(Tier tier);
  void ReleaseBlocks(Tier tier, std::span<const int32_t> ids);
  void SetBlockTokens(Tier tier, const std::vector<int32_t>& blocks, int64_t length);
  Status FinishMove(SequenceTable& table, LayerTable& layer);
  void ReturnSlots(LayerTable& layer);
  Status WaitMoves(SequenceTable& table);

  KvLayout layout_;
  bool prefix_caching_ = true;
  std::unique_ptr<BlockPool> pools_[kNumTiers];
  PrefixCache cache_;
  std::unordered_map<SequenceId, SequenceTable> sequences_;
  int64_t pending_moves_ = 0;
  uint64_t last_version_ = 0;  // SequenceTable::version
  uint64_t last_lease_ = 0;    // LayerTable::slot_lease
  int64_t lent_slot_blocks_ = 0;
  // Declared last so it is destroyed first: in-flight copies finish while pools still exist.
  std::unique_ptr<CopyEngine> copier_;
};

}  // namespace specontext
