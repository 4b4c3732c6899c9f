// Reuse of the retrieval head's K across sequences that share a prompt prefix. The head's K at
// position t reads token t and the target's fused state at t - 1, which depend on tokens [0, t]
// only, so a full block of K computed for one sequence serves every sequence whose tokens agree
// up to the block's end. The scheduler's prefix cache skips the target's work for such a prefix
// and with it the states the head would need to project it again: without this reuse the head
// projects an adopted prefix from token embeddings alone, and its lists drift from the ones the
// full input gives (docs/specontext.md, "Prefix caching and the head").
//
// Blocks are identified by a chain key over every token up to their end and checked against the
// block's own tokens, as the scheduler's prefix cache does. The index maps keys to slots; its
// owners (the CPU planner's store, the GPU head pool) keep the K rows and, per block, the fused
// state of its last position: the hidden input of the first position after an adopted prefix.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace specontext {

// Chain keys of the full blocks of `tokens`: key b stands for tokens [0, (b + 1) · block_tokens).
// `from` keys are taken as given (the keys of the blocks before), so a growing sequence hashes
// each block once.
std::vector<uint64_t> PrefixBlockKeys(std::span<const int32_t> tokens, int block_tokens,
                                      std::vector<uint64_t> from = {});

class PrefixBlockIndex {
 public:
  explicit PrefixBlockIndex(int block_tokens) : block_tokens_(block_tokens) {}

  int block_tokens() const { return block_tokens_; }
  // The slot holding the block with this key whose own tokens are `tokens`, or -1.
  int64_t Find(uint64_t key, std::span<const int32_t> tokens) const;
  // Records that `slot` holds the block; false (and nothing recorded) when the key is already
  // held by another slot.
  bool Insert(uint64_t key, std::span<const int32_t> tokens, int64_t slot);
  // Forgets what `slot` holds, if anything (it is being reused).
  void Erase(int64_t slot);
  bool Holds(int64_t slot) const { return keys_.contains(slot); }
  size_t size() const { return slots_.size(); }

 private:
  struct Entry {
    int64_t slot;
    std::vector<int32_t> tokens;
  };
  int block_tokens_;
  std::unordered_map<uint64_t, Entry> slots_;   // by key
  std::unordered_map<int64_t, uint64_t> keys_;  // by slot
};

}  // namespace specontext
