#include "kv_store/kv_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <unordered_map>

namespace specontext {
namespace {

std::string SeqName(SequenceId seq) { return "sequence " + std::to_string(seq); }

bool Adjacent(Tier a, Tier b) { return std::abs(static_cast<int>(a) - static_cast<int>(b)) == 1; }

}  // namespace

Result<std::unique_ptr<KvStore>> KvStore::Create(const KvStoreOptions& options) {
  SPC_RETURN_IF_ERROR(options.layout.Validate());
  std::unique_ptr<KvStore> store(new KvStore());
  store->layout_ = options.layout;
  store->prefix_caching_ = options.prefix_caching;
  const int32_t counts[kNumTiers] = {options.gpu_blocks, options.host_blocks, options.nvme_blocks};
  for (Tier tier : kAllTiers) {
    const int32_t blocks = counts[static_cast<int>(tier)];
    if (blocks < 0) {
      return InvalidArgument("negative block count for the " + std::string(TierName(tier)) +
                             " tier");
    }
    if (blocks == 0) continue;
    if (tier == Tier::kNvme && options.nvme_path.empty()) {
      return InvalidArgument("the NVMe tier needs a file path");
    }
    auto created = BlockPool::Create(tier, options.layout.BlockBytes(), options.layout.block_tokens,
                                     blocks, options.nvme_path, options.emulate_gpu);
    if (!created.ok()) return created.status().WithContext("KV store");
    store->pools_[static_cast<int>(tier)] = std::move(created).value();
  }
  // NVMe blocks are staged through host memory, so an NVMe tier without a host tier is unusable.
  if (store->HasTier(Tier::kNvme) && !store->HasTier(Tier::kHost)) {
    return InvalidArgument("the NVMe KV tier needs a host tier to stage through");
  }
  SPC_ASSIGN_OR_RETURN(store->copier_, CopyEngine::Create());
  return store;
}

PoolUsage KvStore::Usage(Tier tier) const {
  const BlockPool* p = pool(tier);
  return p == nullptr ? PoolUsage{} : p->Usage();
}

Result<SequenceTable*> KvStore::Find(SequenceId seq) {
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) return NotFound(SeqName(seq) + " is not in the KV store");
  return &it->second;
}

bool KvStore::EvictPrefix(std::optional<Tier> freeing) {
  // Only entries nobody uses any more, and (when asked) only those freeing a block there.
  auto victim = cache_.EvictLru([&](const PrefixEntry& e) {
    bool frees_there = !freeing;
    for (const BlockRef& b : e.blocks) {
      if (pool(b.tier)->refcount(b.id) != 1) return false;
      frees_there = frees_there || b.tier == *freeing;
    }
    return frees_there;
  });
  if (!victim) return false;
  for (const BlockRef& b : victim->blocks) pool(b.tier)->Release(b.id);
  return true;
}

int64_t KvStore::DropUnusedPrefixes() {
  int64_t dropped = 0;
  while (EvictPrefix(std::nullopt)) ++dropped;
  return dropped;
}

Result<int32_t> KvStore::AllocateBlock(Tier tier) {
  BlockPool* p = pool(tier);
  if (p == nullptr) return FailedPrecondition("no " + std::string(TierName(tier)) + " KV tier");
  bool evicted = true;
  while (p->free_blocks() == 0 && evicted) evicted = EvictPrefix(tier);
  return p->Allocate();
}

void KvStore::ReleaseBlocks(Tier tier, std::span<const int32_t> ids) {
  for (int32_t id : ids) pool(tier)->Release(id);
}

void KvStore::SetBlockTokens(Tier tier, const std::vector<int32_t>& blocks, int64_t length) {
  const int bt = layout_.block_tokens;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const int64_t filled = std::clamp<int64_t>(length - static_cast<int64_t>(i) * bt, 0, bt);
    pool(tier)->SetTokens(blocks[i], static_cast<int>(filled));
  }
}

Result<int64_t> KvStore::AddSequence(SequenceId seq, const std::vector<Tier>& placement,
                                     std::span<const int32_t> prompt) {
  if (sequences_.contains(seq)) return InvalidArgument(SeqName(seq) + " already exists");
  if (static_cast<int>(placement.size()) != layout_.num_layers) {
    return InvalidArgument("placement for " + SeqName(seq) + " names " +
                           std::to_string(placement.size()) + " layers, the model has " +
                           std::to_string(layout_.num_layers));
  }
  for (Tier tier : placement) {
    if (!HasTier(tier)) {
      return InvalidArgument(SeqName(seq) + " placed on the absent " + std::string(TierName(tier)) +
                             " tier");
    }
  }
  SequenceTable table;
  table.layers.resize(placement.size());
  for (size_t l = 0; l < placement.size(); ++l) table.layers[l].tier = placement[l];
  if (prefix_caching_ && !prompt.empty()) {
    const int bt = layout_.block_tokens;
    const int64_t reusable = (static_cast<int64_t>(prompt.size()) - 1) / bt;
    for (int64_t i = 0; i < reusable; ++i) {
      const PrefixEntry* entry = cache_.Lookup(table.chain_hash, prompt.subspan(i * bt, bt));
      if (entry == nullptr) break;
      bool same_tiers = true;
      for (size_t l = 0; l < placement.size(); ++l) {
        same_tiers = same_tiers && entry->blocks[l].tier == placement[l];
      }
      // Sharing across tiers would break "one tier per layer table"; stop the hit here.
      if (!same_tiers) break;
      for (size_t l = 0; l < placement.size(); ++l) {
        pool(placement[l])->Retain(entry->blocks[l].id);
        table.layers[l].blocks.push_back(entry->blocks[l].id);
      }
      table.chain_hash = entry->hash;
      ++table.cached_blocks;
    }
    table.length = static_cast<int64_t>(table.cached_blocks) * bt;
    cache_.CountQuery(static_cast<int64_t>(prompt.size()), table.length);
  }
  const int64_t cached = table.length;
  table.version = ++last_version_;
  sequences_.emplace(seq, std::move(table));
  return cached;
}

Status KvStore::Extend(SequenceId seq, int64_t length) {
  SPC_ASSIGN_OR_RETURN(SequenceTable * table, Find(seq));
  if (table->in_step) return FailedPrecondition(SeqName(seq) + " is inside a step");
  if (length < table->length) {
    return InvalidArgument(SeqName(seq) + " cannot shrink from " + std::to_string(table->length) +
                           " to " + std::to_string(length));
  }
  SPC_RETURN_IF_ERROR(WaitMoves(*table));
  const size_t want = static_cast<size_t>(layout_.BlocksFor(length));
  std::vector<std::vector<int32_t>> added(table->layers.size());
  for (size_t l = 0; l < table->layers.size(); ++l) {
    LayerTable& layer = table->layers[l];
    while (layer.blocks.size() + added[l].size() < want) {
      auto id = AllocateBlock(layer.tier);
      if (!id.ok()) {
        for (size_t k = 0; k <= l; ++k) ReleaseBlocks(table->layers[k].tier, added[k]);
        return id.status().WithContext("extending " + SeqName(seq) + " to " +
                                       std::to_string(length) + " positions");
      }
      added[l].push_back(*id);
    }
  }
  for (size_t l = 0; l < table->layers.size(); ++l) {
    LayerTable& layer = table->layers[l];
    layer.blocks.insert(layer.blocks.end(), added[l].begin(), added[l].end());
    SetBlockTokens(layer.tier, layer.blocks, length);
  }
  table->length = length;
  return Status::Ok();
}

Status KvStore::FreeSequence(SequenceId seq) {
  SPC_ASSIGN_OR_RETURN(SequenceTable * table, Find(seq));
  // The copy must not write into blocks that are already someone else's.
  const Status moves = WaitMoves(*table);
  if (!moves.ok())
    spdlog::warn("kv_store: freeing {} after a failed move: {}", seq, moves.ToString());
  for (const StagedBlock& s : table->staged) pool(Tier::kHost)->Release(s.host_id);
  for (LayerTable& layer : table->layers) {
    ReleaseBlocks(layer.tier, layer.blocks);
    ReturnSlots(layer);
  }
  sequences_.erase(seq);
  return Status::Ok();
}

Status KvStore::CachePrefix(SequenceId seq, std::span<const int32_t> tokens) {
  if (!prefix_caching_) return Status::Ok();
  SPC_ASSIGN_OR_RETURN(SequenceTable * table, Find(seq));
  // Staged NVMe blocks are not written back yet; sharing them now could hand out stale KV.
  if (table->in_step) return FailedPrecondition(SeqName(seq) + " is inside a step");
  if (static_cast<int64_t>(tokens.size()) > table->length) {
    return InvalidArgument("prefix of " + std::to_string(tokens.size()) + " tokens for " +
                           SeqName(seq) + " which holds " + std::to_string(table->length));
  }
  const int bt = layout_.block_tokens;
  const int32_t full = static_cast<int32_t>(tokens.size() / bt);
  for (int32_t i = table->cached_blocks; i < full; ++i) {
    const auto block_tokens = tokens.subspan(static_cast<size_t>(i) * bt, bt);
    PrefixEntry entry;
    entry.parent = table->chain_hash;
    entry.hash = PrefixCache::ChainHash(entry.parent, block_tokens);
    entry.tokens.assign(block_tokens.begin(), block_tokens.end());
    for (const LayerTable& layer : table->layers) {
      entry.blocks.push_back(BlockRef{layer.tier, layer.blocks[i]});
    }
    const std::vector<BlockRef> blocks = entry.blocks;
    // An existing entry already serves these tokens; this sequence keeps its own copy.
    if (cache_.Insert(std::move(entry))) {
      for (const BlockRef& b : blocks) pool(b.tier)->Retain(b.id);
    }
    table->chain_hash = PrefixCache::ChainHash(table->chain_hash, block_tokens);
    table->cached_blocks = i + 1;
  }
  return Status::Ok();
}

Result<CopyTicket> KvStore::MoveLayer(SequenceId seq, int layer_index, Tier to) {
  SPC_ASSIGN_OR_RETURN(SequenceTable * table, Find(seq));
  if (layer_index < 0 || layer_index >= layout_.num_layers) {
    return InvalidArgument("layer " + std::to_string(layer_index) + " out of range for " +
                           SeqName(seq));
  }
  LayerTable& layer = table->layers[layer_index];
  const std::string what = "moving layer " + std::to_string(layer_index) + " of " + SeqName(seq) +
                           " from " + std::string(TierName(layer.tier)) + " to " +
                           std::string(TierName(to));
  if (table->in_step) return FailedPrecondition(what + ": the sequence is inside a step");
  if (layer.pending) return FailedPrecondition(what + ": a move of that layer is in flight");
  if (!HasTier(to)) return InvalidArgument(what + ": no such tier");
  if (!Adjacent(layer.tier, to)) return InvalidArgument(what + ": tiers move one hop at a time");
  // A layer coming back to the GPU is attended in place there: its slots go back first, so the
  // move can use the room they held.
  if (to == Tier::kGpu) ReturnSlots(layer);
  PendingMove move;
  move.to = to;
  std::vector<BlockCopy> copies;
  for (int32_t src : layer.blocks) {
    auto dst = AllocateBlock(to);
    if (!dst.ok()) {
      ReleaseBlocks(to, move.blocks);
      return dst.status().WithContext(what);
    }
    move.blocks.push_back(*dst);
    copies.push_back(BlockCopy{pool(layer.tier), src, pool(to), *dst});
  }
  SetBlockTokens(to, move.blocks, table->length);
  move.ticket = copier_->Submit(std::move(copies));
  CopyTicket ticket = move.ticket;
  layer.pending = std::move(move);
  ++pending_moves_;
  return ticket;
}

Status KvStore::FinishMove(SequenceTable& table, LayerTable& layer) {
  PendingMove move = std::move(*layer.pending);
  layer.pending.reset();
  --pending_moves_;
  const Status status = move.ticket.Wait();
  if (!status.ok()) {
    ReleaseBlocks(move.to, move.blocks);
    return status;
  }
  // Prefix-cache entries naming the old blocks follow the layer to its copies: otherwise they
  // would pin the old blocks on the tier the layer left, and a long request could fail to grow
  // there.
  std::unordered_map<int32_t, int32_t> moved;
  for (size_t i = 0; i < layer.blocks.size() && i < move.blocks.size(); ++i) {
    moved.emplace(layer.blocks[i], move.blocks[i]);
  }
  cache_.ForEachMutable([&](PrefixEntry& entry) {
    for (BlockRef& b : entry.blocks) {
      auto it = b.tier == layer.tier ? moved.find(b.id) : moved.end();
      // Only where this sequence and the entry are the block's sole holders: a block other
      // sequences share stays allocated anyway, and must stay the cache's (integrity rule).
      if (it == moved.end() || pool(b.tier)->refcount(b.id) != 2) continue;
      pool(move.to)->Retain(it->second);
      pool(b.tier)->Release(b.id);
      b = BlockRef{move.to, it->second};
    }
  });
  ReleaseBlocks(layer.tier, layer.blocks);
  layer.tier = move.to;
  layer.blocks = std::move(move.blocks);
  table.version = ++last_version_;
  return Status::Ok();
}

Status KvStore::WaitMoves(SequenceTable& table) {
  Status first;
  for (LayerTable& layer : table.layers) {
    if (!layer.pending) continue;
    const Status s = FinishMove(table, layer);
    if (first.ok()) first = s;
  }
  return first;
}

Status KvStore::CollectMoves() {
  Status first;
  for (auto it = sequences_.begin(); pending_moves_ > 0 && it != sequences_.end(); ++it) {
    for (LayerTable& layer : it->second.layers) {
      if (!layer.pending || !layer.pending->ticket.Poll()) continue;
      const Status s = FinishMove(it->second, layer);
      if (first.ok()) first = s;
    }
  }
  return first;
}

Status KvStore::FinishMoves(SequenceId seq) {
  SPC_ASSIGN_OR_RETURN(SequenceTable * table, Find(seq));
  return WaitMoves(*table);
}

bool KvStore::ReclaimPrefixBlocks(Tier tier, int64_t free_blocks) {
  const BlockPool* p = pool(tier);
  if (p == nullptr) return free_blocks <= 0;
  while (p->free_blocks() < free_blocks) {
    if (!EvictPrefix(tier)) return false;
  }
  return true;
}

Result<Tier> KvStore::LayerTier(SequenceId seq, int layer) const {
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) return NotFound(SeqName(seq) + " is not in the KV store");
  if (layer < 0 || layer >= layout_.num_layers) return InvalidArgument("layer out of range");
  return it->second.layers[layer].tier;
}

Result<int64_t> KvStore::Length(SequenceId seq) const {
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) return NotFound(SeqName(seq) + " is not in the KV store");
  return it->second.length;
}

Result<std::vector<std::vector<std::byte*>>> KvStore::BeginStep(SequenceId seq, int64_t start,
                                                                int64_t count) {
  StepTables tables;
  SPC_RETURN_IF_ERROR(BeginStep(seq, start, count, &tables));
  return std::move(tables.blocks);
}

Status KvStore::BeginStep(SequenceId seq, int64_t start, int64_t count, StepTables* tables) {
  SPC_ASSIGN_OR_RETURN(SequenceTable * table, Find(seq));
  if (table->in_step) return FailedPrecondition(SeqName(seq) + " is already inside a step");
  if (start < 0 || count <= 0 || start + count > table->length) {
    return InvalidArgument("step [" + std::to_string(start) + ", " + std::to_string(start + count) +
                           ") outside the " + std::to_string(table->length) + " positions of " +
                           SeqName(seq));
  }
  if (start < static_cast<int64_t>(table->cached_blocks) * layout_.block_tokens) {
    return InvalidArgument("step of " + SeqName(seq) + " would write into shared prefix blocks");
  }
  SPC_RETURN_IF_ERROR(WaitMoves(*table));
  const size_t used = static_cast<size_t>(layout_.BlocksFor(start + count));
  if (tables->version != table->version || tables->blocks.size() != table->layers.size()) {
    tables->blocks.assign(table->layers.size(), {});
  }
  std::vector<BlockCopy> stage_in;
  std::vector<StagedBlock> staged;
  for (size_t l = 0; l < table->layers.size(); ++l) {
    const LayerTable& layer = table->layers[l];
    std::vector<std::byte*>& pointers = tables->blocks[l];
    if (ComputeVisible(layer.tier)) {
      for (size_t i = pointers.size(); i < used; ++i) {
        pointers.push_back(pool(layer.tier)->data(layer.blocks[i]));
      }
      continue;
    }
    pointers.clear();
    for (size_t i = 0; i < used; ++i) {
      auto host = AllocateBlock(Tier::kHost);
      if (!host.ok()) {
        for (const StagedBlock& s : staged) pool(Tier::kHost)->Release(s.host_id);
        tables->version = 0;
        return host.status().WithContext("staging NVMe KV of " + SeqName(seq));
      }
      staged.push_back(StagedBlock{static_cast<int>(l), static_cast<int32_t>(i), *host});
      stage_in.push_back(BlockCopy{pool(Tier::kNvme), layer.blocks[i], pool(Tier::kHost), *host});
      pointers.push_back(pool(Tier::kHost)->data(*host));
    }
  }
  if (const Status s = CopyEngine::CopyNow(stage_in); !s.ok()) {
    for (const StagedBlock& b : staged) pool(Tier::kHost)->Release(b.host_id);
    tables->version = 0;
    return s.WithContext("staging NVMe KV of " + SeqName(seq));
  }
  // Staged blocks are this step's alone: the next step gets other ones.
  if (!staged.empty()) table->version = ++last_version_;
  tables->version = table->version;
  table->in_step = true;
  table->step_start = start;
  table->step_end = start + count;
  table->staged = std::move(staged);
  return Status::Ok();
}

Status KvStore::EndStep(SequenceId seq) {
  SPC_ASSIGN_OR_RETURN(SequenceTable * table, Find(seq));
  if (!table->in_step) return FailedPrecondition(SeqName(seq) + " is not inside a step");
  const int bt = layout_.block_tokens;
  const int64_t first_written = table->step_start / bt;
  const int64_t last_written = (table->step_end - 1) / bt;
  std::vector<BlockCopy> write_back;
  for (const StagedBlock& s : table->staged) {
    if (s.index < first_written || s.index > last_written) continue;
    write_back.push_back(BlockCopy{pool(Tier::kHost), s.host_id, pool(Tier::kNvme),
                                   table->layers[s.layer].blocks[s.index]});
  }
  const Status status = CopyEngine::CopyNow(write_back);
  for (const StagedBlock& s : table->staged) pool(Tier::kHost)->Release(s.host_id);
  table->staged.clear();
  table->in_step = false;
  return status.ok() ? status : status.WithContext("writing back NVMe KV of " + SeqName(seq));
}

}  // namespace specontext
