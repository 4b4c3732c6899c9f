#include "engine/cuda/elastic_kv.h"

#include <algorithm>
#include <bit>
#include <string>

#include "common/usable_cpus.h"
#include "engine/cuda/cuda_check.h"

namespace specontext::cuda {
namespace {

constexpr int kMaxThreads = 12;  // diffs and gathers; leaves cores to the engine and I/O threads

// Whether the row reads `layer` through GPU slots: a sparse decode row whose copy of that layer
// lives in host memory, past the layers that attend densely (those read the host blocks in
// place).
bool SlotLayer(const SequenceStep& step, int layer, int dense_layers) {
  return layer >= dense_layers && layer < static_cast<int>(step.host_layers.size()) &&
         step.host_layers[layer] != 0;
}

bool Offloads(const SequenceStep& step, int dense_layers) {
  if (step.tokens.size() != 1 || step.sparse_positions.empty() || step.seq_id == 0) return false;
  for (int layer = 0; layer < static_cast<int>(step.host_layers.size()); ++layer) {
    if (SlotLayer(step, layer, dense_layers)) return true;
  }
  return false;
}

}  // namespace

Result<ElasticKv> ElasticKv::Create(const KvLayout& layout, int max_sequences,
                                    size_t slot_bytes_limit) {
  if (max_sequences <= 0 || layout.num_layers <= 0 || layout.num_kv_heads <= 0) {
    return InvalidArgument("elastic KV: needs sequences, layers and KV heads");
  }
  ElasticKv elastic(layout, max_sequences);
  elastic.slot_bytes_limit_ = slot_bytes_limit;
  elastic.pool_ = std::make_unique<cpu::ThreadPool>(std::clamp(UsableCpus() - 1, 1, kMaxThreads));
  return elastic;
}

Result<ElasticKv::SequenceSlots*> ElasticKv::SlotsFor(const SequenceStep& step, int capacity) {
  if (auto found = sequences_.find(step.seq_id);
      found != sequences_.end() && found->second->map.capacity() < capacity) {
    Release(step.seq_id);  // a longer list than before: new slots, copied in whole
  }
  auto& slots = sequences_[step.seq_id];
  if (slots == nullptr) {
    auto made = std::make_unique<SequenceSlots>(layout_.num_kv_heads, capacity);
    made->layers.resize(layout_.num_layers);
    made->loaded.assign(layout_.num_layers, 0);
    made->uploaded.assign(layout_.num_layers, 0);
    const size_t table_bytes = sizeof(std::byte*) * layout_.num_layers *
                               static_cast<size_t>(capacity / layout_.block_tokens);
    SPC_ASSIGN_OR_RETURN(made->table_host, PinnedBuffer::Allocate(table_bytes));
    SPC_ASSIGN_OR_RETURN(made->table, DeviceBuffer::Allocate(table_bytes));
    slots = std::move(made);
  }
  for (int layer = 0; layer < layout_.num_layers; ++layer) {
    if (!SlotLayer(step, layer, dense_layers_)) {
      slots->loaded[layer] = 0;  // back on the GPU; a later offload copies everything again
      continue;
    }
    SPC_RETURN_IF_ERROR(AssignBlocks(*slots, layer, step));
  }
  return slots.get();
}

Status ElasticKv::AssignBlocks(SequenceSlots& slots, int layer, const SequenceStep& step) {
  LayerSlots& mine = slots.layers[layer];
  const size_t count = static_cast<size_t>(slots.map.capacity() / layout_.block_tokens);
  const SlotBlocks* lent =
      static_cast<size_t>(layer) < step.slot_blocks.size() ? &step.slot_blocks[layer] : nullptr;
  if (lent != nullptr && lent->lease != 0 && lent->blocks.size() >= count) {
    if (mine.lease == lent->lease) return Status::Ok();
    Recycle(mine.own);
    mine.blocks.assign(lent->blocks.begin(), lent->blocks.begin() + count);
    mine.lease = lent->lease;
  } else {
    // Blocks lent before may belong to someone else by now: only our own are kept.
    if (mine.own.data() != nullptr) return Status::Ok();
    const size_t bytes = count * layout_.BlockBytes();
    DeviceBuffer own = TakeSpare(spare_, bytes);
    if (own.data() == nullptr) {
      // Only new device memory counts against the limit; spares are held already.
      if (slot_bytes_limit_ > 0 && SlotBytes() + bytes > slot_bytes_limit_) {
        return ResourceExhausted("elastic KV: slots beyond the limit of " +
                                 std::to_string(slot_bytes_limit_) + " bytes");
      }
      SPC_ASSIGN_OR_RETURN(own, DeviceBuffer::Allocate(bytes));
    }
    mine.blocks.resize(count);
    for (size_t b = 0; b < count; ++b) {
      mine.blocks[b] = own.as<std::byte>() + b * layout_.BlockBytes();
    }
    mine.own = std::move(own);
    mine.lease = 0;
  }
  slots.loaded[layer] = 0;
  slots.uploaded[layer] = 0;
  return Status::Ok();
}

void ElasticKv::Recycle(DeviceBuffer& buffer) {
  if (buffer.data() == nullptr) return;
  if (spare_.size() < static_cast<size_t>(layout_.num_layers)) {
    spare_.push_back(std::move(buffer));
  } else {
    buffer = DeviceBuffer();
  }
}

size_t ElasticKv::SlotBytes() const {
  size_t bytes = 0;
  for (const DeviceBuffer& b : spare_) bytes += b.bytes();
  for (const auto& [seq_id, slots] : sequences_) {
    for (const LayerSlots& layer : slots->layers) bytes += layer.own.bytes();
  }
  return bytes;
}

Result<int> ElasticKv::Plan(const BatchStep& batch) {
  plans_.clear();
  active_ = false;
  dense_layers_ = batch.dense_layers;
  int slot_blocks = 0, row = 0;
  for (const SequenceStep& step : batch.sequences) {
    if (step.tokens.size() != 1) continue;
    const int decode_row = row++;
    if (!Offloads(step, dense_layers_)) continue;
    const int capacity = SlotCapacityForLists(step.sparse_positions, layout_.block_tokens);
    // Checked first: SlotsFor may replace the slots an earlier row of the step was given.
    if (std::any_of(plans_.begin(), plans_.end(),
                    [&](const RowPlan& p) { return p.step->seq_id == step.seq_id; })) {
      plans_.clear();
      return InvalidArgument("elastic KV: sequence " + std::to_string(step.seq_id) +
                             " appears twice in one step");
    }
    Result<SequenceSlots*> found = SlotsFor(step, capacity);
    if (!found.ok()) {
      if (found.status().code() != StatusCode::kResourceExhausted) {
        plans_.clear();
        return found.status();
      }
      // No room for its slots: the row attends its host layers in place this step, and its
      // partial slots go back to the spares for rows that fit.
      Release(step.seq_id);
      ++stats_.rows_in_place;
      continue;
    }
    SequenceSlots* slots = *found;
    plans_.push_back({.row = decode_row, .step = &step, .slots = slots});
    slot_blocks = std::max(slot_blocks, slots->map.capacity() / layout_.block_tokens);
  }
  // Each sequence's map is its own, so the diffs run side by side: a row's costs about
  // 0.1 ms at B = 2048, which 32 rows would add up to before every step.
  std::vector<Status> assigned(plans_.size());
  pool_->ParallelFor(static_cast<int64_t>(plans_.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      assigned[p] = plans_[p].slots->map.Assign(plans_[p].step->sparse_positions,
                                                &plans_[p].slots->assignment);
    }
  });
  for (size_t p = 0; p < plans_.size(); ++p) {
    if (!assigned[p].ok()) {
      const uint64_t seq_id = plans_[p].step->seq_id;
      plans_.clear();
      Release(seq_id);
      return assigned[p];
    }
  }
  for (RowPlan& plan : plans_) {
    plan.whole.assign(layout_.num_layers, 0);
    for (int layer = 0; layer < layout_.num_layers; ++layer) {
      if (!SlotLayer(*plan.step, layer, dense_layers_)) continue;
      plan.whole[layer] = !plan.slots->loaded[layer];
      plan.slots->loaded[layer] = 1;
    }
  }
  active_ = !plans_.empty();
  return slot_blocks > 0 ? static_cast<int>(std::bit_ceil(static_cast<unsigned>(slot_blocks))) : 0;
}

Status ElasticKv::Reserve(size_t list_entries) {
  if (list_entries <= list_capacity_ && host_.data() != nullptr) return Status::Ok();
  list_capacity_ = std::max(list_entries, 2 * list_capacity_);
  const size_t bytes =
      sizeof(int32_t) * (static_cast<size_t>(layout_.num_layers) * max_sequences_ + list_capacity_);
  SPC_ASSIGN_OR_RETURN(host_, PinnedBuffer::Allocate(bytes));
  SPC_ASSIGN_OR_RETURN(device_, DeviceBuffer::Allocate(bytes));
  ++generation_;
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
  // Per plan: its jobs [diff.x, diff.x + diff.y) for layers that keep their slots, and
  // [whole.x, ...) for layers that copy their whole selection this step.
  std::vector<int2> diffs, wholes;
  std::vector<int32_t> flags(entries, 0);  // per (layer, decode row): reads its slots
  ++stats_.steps;
  for (const RowPlan& plan : plans_) {
    const auto diff_first = static_cast<int>(jobs_.size());
    for (int h = 0; h < kv_heads; ++h) AppendJobs(h, plan.slots->assignment.loads[h]);
    diffs.push_back({diff_first, static_cast<int>(jobs_.size()) - diff_first});
    int2 whole{0, 0};
    if (std::any_of(plan.whole.begin(), plan.whole.end(), [](uint8_t w) { return w != 0; })) {
      whole.x = static_cast<int>(jobs_.size());
      for (int h = 0; h < kv_heads; ++h) AppendJobs(h, plan.slots->map.Resident(h));
      whole.y = static_cast<int>(jobs_.size()) - whole.x;
    }
    wholes.push_back(whole);
    stats_.positions_reused += plan.slots->assignment.reused;
    stats_.positions_loaded += plan.slots->assignment.loaded;
    if (plan.slots->assignment.fresh)
      stats_.positions_first_loaded += plan.slots->assignment.loaded;
  }
  // Segments in layer order, so each layer's event can be recorded once its copies are queued.
  segments_.clear();
  first_layer_ = layers;
  for (int layer = 0; layer < layers; ++layer) {
    for (size_t p = 0; p < plans_.size(); ++p) {
      const RowPlan& plan = plans_[p];
      if (!SlotLayer(*plan.step, layer, dense_layers_)) continue;
      first_layer_ = std::min(first_layer_, layer);
      flags[static_cast<size_t>(layer) * max_sequences_ + plan.row] = 1;
      const int2 range = plan.whole[layer] ? wholes[p] : diffs[p];
      ++stats_.row_layers;
      stats_.whole_layer_loads += plan.whole[layer];
      stats_.bytes_copied += static_cast<int64_t>(range.y) * 2 * layout_.head_dim * 2;
      SequenceSlots& slots = *plan.slots;
      const std::vector<std::byte*>& blocks = slots.layers[layer].blocks;
      const size_t offset = static_cast<size_t>(layer) * blocks.size();
      if (!slots.uploaded[layer]) {
        // Only new blocks are written: the previous write of this part of the pinned table
        // was read by a step that has finished.
        std::copy(blocks.begin(), blocks.end(), slots.table_host.as<std::byte*>() + offset);
        SPC_CUDA(cudaMemcpyAsync(
            slots.table.as<std::byte*>() + offset, slots.table_host.as<std::byte*>() + offset,
            sizeof(std::byte*) * blocks.size(), cudaMemcpyHostToDevice, stream));
        slots.uploaded[layer] = 1;
      }
      slot_ranges[static_cast<size_t>(layer) * rows + plan.row] = {
          .blocks = reinterpret_cast<void* const*>(slots.table.as<std::byte*>() + offset),
          .count = static_cast<int32_t>(blocks.size())};
      if (range.y == 0) continue;
      segments_.push_back({.layer = layer,
                           .host_blocks = plan.step->block_table[layer].data(),
                           .slot_blocks = blocks.data(),
                           .jobs = jobs_.data() + range.x,
                           .count = range.y});
    }
  }
  const size_t list_entries = static_cast<size_t>(rows) * kv_heads * index_stride;
  SPC_RETURN_IF_ERROR(Reserve(list_entries));
  auto* flags_out = host_.as<int32_t>();
  std::copy(flags.begin(), flags.end(), flags_out);
  int32_t* lists = flags_out + entries;
  const int32_t slot_base = slot_block * layout_.block_tokens;
  for (const RowPlan& plan : plans_) {
    const SequenceStep& step = *plan.step;
    for (int h = 0; h < kv_heads; ++h) {
      int32_t* out = lists + (static_cast<size_t>(plan.row) * kv_heads + h) * index_stride;
      for (const int32_t slot : plan.slots->assignment.slots[h]) *out++ = slot_base + slot;
      *out = step.sparse_positions[h].back();  // the token's own position, in its host block
    }
  }
  SPC_CUDA(cudaMemcpyAsync(device_.data(), host_.data(), sizeof(int32_t) * (entries + list_entries),
                           cudaMemcpyHostToDevice, stream));
  return Status::Ok();
}

Status ElasticKv::Load(std::span<const cudaEvent_t> layer_events, cudaStream_t stream) {
  if (!active_) return Status::Ok();
  if (loader_ == nullptr) {
    SPC_ASSIGN_OR_RETURN(loader_, SlotLoader::Create(layout_, pool_.get()));
  }
  return loader_->Load(segments_, first_layer_, layer_events, stream);
}

ElasticLayerView ElasticKv::View(int layer) const {
  if (!active_) return {};
  const size_t entries = static_cast<size_t>(layout_.num_layers) * max_sequences_;
  return {.slot_rows = device_.as<int32_t>() + static_cast<size_t>(layer) * max_sequences_,
          .slot_lists = device_.as<int32_t>() + entries};
}

void ElasticKv::Release(uint64_t seq_id) {
  auto found = sequences_.find(seq_id);
  if (found == sequences_.end()) return;
  for (LayerSlots& layer : found->second->layers) Recycle(layer.own);
  sequences_.erase(found);
}

void ElasticKv::ReleaseAll() {
  while (!sequences_.empty()) Release(sequences_.begin()->first);
  plans_.clear();
  segments_.clear();
  active_ = false;
}

}  // namespace specontext::cuda
