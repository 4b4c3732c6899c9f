// Owning, move-only device and pinned host allocations.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace specontext::cuda {

// Where an Allocation's memory comes from.
struct DeviceMemory {
  static cudaError_t Alloc(void** ptr, size_t bytes, unsigned /*flags*/) {
    return cudaMalloc(ptr, bytes);
  }
  static void Free(void* ptr) { cudaFree(ptr); }
  static constexpr const char* kCall = "cudaMalloc";
};
struct PinnedHostMemory {  // staging for host-to-device copies, or mapped for in-place reads
  static cudaError_t Alloc(void** ptr, size_t bytes, unsigned flags) {
    return cudaHostAlloc(ptr, bytes, flags);
  }
  static void Free(void* ptr) { cudaFreeHost(ptr); }
  static constexpr const char* kCall = "cudaHostAlloc";
};

template <typename Memory>
class Allocation {
 public:
  Allocation() = default;
  ~Allocation() { Reset(); }
  Allocation(Allocation&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  Allocation& operator=(Allocation&& other) noexcept {
    if (this != &other) {
      Reset();
      ptr_ = std::exchange(other.ptr_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  Allocation(const Allocation&) = delete;
  Allocation& operator=(const Allocation&) = delete;

  // flags: cudaHostAlloc's for pinned memory (cudaHostAllocMapped for kernels that read it in
  // place); ignored for device memory.
  static Result<Allocation> Allocate(size_t bytes, unsigned flags = 0) {
    Allocation buffer;
    // Spelled out: nvcc does not move a local into a converting return.
    if (bytes == 0) return Result<Allocation>(std::move(buffer));
    const cudaError_t err = Memory::Alloc(&buffer.ptr_, bytes, flags);
    if (err != cudaSuccess) {
      cudaGetLastError();
      buffer.ptr_ = nullptr;
      return ResourceExhausted(std::string(Memory::kCall) + " of " + std::to_string(bytes) +
                               " bytes failed: " + cudaGetErrorString(err));
    }
    buffer.bytes_ = bytes;
    return Result<Allocation>(std::move(buffer));
  }

  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void Reset() {
    if (ptr_ != nullptr) Memory::Free(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

using DeviceBuffer = Allocation<DeviceMemory>;
using PinnedBuffer = Allocation<PinnedHostMemory>;

// The buffer of exactly `bytes` taken out of `spares`; an empty one when `spares` has none.
inline DeviceBuffer TakeSpare(std::vector<DeviceBuffer>& spares, size_t bytes) {
  for (auto it = spares.begin(); it != spares.end(); ++it) {
    if (it->bytes() != bytes) continue;
    DeviceBuffer buffer = std::move(*it);
    spares.erase(it);
    return buffer;
  }
  return DeviceBuffer();
}

// A buffer of exactly `bytes`: a spare when there is one (device allocations synchronise and
// cost more than a step's worth of bookkeeping), else a new one.
inline Result<DeviceBuffer> TakeSpareOrAllocate(std::vector<DeviceBuffer>& spares, size_t bytes) {
  DeviceBuffer spare = TakeSpare(spares, bytes);
  if (spare.data() != nullptr) return Result<DeviceBuffer>(std::move(spare));
  return DeviceBuffer::Allocate(bytes);
}

}  // namespace specontext::cuda
