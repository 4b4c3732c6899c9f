// One contiguous, owning allocation backing a memory tier's block pool.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"
#include "kv_store/tier.h"

namespace specontext {

class TierMemory {
 public:
  // Alignment of every allocation: a page, so host blocks can be O_DIRECT buffers.
  static constexpr size_t kAlignment = 4096;

  TierMemory() = default;
  ~TierMemory();
  TierMemory(TierMemory&& other) noexcept;
  TierMemory& operator=(TierMemory&& other) noexcept;
  TierMemory(const TierMemory&) = delete;
  TierMemory& operator=(const TierMemory&) = delete;

  // kGpu: cudaMalloc (fails without CUDA or a GPU), or page-aligned host memory when
  // `emulated_gpu` (the CPU backend's stand-in, so placement runs without a GPU). kHost:
  // cudaHostAlloc (mapped, so kernels can read it through UVA) when CUDA is compiled in and a
  // GPU is present, else page-aligned host memory. kNvme has no memory of its own.
  static Result<TierMemory> Allocate(Tier tier, size_t bytes, bool emulated_gpu = false);

  std::byte* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  // How the bytes were obtained, for logs: "cudaMalloc", "cudaHostAlloc" or "aligned_alloc".
  std::string_view origin() const;
  // The CPU can read and write the bytes directly (everything but cudaMalloc).
  bool host_addressable() const {
    return origin_ == Origin::kCudaHostAlloc || origin_ == Origin::kAlignedAlloc;
  }

 private:
  enum class Origin { kNone, kCudaMalloc, kCudaHostAlloc, kAlignedAlloc };
  static Result<TierMemory> AllocateAligned(size_t bytes, const std::string& what);
  void Reset();
  std::byte* data_ = nullptr;
  size_t bytes_ = 0;
  Origin origin_ = Origin::kNone;
};

// True when CUDA is compiled in and at least one GPU answers.
bool GpuAvailable();

}  // namespace specontext
