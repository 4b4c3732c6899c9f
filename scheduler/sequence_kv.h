// What the scheduler needs from the KV store: admit a sequence (adopting a cached prefix),
// grow it all-or-nothing, release it, and hand the engine block tables for a step. Kept this
// small so the policy does not depend on how tiers are managed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/batch.h"

namespace specontext {

using BlockTablePerLayer = std::vector<std::vector<std::byte*>>;

class SequenceKv {
 public:
  virtual ~SequenceKv() = default;
  // Registers `seq` (its tokens so far; it may grow to `max_length` positions; its sparse rows
  // attend to `sparse_budget` positions per KV head, 0: dense); returns how many leading
  // positions a cached prefix already covers (always fewer than the tokens).
  // kResourceExhausted: not now, retry when running sequences free room; kOutOfRange: the
  // tokens alone exceed every tier, so the request fails.
  virtual Result<int> Admit(uint64_t seq, std::span<const int32_t> tokens, int max_length,
                            int64_t sparse_budget, std::string_view request_id) = 0;
  // Grows `seq` to hold `total_tokens` positions, all or nothing: kResourceExhausted when the
  // tiers are full.
  virtual Status Reserve(uint64_t seq, int total_tokens) = 0;
  // Offers the sequence's computed full blocks to the prefix cache.
  virtual void CachePrefix(uint64_t seq, std::span<const int32_t> computed_tokens) = 0;
  virtual void Release(uint64_t seq) = 0;
  // Fills step->block_table (block_table[layer][i]: the i-th block of `seq` for that layer,
  // compute-visible) for a step that writes positions [start, start + count), with
  // step->table_version and step->host_layers, and for a sparse decode row (sparse_positions
  // set) with offloaded layers, step->slot_blocks. EndStep after the forward pass, with the same
  // step: it takes the tables back for the next step.
  virtual Status BeginStep(uint64_t seq, int start, int count, SequenceStep* step) = 0;
  virtual Status EndStep(uint64_t seq, SequenceStep* step) = 0;
  // Positions one sequence may ever hold (every tier together); beyond it a request fails alone.
  virtual int64_t CapacityTokens() const = 0;
};

}  // namespace specontext
