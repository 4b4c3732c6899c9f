// Block tables that stay on the device between steps. A sequence that names itself (seq_id) and
// vouches for its table (SequenceStep::table_version) keeps one device array of its blocks per
// layer; a step uploads only the entries added since its previous step, and the step's packed
// tables are assembled on the device (block_table_kernels.h). Without the promise a row's whole
// table is uploaded, as for every row before. At 16 sequences of 32K positions this replaces
// 9 MB packed and copied per step by a few hundred bytes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "common/status.h"
#include "engine/batch.h"
#include "engine/cuda/block_table_kernels.h"
#include "engine/cuda/device_buffer.h"
#include "kv_store/kv_layout.h"

namespace specontext::cuda {

class DeviceBlockTables {
 public:
  DeviceBlockTables() = default;
  static Result<DeviceBlockTables> Create(const KvLayout& layout, int max_sequences);

  // Host side: brings the device copy of every packed sequence's table up to date. `order` maps
  // a packed row to its sequence in the batch; rows past it up to `rows` are padding (no
  // blocks). A null entry among those read is an error, and the step must not run.
  Status Stage(const BatchStep& batch, std::span<const int> order, int rows);
  // Elastic loading's slot blocks per (layer, packed row) of the staged step, all empty after
  // Stage.
  std::span<SlotRange> slot_ranges();
  // Device side, on `stream`: the staged entries, then the step's tables into
  // out[layer][rows][stride] with slot blocks from entry slot_block on (0: none).
  Status Assemble(void** out, int stride, int slot_block, cudaStream_t stream);

  void Release(uint64_t seq_id);
  // After a failed step: staged entries may never have reached the device.
  void InvalidateAll();
  // Entries copied to the device so far (tests read it).
  int64_t entries_uploaded() const { return entries_uploaded_; }

 private:
  struct Table {
    uint64_t version = 0;
    int capacity = 0;        // entries per layer
    std::vector<int> known;  // per layer: entries already on the device
    DeviceBuffer device;     // [layer][capacity]
    int64_t last_step = 0;
  };

  DeviceBlockTables(const KvLayout& layout, int max_sequences)
      : layout_(layout), max_sequences_(max_sequences) {}
  Status Reserve(size_t values);
  Status Prepare(const SequenceStep& step, int used, Table* table);
  void Evict();

  KvLayout layout_;
  int max_sequences_ = 0;
  std::map<uint64_t, Table> tables_;
  std::vector<Table> scratch_;       // per packed row, for rows without the promise
  std::vector<DeviceBuffer> spare_;  // arrays of released tables, reused by size
  int64_t step_ = 0;
  int rows_ = 0;

  // Staging, mirrored on the device: values, and [runs][rows][slot ranges].
  std::vector<TableRun> runs_;
  size_t values_used_ = 0;
  PinnedBuffer values_, meta_;
  DeviceBuffer device_values_, device_meta_;
  int64_t entries_uploaded_ = 0;
};

}  // namespace specontext::cuda
