#include "kv_store/tier_memory.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#ifdef SPECONTEXT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace specontext {
namespace {

size_t RoundUp(size_t value, size_t to) { return (value + to - 1) / to * to; }

}  // namespace

bool GpuAvailable() {
#ifdef SPECONTEXT_HAVE_CUDA
  // Probed once: the answer cannot change while the process runs.
  static const bool available = [] {
    int count = 0;
    const bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
    cudaGetLastError();
    return ok;
  }();
  return available;
#else
  return false;
#endif
}

TierMemory::~TierMemory() { Reset(); }

TierMemory::TierMemory(TierMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      origin_(std::exchange(other.origin_, Origin::kNone)) {}

TierMemory& TierMemory::operator=(TierMemory&& other) noexcept {
  if (this != &other) {
    Reset();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    origin_ = std::exchange(other.origin_, Origin::kNone);
  }
  return *this;
}

Result<TierMemory> TierMemory::AllocateAligned(size_t bytes, const std::string& what) {
  TierMemory memory;
  void* ptr = std::aligned_alloc(kAlignment, RoundUp(bytes, kAlignment));
  if (ptr == nullptr) return ResourceExhausted("aligned_alloc of " + what + " failed");
  // Touch every page now so capacity problems surface at start-up, not mid-request.
  std::memset(ptr, 0, bytes);
  memory.data_ = static_cast<std::byte*>(ptr);
  memory.bytes_ = bytes;
  memory.origin_ = Origin::kAlignedAlloc;
  return memory;
}

Result<TierMemory> TierMemory::Allocate(Tier tier, size_t bytes, bool emulated_gpu) {
  TierMemory memory;
  if (bytes == 0) return memory;
  const std::string size =
      std::to_string(bytes) + " bytes for the " + std::string(TierName(tier)) + " tier";
  if (tier == Tier::kGpu && emulated_gpu) return AllocateAligned(bytes, size + " (emulated)");
  switch (tier) {
    case Tier::kNvme:
      return InvalidArgument("the nvme tier is file-backed, not memory: asked for " + size);
    case Tier::kGpu: {
#ifdef SPECONTEXT_HAVE_CUDA
      if (!GpuAvailable()) return FailedPrecondition("no GPU to hold " + size);
      void* ptr = nullptr;
      const cudaError_t err = cudaMalloc(&ptr, bytes);
      if (err != cudaSuccess) {
        cudaGetLastError();
        return ResourceExhausted("cudaMalloc of " + size + " failed: " + cudaGetErrorString(err));
      }
      memory.data_ = static_cast<std::byte*>(ptr);
      memory.origin_ = Origin::kCudaMalloc;
      break;
#else
      return FailedPrecondition("this build has no CUDA backend; cannot hold " + size);
#endif
    }
    case Tier::kHost: {
#ifdef SPECONTEXT_HAVE_CUDA
      if (GpuAvailable()) {
        void* ptr = nullptr;
        const cudaError_t err =
            cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable | cudaHostAllocMapped);
        if (err != cudaSuccess) {
          cudaGetLastError();
          return ResourceExhausted("cudaHostAlloc of " + size +
                                   " failed: " + cudaGetErrorString(err));
        }
        memory.data_ = static_cast<std::byte*>(ptr);
        memory.origin_ = Origin::kCudaHostAlloc;
        break;
      }
#endif
      return AllocateAligned(bytes, size);
    }
  }
  memory.bytes_ = bytes;
  return memory;
}

std::string_view TierMemory::origin() const {
  switch (origin_) {
    case Origin::kNone:
      return "none";
    case Origin::kCudaMalloc:
      return "cudaMalloc";
    case Origin::kCudaHostAlloc:
      return "cudaHostAlloc";
    case Origin::kAlignedAlloc:
      return "aligned_alloc";
  }
  return "unknown";
}

void TierMemory::Reset() {
  switch (origin_) {
    case Origin::kNone:
      break;
#ifdef SPECONTEXT_HAVE_CUDA
    case Origin::kCudaMalloc:
      cudaFree(data_);
      break;
    case Origin::kCudaHostAlloc:
      cudaFreeHost(data_);
      break;
#else
    case Origin::kCudaMalloc:
    case Origin::kCudaHostAlloc:
      break;  // never produced without CUDA
#endif
    case Origin::kAlignedAlloc:
      std::free(data_);
      break;
  }
  data_ = nullptr;
  bytes_ = 0;
  origin_ = Origin::kNone;
}

}  // namespace specontext
