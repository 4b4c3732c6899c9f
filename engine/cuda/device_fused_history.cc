#include "engine/cuda/device_fused_history.h"

#include <algorithm>
#include <string>

#include "engine/cuda/cuda_check.h"

namespace specontext::cuda {
namespace {

// A decode step keeps one state; below this many rows a buffer is never shrunk.
constexpr int64_t kMinRows = 64;

}  // namespace

Status DeviceFusedHistory::Observe(int64_t start, const uint16_t* states, int64_t rows,
                                   cudaMemcpyKind kind, cudaStream_t stream) {
  if (rows <= 0) return Status::Ok();
  if (start < base_ || start > end()) {
    base_ = start;
    count_ = 0;
    offset_ = 0;
  } else {
    Truncate(start);
  }
  const int64_t needed = count_ + rows;
  if (offset_ + needed > Capacity()) {
    if (needed <= Capacity() && count_ <= offset_) {
      // Room at the front, and the kept states do not overlap where they go.
      if (count_ > 0) {
        SPC_CUDA(cudaMemcpyAsync(Row(0), Row(offset_), count_ * RowBytes(),
                                 cudaMemcpyDeviceToDevice, stream));
      }
      offset_ = 0;
    } else {
      SPC_RETURN_IF_ERROR(Reallocate(std::max(needed + needed / 2, kMinRows), stream));
    }
  }
  SPC_CUDA(cudaMemcpyAsync(Row(offset_ + count_), states, rows * RowBytes(), kind, stream));
  count_ += rows;
  return Status::Ok();
}

void DeviceFusedHistory::Truncate(int64_t end_position) {
  if (end_position >= end()) return;
  count_ = std::max<int64_t>(0, end_position - base_);
}

Status DeviceFusedHistory::DropBefore(int64_t first, cudaStream_t stream) {
  const int64_t drop = std::min(first, end()) - base_;
  if (drop > 0) {
    base_ += drop;
    offset_ += drop;
    count_ -= drop;
  }
  if (count_ == 0) offset_ = 0;
  if (Capacity() > kMinRows && count_ * 8 < Capacity()) {
    return Reallocate(std::max(2 * count_, kMinRows), stream);
  }
  return Status::Ok();
}

bool DeviceFusedHistory::Knows(int64_t first, int64_t count) const {
  return std::max(first - 1, base_) < std::min(first + count - 1, end());
}

Status DeviceFusedHistory::CopyState(int64_t position, void* dst, cudaMemcpyKind kind,
                                     cudaStream_t stream) const {
  if (!Has(position))
    return Internal("fused history: no state for position " + std::to_string(position));
  SPC_CUDA(cudaMemcpyAsync(dst, Row(offset_ + position - base_), RowBytes(), kind, stream));
  return Status::Ok();
}

Status DeviceFusedHistory::WriteInputs(int64_t first, int64_t count, uint16_t* dst,
                                       cudaStream_t stream) const {
  const int64_t lo = std::max(first - 1, base_), hi = std::min(first + count - 1, end());
  // Rows [0, known_from) and [known_to, count) of dst have no state.
  const int64_t known_from = lo < hi ? lo + 1 - first : count;
  const int64_t known_to = lo < hi ? hi + 1 - first : count;
  auto* out = reinterpret_cast<std::byte*>(dst);
  if (known_from > 0) SPC_CUDA(cudaMemsetAsync(out, 0, known_from * RowBytes(), stream));
  if (known_to < count) {
    SPC_CUDA(
        cudaMemsetAsync(out + known_to * RowBytes(), 0, (count - known_to) * RowBytes(), stream));
  }
  if (lo < hi) {
    SPC_CUDA(cudaMemcpyAsync(out + known_from * RowBytes(), Row(offset_ + lo - base_),
                             (hi - lo) * RowBytes(), cudaMemcpyDeviceToDevice, stream));
  }
  return Status::Ok();
}

Status DeviceFusedHistory::Reallocate(int64_t capacity, cudaStream_t stream) {
  SPC_ASSIGN_OR_RETURN(DeviceBuffer moved, DeviceBuffer::Allocate(capacity * RowBytes()));
  if (count_ > 0) {
    SPC_CUDA(cudaMemcpyAsync(moved.data(), Row(offset_), count_ * RowBytes(),
                             cudaMemcpyDeviceToDevice, stream));
  }
  // Work queued earlier may still read the old buffer.
  SPC_CUDA(cudaStreamSynchronize(stream));
  rows_ = std::move(moved);
  offset_ = 0;
  return Status::Ok();
}

}  // namespace specontext::cuda
