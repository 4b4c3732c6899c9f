// One sequence's fused target hidden states (the EAGLE-3 head's hidden input) kept on the GPU in
// BF16, with FusedHistory's rules (engine/specontext/fused_history.h): the head's input at
// position t is the state of t - 1, so a prefill chunk's own positions are projected at the
// sequence's next step. Keeping them on the device spares the round trip through the host that
// cost 0.13 ms per prompt token on the 8B shape (docs/performance.md). All copies are queued on
// the caller's stream, the runner's, so they are ordered with the steps that write and read them.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"
#include "engine/cuda/device_buffer.h"
#include "engine/specontext/fused_history.h"

namespace specontext::cuda {

class DeviceFusedHistory {
 public:
  explicit DeviceFusedHistory(int width) : width_(width) {}

  // States of positions [start, start + rows), `rows` rows of width BF16 values at `states`
  // (device memory, or host memory with kind cudaMemcpyHostToDevice). Overlapping or older
  // positions are replaced (a recompute); a gap (an adopted prefix) starts the history afresh.
  Status Observe(int64_t start, const uint16_t* states, int64_t rows, cudaMemcpyKind kind,
                 cudaStream_t stream);
  // Forgets positions >= end (a recompute from there).
  void Truncate(int64_t end);
  // Frees positions < first, and gives back most of the memory a prefill chunk took once little
  // of it is kept.
  Status DropBefore(int64_t first, cudaStream_t stream);
  // Whether the head's input for positions [first, first + count) reads any known state.
  bool Knows(int64_t first, int64_t count) const;
  // How many of those inputs are unknown (position 0 reads none: its input is zeros by rule).
  int64_t UnknownInputs(int64_t first, int64_t count) const {
    return CountUnknownInputs(first, count, base_, end());
  }
  bool KnowsAll(int64_t first, int64_t count) const { return UnknownInputs(first, count) == 0; }
  bool Has(int64_t position) const { return position >= base_ && position < end(); }
  // The state of `position` (Has) into `dst`, one row.
  Status CopyState(int64_t position, void* dst, cudaMemcpyKind kind, cudaStream_t stream) const;
  // The head's input for positions [first, first + count) into `dst` (device, count rows): row i
  // is the state of position first + i - 1, zeros where that state is unknown.
  Status WriteInputs(int64_t first, int64_t count, uint16_t* dst, cudaStream_t stream) const;

 private:
  int64_t end() const { return base_ + count_; }
  size_t RowBytes() const { return size_t{2} * static_cast<size_t>(width_); }
  int64_t Capacity() const { return static_cast<int64_t>(rows_.bytes() / RowBytes()); }
  uint16_t* Row(int64_t buffer_row) const {
    return rows_.as<uint16_t>() + static_cast<size_t>(buffer_row) * width_;
  }
  // Moves the kept states into a buffer of `capacity` rows, at its start.
  Status Reallocate(int64_t capacity, cudaStream_t stream);

  int width_;
  int64_t base_ = 0;    // position of the first kept state
  int64_t count_ = 0;   // states kept
  int64_t offset_ = 0;  // buffer row holding position base_
  DeviceBuffer rows_;
};

}  // namespace specontext::cuda
