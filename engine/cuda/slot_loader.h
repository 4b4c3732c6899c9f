// Elastic loading's copies (elastic_kv.h): the K and V rows of newly selected positions live
// in pinned host memory, 256 bytes each, scattered over the sequence's blocks. Read by GPU
// threads across PCIe they arrive at about 20 GB/s and hold SMs the forward pass needs; so the
// host gathers them, several threads at once, into a pinned staging chunk, the copy engine
// moves each chunk in one transfer at full link speed, and a small kernel writes the rows into
// their slots from device memory. Chunks form a ring, so gathering the next overlaps moving
// the last; after a layer's last chunk its event is recorded, and that layer's attention waits
// on it alone.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "common/status.h"
#include "engine/cpu/thread_pool.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/slot_copy_kernels.h"
#include "kv_store/kv_layout.h"

namespace specontext::cuda {

// The copies of one (row, layer): jobs into the row's slot blocks of that layer.
struct SlotSegment {
  int layer = 0;
  std::byte* const* host_blocks = nullptr;  // the row's blocks of the layer, in host memory
  std::byte* const* slot_blocks = nullptr;  // the row's slot blocks of the layer, on the device
  const SlotCopyJob* jobs = nullptr;
  int count = 0;
};

class SlotLoader {
 public:
  // `pool` gathers (it must outlive the loader).
  static Result<std::unique_ptr<SlotLoader>> Create(const KvLayout& layout, cpu::ThreadPool* pool);
  ~SlotLoader();
  SlotLoader(const SlotLoader&) = delete;
  SlotLoader& operator=(const SlotLoader&) = delete;

  // Copies every segment (ordered by layer) on `stream` and records layer_events[l] for each
  // layer l in [first_layer, layer_events.size()) once its copies are queued; a layer without
  // copies gets its event at once. Returns after the last chunk is queued; the host may reuse
  // a chunk only after its transfer, so this waits on the link when the ring is full.
  Status Load(std::span<const SlotSegment> segments, int first_layer,
              std::span<const cudaEvent_t> layer_events, cudaStream_t stream);

 private:
  // A run of one segment's jobs inside a chunk.
  struct Piece {
    int segment = 0;
    int first_job = 0;
    int count = 0;
    int offset = 0;  // first copy in the chunk
  };

  SlotLoader(const KvLayout& layout, cpu::ThreadPool* pool);
  Status Allocate();
  // Gathers one chunk's rows into host staging slot `ring` (parallel over copies).
  void Gather(std::span<const SlotSegment> segments, std::span<const Piece> pieces, int copies,
              int ring);
  Status Send(int copies, int ring, cudaStream_t stream);

  KvLayout layout_;
  size_t row_bytes_ = 0;
  cpu::ThreadPool* pool_;
  // Per ring slot: [copies][destination pointer] then [copies][K row, V row], pinned and on
  // the device, and the event after its transfer.
  std::vector<PinnedBuffer> host_;
  std::vector<DeviceBuffer> device_;
  std::vector<cudaEvent_t> sent_;
  std::vector<bool> in_flight_;
};

}  // namespace specontext::cuda
