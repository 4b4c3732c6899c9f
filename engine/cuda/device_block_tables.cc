#include "engine/cuda/device_block_tables.h"

#include <algorithm>
#include <bit>
#include <string>

#include "engine/cuda/cuda_check.h"

namespace specontext::cuda {
namespace {

constexpr int kMinCapacity = 64;  // entries per layer: 1K positions at 16 per block
constexpr size_t kSpareArrays = 8;

// The staging meta section: [runs: layers x sequences][rows: sequences][slots: layers x
// sequences], byte offsets shared by the pinned and the device copy.
struct MetaLayout {
  size_t rows, slots, bytes;
};

MetaLayout MetaFor(int layers, int max_sequences) {
  const size_t pairs = static_cast<size_t>(layers) * max_sequences;
  MetaLayout m;
  m.rows = pairs * sizeof(TableRun);
  m.slots = m.rows + static_cast<size_t>(max_sequences) * sizeof(RowTable);
  m.bytes = m.slots + pairs * sizeof(SlotRange);
  return m;
}

}  // namespace

Result<DeviceBlockTables> DeviceBlockTables::Create(const KvLayout& layout, int max_sequences) {
  if (max_sequences <= 0 || layout.num_layers <= 0) {
    return InvalidArgument("device block tables: needs sequences and layers");
  }
  DeviceBlockTables tables(layout, max_sequences);
  const MetaLayout m = MetaFor(layout.num_layers, max_sequences);
  SPC_ASSIGN_OR_RETURN(tables.meta_, PinnedBuffer::Allocate(m.bytes));
  SPC_ASSIGN_OR_RETURN(tables.device_meta_, DeviceBuffer::Allocate(m.bytes));
  tables.scratch_.resize(max_sequences);
  SPC_RETURN_IF_ERROR(tables.Reserve(static_cast<size_t>(layout.num_layers) * 4096));
  return tables;
}

Status DeviceBlockTables::Reserve(size_t values) {
  if (values * sizeof(void*) <= values_.bytes()) return Status::Ok();
  const size_t entries = std::max(values, 2 * values_.bytes() / sizeof(void*));
  // The old staging holds this step's values already written; they move with it.
  SPC_ASSIGN_OR_RETURN(PinnedBuffer grown, PinnedBuffer::Allocate(entries * sizeof(void*)));
  std::copy_n(values_.as<void*>(), values_used_, grown.as<void*>());
  values_ = std::move(grown);
  device_values_ = DeviceBuffer();
  SPC_ASSIGN_OR_RETURN(device_values_, DeviceBuffer::Allocate(entries * sizeof(void*)));
  return Status::Ok();
}

Status DeviceBlockTables::Prepare(const SequenceStep& step, int used, Table* table) {
  const int layers = layout_.num_layers;
  if (table->capacity < used) {
    const int capacity = std::max<int>(kMinCapacity, std::bit_ceil(static_cast<unsigned>(used)));
    const size_t bytes = sizeof(void*) * layers * static_cast<size_t>(capacity);
    if (table->device.data() != nullptr && spare_.size() < kSpareArrays) {
      spare_.push_back(std::move(table->device));
    }
    table->device = DeviceBuffer();
    SPC_ASSIGN_OR_RETURN(table->device, TakeSpareOrAllocate(spare_, bytes));
    table->capacity = capacity;
    table->known.assign(layers, 0);
  }
  for (int layer = 0; layer < layers; ++layer) {
    const int from = table->known[layer];
    if (from >= used) continue;
    const std::vector<std::byte*>& blocks = step.block_table[layer];
    if (const auto null = std::find(blocks.begin() + from, blocks.begin() + used, nullptr);
        null != blocks.begin() + used) {
      return InvalidArgument("layer " + std::to_string(layer) + " block " +
                             std::to_string(null - blocks.begin()) + " is null");
    }
    SPC_RETURN_IF_ERROR(Reserve(values_used_ + used - from));
    std::copy(blocks.begin() + from, blocks.begin() + used, values_.as<void*>() + values_used_);
    runs_.push_back(
        {.dst = table->device.as<void*>() + static_cast<size_t>(layer) * table->capacity + from,
         .first = static_cast<uint32_t>(values_used_),
         .count = static_cast<uint32_t>(used - from)});
    values_used_ += used - from;
    table->known[layer] = used;
  }
  table->last_step = step_;
  return Status::Ok();
}

Status DeviceBlockTables::Stage(const BatchStep& batch, std::span<const int> order, int rows) {
  if (rows > max_sequences_ || static_cast<int>(order.size()) > rows) {
    return InvalidArgument("device block tables: " + std::to_string(rows) + " rows for " +
                           std::to_string(max_sequences_) + " sequences");
  }
  ++step_;
  rows_ = rows;
  runs_.clear();
  values_used_ = 0;
  const MetaLayout m = MetaFor(layout_.num_layers, max_sequences_);
  auto* row_tables = reinterpret_cast<RowTable*>(meta_.as<std::byte>() + m.rows);
  for (int row = 0; row < rows; ++row) {
    if (row >= static_cast<int>(order.size())) {
      row_tables[row] = {};
      continue;
    }
    const SequenceStep& step = batch.sequences[order[row]];
    const int used = static_cast<int>(
        layout_.BlocksFor(static_cast<long>(step.start_position) + step.tokens.size()));
    const bool vouched = step.seq_id != 0 && step.table_version != 0;
    Table* table = vouched ? &tables_[step.seq_id] : &scratch_[row];
    if (!vouched || table->version != step.table_version) {
      table->version = step.table_version;
      table->known.assign(layout_.num_layers, 0);
    }
    if (Status st = Prepare(step, used, table); !st.ok()) {
      InvalidateAll();
      return st.WithContext("sequence " + std::to_string(order[row]));
    }
    row_tables[row] = {
        .table = table->device.as<void*>(), .layer_stride = table->capacity, .used = used};
  }
  std::fill_n(slot_ranges().begin(), slot_ranges().size(), SlotRange{});
  Evict();
  return Status::Ok();
}

void DeviceBlockTables::Evict() {
  // Callers that never release their sequences must not grow this without bound.
  if (tables_.size() <= 2 * static_cast<size_t>(max_sequences_)) return;
  std::erase_if(tables_, [&](const auto& entry) { return entry.second.last_step != step_; });
}

std::span<SlotRange> DeviceBlockTables::slot_ranges() {
  const MetaLayout m = MetaFor(layout_.num_layers, max_sequences_);
  return {reinterpret_cast<SlotRange*>(meta_.as<std::byte>() + m.slots),
          static_cast<size_t>(layout_.num_layers) * rows_};
}

Status DeviceBlockTables::Assemble(void** out, int stride, int slot_block, cudaStream_t stream) {
  const MetaLayout m = MetaFor(layout_.num_layers, max_sequences_);
  auto* meta = meta_.as<std::byte>();
  auto* device_meta = device_meta_.as<std::byte>();
  if (!runs_.empty()) {
    std::copy(runs_.begin(), runs_.end(), reinterpret_cast<TableRun*>(meta));
    SPC_CUDA(cudaMemcpyAsync(device_values_.data(), values_.data(), sizeof(void*) * values_used_,
                             cudaMemcpyHostToDevice, stream));
    SPC_CUDA(cudaMemcpyAsync(device_meta, meta, sizeof(TableRun) * runs_.size(),
                             cudaMemcpyHostToDevice, stream));
    SPC_RETURN_IF_ERROR(ApplyTableRuns(reinterpret_cast<const TableRun*>(device_meta),
                                       static_cast<int>(runs_.size()), device_values_.as<void*>(),
                                       stream));
    entries_uploaded_ += static_cast<int64_t>(values_used_);
  }
  SPC_CUDA(cudaMemcpyAsync(device_meta + m.rows, meta + m.rows, sizeof(RowTable) * rows_,
                           cudaMemcpyHostToDevice, stream));
  if (slot_block > 0) {
    SPC_CUDA(cudaMemcpyAsync(device_meta + m.slots, meta + m.slots,
                             sizeof(SlotRange) * slot_ranges().size(), cudaMemcpyHostToDevice,
                             stream));
  }
  return AssembleTables(
      {.rows = reinterpret_cast<const RowTable*>(device_meta + m.rows),
       .slots =
           slot_block > 0 ? reinterpret_cast<const SlotRange*>(device_meta + m.slots) : nullptr,
       .out = out,
       .layers = layout_.num_layers,
       .num_rows = rows_,
       .stride = stride,
       .slot_block = slot_block},
      stream);
}

void DeviceBlockTables::Release(uint64_t seq_id) {
  auto found = tables_.find(seq_id);
  if (found == tables_.end()) return;
  if (spare_.size() < kSpareArrays) spare_.push_back(std::move(found->second.device));
  tables_.erase(found);
}

void DeviceBlockTables::InvalidateAll() {
  for (auto& [id, table] : tables_) table.known.assign(layout_.num_layers, 0);
  for (Table& table : scratch_) table.known.assign(layout_.num_layers, 0);
}

}  // namespace specontext::cuda
