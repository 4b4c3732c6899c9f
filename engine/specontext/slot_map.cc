#include "engine/specontext/slot_map.h"

#include <algorithm>
#include <string>

namespace specontext {

SlotMap::SlotMap(int kv_heads, int capacity) : capacity_(capacity), heads_(kv_heads) {
  for (Head& head : heads_) ResetHead(head);
}

void SlotMap::ResetHead(Head& head) const {
  head.positions.clear();
  head.slots.clear();
  head.free.resize(capacity_);
  // Popped from the back, so a fresh map fills slots 0, 1, 2, ... in order.
  for (int i = 0; i < capacity_; ++i) head.free[i] = capacity_ - 1 - i;
}

void SlotMap::Clear() {
  for (Head& head : heads_) ResetHead(head);
}

std::vector<SlotLoad> SlotMap::Resident(int kv_head) const {
  const Head& head = heads_[kv_head];
  std::vector<SlotLoad> out(head.positions.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = {head.positions[i], head.slots[i]};
  return out;
}

Status SlotMap::Assign(std::span<const std::vector<int32_t>> lists, SlotAssignment* out) {
  if (static_cast<int>(lists.size()) != kv_heads()) {
    return InvalidArgument("slot map: " + std::to_string(lists.size()) + " lists for " +
                           std::to_string(kv_heads()) + " KV heads");
  }
  for (const std::vector<int32_t>& list : lists) {
    if (list.empty() || static_cast<int64_t>(list.size()) - 1 > capacity_) {
      return InvalidArgument("slot map: a list of " + std::to_string(list.size()) +
                             " positions does not fit " + std::to_string(capacity_) + " slots");
    }
    for (size_t i = 1; i < list.size(); ++i) {
      if (list[i] <= list[i - 1]) return InvalidArgument("slot map: positions not ascending");
    }
  }
  out->slots.assign(lists.size(), {});
  out->loads.assign(lists.size(), {});
  out->reused = out->loaded = 0;
  out->fresh = std::all_of(heads_.begin(), heads_.end(),
                           [](const Head& head) { return head.positions.empty(); });
  for (size_t h = 0; h < lists.size(); ++h) {
    Head& head = heads_[h];
    const std::span<const int32_t> now(lists[h].data(), lists[h].size() - 1);
    std::vector<int32_t>& slots = out->slots[h];
    slots.assign(now.size(), -1);
    // One merge of two ascending lists: kept positions keep their slots, dropped ones free
    // theirs. New positions are marked and take freed slots afterwards, so a slot freed
    // anywhere in the list can be reused.
    size_t i = 0, j = 0;
    while (i < now.size() || j < head.positions.size()) {
      if (j == head.positions.size() || (i < now.size() && now[i] < head.positions[j])) {
        ++i;  // new: assigned below
      } else if (i == now.size() || head.positions[j] < now[i]) {
        head.free.push_back(head.slots[j++]);
      } else {
        slots[i++] = head.slots[j++];
        ++out->reused;
      }
    }
    for (size_t k = 0; k < now.size(); ++k) {
      if (slots[k] >= 0) continue;
      slots[k] = head.free.back();
      head.free.pop_back();
      out->loads[h].push_back({now[k], slots[k]});
    }
    out->loaded += static_cast<int64_t>(out->loads[h].size());
    head.positions.assign(now.begin(), now.end());
    head.slots = slots;
  }
  return Status::Ok();
}

}  // namespace specontext
