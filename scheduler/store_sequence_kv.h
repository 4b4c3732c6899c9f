// SequenceKv over the tiered KvStore, with the memory manager deciding admission and where
// each layer lives (KvPlacement): the engine loop sees block tables, never tiers.
#pragma once

#include <memory>
#include <unordered_map>

#include "kv_store/kv_store.h"
#include "scheduler/kv_placement.h"
#include "scheduler/sequence_kv.h"

namespace specontext {

class StoreSequenceKv : public SequenceKv {
 public:
  static Result<std::unique_ptr<StoreSequenceKv>> Create(KvStore* store,
                                                         KvPlacementOptions options = {});

  Result<int> Admit(uint64_t seq, std::span<const int32_t> tokens, int max_length,
                    int64_t sparse_budget, std::string_view request_id) override;
  Status Reserve(uint64_t seq, int total_tokens) override;
  void CachePrefix(uint64_t seq, std::span<const int32_t> computed_tokens) override;
  void Release(uint64_t seq) override;
  Status BeginStep(uint64_t seq, int start, int count, SequenceStep* step) override;
  Status EndStep(uint64_t seq, SequenceStep* step) override;
  int64_t CapacityTokens() const override;

  const KvPlacement& placement() const { return *placement_; }

 private:
  // Lends the offloaded layers of a sparse decode row the slots its lists need.
  void LendSlots(uint64_t seq, SequenceStep* step);

  StoreSequenceKv(KvStore* store, std::unique_ptr<KvPlacement> placement)
      : store_(store), placement_(std::move(placement)) {}

  KvStore* store_;
  std::unique_ptr<KvPlacement> placement_;
  std::unordered_map<uint64_t, StepTables> tables_;  // per sequence, lent to its steps
};

}  // namespace specontext
