#include "engine/cuda/elastic_kv.h"

#include <algorithm>
#include <bit>
#include <string>

#include "engine/cuda/cuda_check.h"

namespace specontext::cuda {
namespace {

bool Offloads(const SequenceStep& step) {
  return step.tokens.size() == 1 && !step.sparse_positions.empty() && step.seq_id != 0 &&
         std::any_of(step.host_layers.begin(), step.host_layers.end(),
                     [](uint8_t h) { return h != 0; });
}

bool HostLayer(const SequenceStep& step, int layer) {
  return layer < static_cast<int>(step.host_layers.size()) && step.host_layers[layer] != 0;
}

}  // namespace

Result<ElasticKv> ElasticKv::Create(const KvLayout& layout, int max_sequences) {
  if (max_sequences <= 0 || layout.num_layers <= 0 || layout.num_kv_heads <= 0) {
    return InvalidArgument("elastic KV: needs sequences, layers and KV heads");
  }
  return ElasticKv(layout, max_sequences);
}

Result<ElasticKv::SequenceSlots*> ElasticKv::SlotsFor(const SequenceStep& step, int capacity) {
  if (auto found = sequences_.find(step.seq_id);
      found != sequences_.end() && found->second->map.capacity() < capacity) {
    Release(step.seq_id);  // a longer list than before: new slots, copied in whole
  }
  auto& slots = sequences_[step.seq_id];
  if (slots == nullptr) {
    slots = std::make_unique<SequenceSlots>(layout_.num_kv_heads, capacity);
    slots->layer_blocks.resize(layout_.num_layers);
    slots->loaded.assign(layout_.num_layers, 0);
  }
  const size_t bytes =
      static_cast<size_t>(slots->map.capacity() / layout_.block_tokens) * layout_.BlockBytes();
  for (int layer = 0; layer < layout_.num_layers; ++layer) {
    if (!HostLayer(step, layer)) {
      slots->loaded[layer] = 0;  // back on the GPU; a later offload copies everything again
      continue;
    }
    DeviceBuffer& blocks = slots->layer_blocks[layer];
    if (blocks.data() != nullptr) continue;
    auto spare = std::find_if(spare_.begin(), spare_.end(),
                              [&](const DeviceBuffer& b) { return b.bytes() == bytes; });
    if (spare != spare_.end()) {
      blocks = std::move(*spare);
      spare_.erase(spare);
    } else {
      SPC_ASSIGN_OR_RETURN(blocks, DeviceBuffer::Allocate(bytes));
    }
  }
  return slots.get();
}

Result<int> ElasticKv::Plan(const BatchStep& batch) {
  plans_.clear();
  active_ = false;
  int slot_blocks = 0, row = 0;
  for (const SequenceStep& step : batch.sequences) {
    if (step.tokens.size() != 1) continue;
    const int decode_row = row++;
    if (!Offloads(step)) continue;
    size_t longest = 0;
    for (const auto& list : step.sparse_positions) longest = std::max(longest, list.size());
    const int capacity = std::max<int>(
        layout_.block_tokens, static_cast<int>(std::bit_ceil(std::max<size_t>(longest, 2) - 1)));
    SPC_ASSIGN_OR_RETURN(SequenceSlots * slots, SlotsFor(step, capacity));
    RowPlan plan{.row = decode_row, .step = &step, .slots = slots};
    if (Status st = slots->map.Assign(step.sparse_positions, &plan.assignment); !st.ok()) {
      Release(step.seq_id);
      return st;
    }
    plan.whole.assign(layout_.num_layers, 0);
    for (int layer = 0; layer < layout_.num_layers; ++layer) {
      if (!HostLayer(step, layer)) continue;
      plan.whole[layer] = !slots->loaded[layer];
      slots->loaded[layer] = 1;
    }
    slot_blocks = std::max(slot_blocks, slots->map.capacity() / layout_.block_tokens);
    plans_.push_back(std::move(plan));
  }
  active_ = !plans_.empty();
  return slot_blocks;
}

Status ElasticKv::Reserve(size_t list_entries, size_t jobs) {
  const size_t head = static_cast<size_t>(layout_.num_layers) * max_sequences_ * 3;
  if (list_entries > list_capacity_ || host_.data() == nullptr) {
    list_capacity_ = std::max(list_entries, 2 * list_capacity_);
    const size_t bytes = sizeof(int32_t) * (head + list_capacity_);
    SPC_ASSIGN_OR_RETURN(host_, PinnedBuffer::Allocate(bytes));
    SPC_ASSIGN_OR_RETURN(device_, DeviceBuffer::Allocate(bytes));
    ++generation_;
  }
  if (jobs > job_capacity_ || host_jobs_.data() == nullptr) {
    job_capacity_ = std::max<size_t>({jobs, 2 * job_capacity_, 1024});
    SPC_ASSIGN_OR_RETURN(host_jobs_, PinnedBuffer::Allocate(sizeof(SlotCopyJob) * job_capacity_));
    SPC_ASSIGN_OR_RETURN(device_jobs_, DeviceBuffer::Allocate(sizeof(SlotCopyJob) * job_capacity_));
    ++generation_;
  }
  return Status::Ok();
}

void ElasticKv::AppendJobs(int kv_head, const std::vector<SlotLoad>& loads) {
  for (const SlotLoad& load : loads) jobs_.push_back({load.position, kv_head, load.slot});
}

Status ElasticKv::Fill(std::span<SlotRange> slot_ranges, int rows, int slot_block, int index_stride,
                       cudaStream_t stream) {
  if (!active_) return Status::Ok();
  const int layers = layout_.num_layers, kv_heads = layout_.num_kv_heads;
  const size_t entries = static_cast<size_t>(layers) * max_sequences_;
  jobs_.clear();
  // Ranges per (layer, decode row); rows without slots keep {0, 0} and a zero flag.
  std::vector<int2> ranges(entries, int2{0, 0});
  std::vector<int32_t> flags(entries, 0);
  ++stats_.steps;
  for (const RowPlan& plan : plans_) {
    const SequenceStep& step = *plan.step;
    const auto diff_first = static_cast<int>(jobs_.size());
    for (int h = 0; h < kv_heads; ++h) AppendJobs(h, plan.assignment.loads[h]);
    const int2 diff{diff_first, static_cast<int>(jobs_.size()) - diff_first};
    int2 whole{0, 0};
    if (std::any_of(plan.whole.begin(), plan.whole.end(), [](uint8_t w) { return w != 0; })) {
      whole.x = static_cast<int>(jobs_.size());
      for (int h = 0; h < kv_heads; ++h) AppendJobs(h, plan.slots->map.Resident(h));
      whole.y = static_cast<int>(jobs_.size()) - whole.x;
    }
    stats_.positions_reused += plan.assignment.reused;
    stats_.positions_loaded += plan.assignment.loaded;
    if (plan.assignment.fresh) stats_.positions_first_loaded += plan.assignment.loaded;
    for (int layer = 0; layer < layers; ++layer) {
      if (!HostLayer(step, layer)) continue;
      const size_t at = static_cast<size_t>(layer) * max_sequences_ + plan.row;
      flags[at] = 1;
      ranges[at] = plan.whole[layer] ? whole : diff;
      ++stats_.row_layers;
      stats_.whole_layer_loads += plan.whole[layer];
      stats_.bytes_copied += static_cast<int64_t>(ranges[at].y) * 2 * layout_.head_dim * 2;
      slot_ranges[static_cast<size_t>(layer) * rows + plan.row] = {
          .first = plan.slots->layer_blocks[layer].as<std::byte>(),
          .count = plan.slots->map.capacity() / layout_.block_tokens};
    }
  }
  const size_t list_entries = static_cast<size_t>(rows) * kv_heads * index_stride;
  SPC_RETURN_IF_ERROR(Reserve(list_entries, jobs_.size()));
  auto* flags_out = host_.as<int32_t>();
  std::copy(flags.begin(), flags.end(), flags_out);
  std::copy(ranges.begin(), ranges.end(), reinterpret_cast<int2*>(flags_out + entries));
  int32_t* lists = flags_out + 3 * entries;
  const int32_t slot_base = slot_block * layout_.block_tokens;
  for (const RowPlan& plan : plans_) {
    const SequenceStep& step = *plan.step;
    for (int h = 0; h < kv_heads; ++h) {
      int32_t* out = lists + (static_cast<size_t>(plan.row) * kv_heads + h) * index_stride;
      for (const int32_t slot : plan.assignment.slots[h]) *out++ = slot_base + slot;
      *out = step.sparse_positions[h].back();  // the token's own position, in its host block
    }
  }
  std::copy(jobs_.begin(), jobs_.end(), host_jobs_.as<SlotCopyJob>());
  SPC_CUDA(cudaMemcpyAsync(device_.data(), host_.data(),
                           sizeof(int32_t) * (3 * entries + list_entries), cudaMemcpyHostToDevice,
                           stream));
  if (!jobs_.empty()) {
    SPC_CUDA(cudaMemcpyAsync(device_jobs_.data(), host_jobs_.data(),
                             sizeof(SlotCopyJob) * jobs_.size(), cudaMemcpyHostToDevice, stream));
  }
  return Status::Ok();
}

Status ElasticKv::Launch(int layer, const PagedKv& kv, int rows, int slot_block,
                         cudaStream_t stream) const {
  if (!active_) return Status::Ok();
  const auto* ranges = reinterpret_cast<const int2*>(
      device_.as<int32_t>() + static_cast<size_t>(layout_.num_layers) * max_sequences_);
  return CopyToSlots({.kv = kv,
                      .rows = rows,
                      .slot_block = slot_block,
                      .jobs = device_jobs_.as<SlotCopyJob>(),
                      .ranges = ranges + static_cast<size_t>(layer) * max_sequences_},
                     stream);
}

ElasticLayerView ElasticKv::View(int layer) const {
  if (!active_) return {};
  const size_t entries = static_cast<size_t>(layout_.num_layers) * max_sequences_;
  return {.slot_rows = device_.as<int32_t>() + static_cast<size_t>(layer) * max_sequences_,
          .slot_lists = device_.as<int32_t>() + 3 * entries};
}

void ElasticKv::Release(uint64_t seq_id) {
  auto found = sequences_.find(seq_id);
  if (found == sequences_.end()) return;
  // A sequence's worth of layers is kept for the next one; more goes back to the device.
  for (DeviceBuffer& blocks : found->second->layer_blocks) {
    if (blocks.data() != nullptr && spare_.size() < static_cast<size_t>(layout_.num_layers)) {
      spare_.push_back(std::move(blocks));
    }
  }
  sequences_.erase(found);
}

void ElasticKv::ReleaseAll() {
  while (!sequences_.empty()) Release(sequences_.begin()->first);
  plans_.clear();
  active_ = false;
}

}  // namespace specontext::cuda
