#include "engine/specontext/slot_map.h"

#include <algorithm>
#include <iterator>
#include <string>

namespace specontext {

int SlotCapacity(int listed, int block_tokens) {
  const int wanted = std::max(listed + listed / 4, 1);
  return (wanted + block_tokens - 1) / block_tokens * block_tokens;
}

int SlotCapacityForLists(const std::vector<std::vector<int32_t>>& lists, int block_tokens) {
  size_t longest = 0;
  for (const auto& list : lists) longest = std::max(longest, list.size());
  return SlotCapacity(static_cast<int>(std::max<size_t>(longest, 2) - 1), block_tokens);
}

SlotMap::SlotMap(int kv_heads, int capacity) : capacity_(capacity), heads_(kv_heads) {
  for (Head& head : heads_) ResetHead(head);
}

void SlotMap::ResetHead(Head& head) const {
  head.positions.clear();
  head.slots.clear();
  head.kept.clear();
  head.drop_order.clear();
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
  for (const Kept& kept : head.kept) {
    if (kept.slot >= 0) out.push_back({kept.position, kept.slot});
  }
  return out;
}

SlotMap::Kept* SlotMap::FindKept(Head& head, int32_t position) {
  auto at = std::lower_bound(head.kept.begin(), head.kept.end(), position,
                             [](const Kept& k, int32_t p) { return k.position < p; });
  return at != head.kept.end() && at->position == position && at->slot >= 0 ? &*at : nullptr;
}

int32_t SlotMap::TakeSlot(Head& head) {
  if (!head.free.empty()) {
    const int32_t slot = head.free.back();
    head.free.pop_back();
    return slot;
  }
  // Free slots run out only while kept positions hold the rest (lists fit the capacity);
  // entries of positions selected again since are stale and skipped.
  while (true) {
    const auto [position, dropped] = head.drop_order.front();
    head.drop_order.pop_front();
    Kept* kept = FindKept(head, position);
    if (kept == nullptr || kept->dropped != dropped) continue;
    const int32_t slot = kept->slot;
    kept->slot = -1;
    return slot;
  }
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
  out->slots.resize(lists.size());
  out->loads.resize(lists.size());
  out->reused = out->loaded = out->recalled = 0;
  out->fresh = std::all_of(heads_.begin(), heads_.end(), [](const Head& head) {
    return head.positions.empty() && head.kept.empty();
  });
  for (size_t h = 0; h < lists.size(); ++h) {
    Head& head = heads_[h];
    const std::span<const int32_t> now(lists[h].data(), lists[h].size() - 1);
    std::vector<int32_t>& slots = out->slots[h];
    std::vector<SlotLoad>& loads = out->loads[h];
    slots.assign(now.size(), -1);
    loads.clear();
    // One merge of the ascending lists: selected positions keep their slots, new ones are
    // looked up among the kept, dropped ones join the kept. The rest take slots afterwards, so
    // every position dropped this step is kept at least until then.
    std::vector<Kept>& dropped = head.dropped;
    dropped.clear();
    size_t i = 0, j = 0, k = 0;
    while (i < now.size() || j < head.positions.size()) {
      if (j == head.positions.size() || (i < now.size() && now[i] < head.positions[j])) {
        while (k < head.kept.size() && head.kept[k].position < now[i]) ++k;
        if (k < head.kept.size() && head.kept[k].position == now[i] && head.kept[k].slot >= 0) {
          slots[i] = head.kept[k].slot;
          head.kept[k].slot = -1;
          ++out->reused;
          ++out->recalled;
        }
        ++i;
      } else if (i == now.size() || head.positions[j] < now[i]) {
        dropped.push_back({head.positions[j], head.slots[j], ++drops_});
        head.drop_order.emplace_back(head.positions[j], drops_);
        ++j;
      } else {
        slots[i++] = head.slots[j++];
        ++out->reused;
      }
    }
    head.merged.clear();
    std::merge(head.kept.begin(), head.kept.end(), dropped.begin(), dropped.end(),
               std::back_inserter(head.merged),
               [](const Kept& a, const Kept& b) { return a.position < b.position; });
    std::erase_if(head.merged, [](const Kept& e) { return e.slot < 0; });
    std::swap(head.kept, head.merged);
    for (size_t n = 0; n < now.size(); ++n) {
      if (slots[n] >= 0) continue;
      slots[n] = TakeSlot(head);
      loads.push_back({now[n], slots[n]});
    }
    // Positions selected again leave stale entries behind; drop them before they pile up.
    if (head.drop_order.size() > 2 * static_cast<size_t>(capacity_)) {
      std::erase_if(head.drop_order, [&](const std::pair<int32_t, uint64_t>& entry) {
        const Kept* found = FindKept(head, entry.first);
        return found == nullptr || found->dropped != entry.second;
      });
    }
    out->loaded += static_cast<int64_t>(loads.size());
    head.positions.assign(now.begin(), now.end());
    head.slots = slots;
  }
  return Status::Ok();
}

}  // namespace specontext
