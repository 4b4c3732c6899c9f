// Elastic loading's bookkeeping for one sequence: which selected KV position sits in which GPU
// slot, per KV head. A layer whose KV lives in host memory keeps `capacity` slots per KV head on
// the GPU; each decode step's selection is diffed against the previous one, so positions still
// selected keep their slots, positions dropped free theirs, and only the newly selected
// positions are copied in, into the freed slots. One map serves every offloaded layer of the
// sequence, because the same positions are selected for every layer.
//
// Slots beyond the list length keep positions after they drop out of the selection, the
// longest-dropped given up first: a position near the selection's edge that comes back a few
// steps later is found in its slot instead of being copied again.
#pragma once

#include <cstdint>
#include <deque>
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
  // Per KV head, the positions to copy in: S_now − S_last less those still kept from earlier
  // selections, into free slots or those of the positions dropped longest ago.
  std::vector<std::vector<SlotLoad>> loads;
  int64_t reused = 0;    // positions already in their slots, over all heads
  int64_t recalled = 0;  // of those, positions that had dropped out and were kept
  int64_t loaded = 0;    // positions in `loads`, over all heads
  bool fresh = false;    // the map held nothing before (new, or cleared)
};

// Slots per KV head for lists of `listed` positions (the token's own excluded): a quarter more
// than the list, in whole blocks of `block_tokens`, so positions that drop out stay a while.
// The memory model reserves this many positions per offloaded layer (MemoryModelConfig).
int SlotCapacity(int listed, int block_tokens);
// The capacity a decode row's lists (one per KV head, the token's own position last) need.
int SlotCapacityForLists(const std::vector<std::vector<int32_t>>& lists, int block_tokens);

class SlotMap {
 public:
  SlotMap(int kv_heads, int capacity);

  int kv_heads() const { return static_cast<int>(heads_.size()); }
  int capacity() const { return capacity_; }

  // lists: per KV head, strictly ascending, the token's own position last (the shape
  // SequenceStep::sparse_positions has). InvalidArgument when a list needs more than
  // `capacity` slots or is not ascending; the map is then unchanged. `out` is overwritten; its
  // vectors are reused, so passing the same one every step allocates nothing once warm.
  Status Assign(std::span<const std::vector<int32_t>> lists, SlotAssignment* out);
  // Every slotted position of `kv_head` with its slot (selected ones ascending, then those
  // kept after dropping out): what a layer whose slots hold nothing yet (newly offloaded)
  // must copy in whole.
  std::vector<SlotLoad> Resident(int kv_head) const;
  // Forgets every position: the slots' contents are no longer trusted.
  void Clear();

 private:
  struct Kept {
    int32_t position = 0;
    int32_t slot = 0;      // -1 once selected again or given up (removed at the next step)
    uint64_t dropped = 0;  // when it left the selection (the map's drop counter)
  };
  struct Head {
    std::vector<int32_t> positions;  // ascending
    std::vector<int32_t> slots;      // slot of positions[i]
    std::vector<int32_t> free;       // free slots, popped from the back
    std::vector<Kept> kept;          // dropped positions whose slots still hold them, ascending
    std::deque<std::pair<int32_t, uint64_t>> drop_order;  // (position, dropped), oldest first
    std::vector<Kept> dropped, merged;  // a step's scratch, kept for their capacity
  };
  void ResetHead(Head& head) const;
  // A slot for a new position: a free one, else that of the position dropped longest ago.
  int32_t TakeSlot(Head& head);
  // Sorted vectors, not hash maps: a step drops and adds hundreds of positions per head, and
  // node allocations cost more than the step's copies save.
  static Kept* FindKept(Head& head, int32_t position);

  int capacity_ = 0;
  uint64_t drops_ = 0;
  std::vector<Head> heads_;
};

}  // namespace specontext
