// Elastic loading's bookkeeping for one sequence: which selected KV position sits in which GPU
// slot, per KV head. A layer whose KV lives in host memory keeps `capacity` slots per KV head on
// the GPU; each decode step's selection is diffed against the previous one, so positions still
// selected keep their slots, positions dropped free theirs, and only the newly selected
// positions are copied in, into the freed slots. One map serves every offloaded layer of the
// sequence, because the same positions are selected for every layer.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"

namespace specontext {

struct SlotLoad {
  int32_t position = 0;
  int32_t slot = 0;
};

struct SlotAssignment {
  // Per KV head, the slot of every listed position but the last (the token's own position,
  // which the step itself writes and which is therefore never slotted), in list order.
  std::vector<std::vector<int32_t>> slots;
  // Per KV head, the positions to copy in (S_now − S_last), into slots S_last − S_now freed.
  std::vector<std::vector<SlotLoad>> loads;
  int64_t reused = 0;  // positions already in their slots, over all heads
  int64_t loaded = 0;  // positions in `loads`, over all heads
  bool fresh = false;  // the map held nothing before (new, or cleared)
};

class SlotMap {
 public:
  SlotMap(int kv_heads, int capacity);

  int kv_heads() const { return static_cast<int>(heads_.size()); }
  int capacity() const { return capacity_; }

  // lists: per KV head, strictly ascending, the token's own position last (the shape
  // SequenceStep::sparse_positions has). InvalidArgument when a list needs more than
  // `capacity` slots or is not ascending; the map is then unchanged.
  Status Assign(std::span<const std::vector<int32_t>> lists, SlotAssignment* out);
  // Every slotted position of `kv_head` with its slot, ascending by position: what a layer
  // whose slots hold nothing yet (newly offloaded) must copy in whole.
  std::vector<SlotLoad> Resident(int kv_head) const;
  // Forgets every position: the slots' contents are no longer trusted.
  void Clear();

 private:
  struct Head {
    std::vector<int32_t> positions;  // ascending
    std::vector<int32_t> slots;      // slot of positions[i]
    std::vector<int32_t> free;       // free slots, popped from the back
  };
  void ResetHead(Head& head) const;

  int capacity_ = 0;
  std::vector<Head> heads_;
};

}  // namespace specontext
