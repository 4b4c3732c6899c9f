// Elastic loading (SpeContext): a decode row attending sparsely to a layer whose KV lives in
// host memory reads GPU slot copies of its selected positions instead of reading them over
// PCIe. Each step, the positions newly selected (S_now − S_last, per KV head; SlotMap) are
// copied into the slots the dropped ones freed (SlotLoader: gathered on the host, one transfer
// per chunk); each layer's attention waits on its own layer's event only. A layer that has just
// moved to host memory copies its whole selection once. The token's own position is written
// by the step into the host block and read from there.
//
// The attention sees slots as positions past the row's own blocks: the slot blocks take
// block-table entries [slot_block, slot_block + capacity / block_tokens) of the row, and the
// row's lists for offloaded layers name slot_block * block_tokens + slot.
//
// The slot blocks are those the KV store lends the layer (SequenceStep::slot_blocks: blocks of
// its GPU pool, which the memory manager counts); a layer with none lent gets blocks of the
// runner's own, within slot_bytes_limit.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "common/status.h"
#include "engine/batch.h"
#include "engine/cuda/block_table_kernels.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/slot_loader.h"
#include "engine/model_runner.h"
#include "engine/specontext/slot_map.h"
#include "kv_store/kv_layout.h"

namespace specontext::cuda {

// What the attention reads for one layer (device memory, fixed addresses between Prepare calls
// that keep generation()).
struct ElasticLayerView {
  const int32_t* slot_rows = nullptr;   // [decode rows]: nonzero where the row reads its slots
  const int32_t* slot_lists = nullptr;  // [decode rows][KV heads][index_stride]
};

class ElasticKv {
 public:
  ElasticKv() = default;
  // slot_bytes_limit: device memory the runner's own slots may hold (0: no limit but the
  // device's); lent blocks do not count.
  static Result<ElasticKv> Create(const KvLayout& layout, int max_sequences,
                                  size_t slot_bytes_limit = 0);

  // Host side, before the step's tables are packed: assigns slots for every sparse decode row
  // with offloaded layers and allocates slot blocks as needed. Returns the block-table entries
  // the slots need past the rows' own blocks (0: no elastic row; the step runs as before), a
  // power of two, so graph shapes repeat.
  Result<int> Plan(const BatchStep& batch);
  // Names each (layer, decode row)'s slot blocks in `slot_ranges` ([layer][rows], the decode
  // rows first in the batch's order; DeviceBlockTables places them in the step's tables from
  // entry slot_block on), writes the slot lists, then uploads lists and jobs. The batch must be
  // the one Plan saw.
  Status Fill(std::span<SlotRange> slot_ranges, int rows, int slot_block, int index_stride,
              cudaStream_t stream);
  // The first layer any row reads through slots (num_layers when none): layers below it can
  // run before the copies are queued.
  int first_layer() const { return active_ ? first_layer_ : layout_.num_layers; }
  // Queues the step's copies on `stream`, recording layer_events[l] for every layer from
  // first_layer() on once its copies are queued. Host work: call it while the GPU runs the
  // layers below first_layer().
  Status Load(std::span<const cudaEvent_t> layer_events, cudaStream_t stream);
  ElasticLayerView View(int layer) const;
  bool active() const { return active_; }
  // Changes whenever the device arrays move (graphs that read them must be dropped).
  int generation() const { return generation_; }

  // Drops a sequence's slots (it left, or the step that planned them failed).
  void Release(uint64_t seq_id);
  void ReleaseAll();
  const ElasticLoadStats& stats() const { return stats_; }

 private:
  // One layer's slot blocks: lent (lease != 0) or the runner's own (`own` holds them).
  struct LayerSlots {
    std::vector<std::byte*> blocks;  // capacity / block_tokens
    uint64_t lease = 0;
    DeviceBuffer own;
  };
  struct SequenceSlots {
    SequenceSlots(int kv_heads, int capacity) : map(kv_heads, capacity) {}
    SlotMap map;
    std::vector<LayerSlots> layers;  // empty blocks where never offloaded
    std::vector<uint8_t> loaded;     // per layer: its slots hold the map's positions
    std::vector<uint8_t> uploaded;   // per layer: `table` names its blocks
    // [layers][capacity / block_tokens] block pointers, pinned and on the device: what the table
    // assembly reads (SlotRange::blocks).
    PinnedBuffer table_host;
    DeviceBuffer table;
    SlotAssignment assignment;  // the latest step's; kept so its vectors are reused
  };
  // One decode row of the step that runs elastic.
  struct RowPlan {
    int row = 0;                         // decode row (the batch's order among one-token sequences)
    const SequenceStep* step = nullptr;  // in the batch Plan saw, which Fill gets again
    SequenceSlots* slots = nullptr;
    std::vector<uint8_t> whole;  // per layer: copies its whole selection this step
  };

  ElasticKv(const KvLayout& layout, int max_sequences)
      : layout_(layout), max_sequences_(max_sequences) {}
  // ResourceExhausted when the slots fit neither the limit nor the device.
  Result<SequenceSlots*> SlotsFor(const SequenceStep& step, int capacity);
  // Gives `layer` the blocks the step lends it, else keeps or finds blocks of the runner's own;
  // new blocks are copied into whole.
  Status AssignBlocks(SequenceSlots& slots, int layer, const SequenceStep& step);
  // Keeps a freed buffer of the runner's own for the next sequence (a sequence's worth of
  // layers), or frees it.
  void Recycle(DeviceBuffer& buffer);
  // Device bytes held by every sequence's slots and the spares.
  size_t SlotBytes() const;
  Status Reserve(size_t list_entries);
  void AppendJobs(int kv_head, const std::vector<SlotLoad>& loads);

  KvLayout layout_;
  int max_sequences_ = 0;
  size_t slot_bytes_limit_ = 0;
  std::map<uint64_t, std::unique_ptr<SequenceSlots>> sequences_;
  std::vector<DeviceBuffer> spare_;  // freed slot blocks of one capacity, reused first
  std::vector<RowPlan> plans_;
  bool active_ = false;
  int dense_layers_ = 0;  // the planned batch's BatchStep::dense_layers

  // Staging: [flags: layers x max_sequences][lists], mirrored on the device.
  PinnedBuffer host_;
  DeviceBuffer device_;
  size_t list_capacity_ = 0;
  std::vector<SlotCopyJob> jobs_;
  std::vector<SlotSegment> segments_;  // this step's copies, in layer order
  int first_layer_ = 0;
  std::unique_ptr<cpu::ThreadPool> pool_;  // the diffs of a step's rows, and the gathers
  std::unique_ptr<SlotLoader> loader_;     // made at the first copy
  int generation_ = 0;
  ElasticLoadStats stats_;
};

}  // namespace specontext::cuda
