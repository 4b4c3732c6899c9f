// A step's SpeContext position lists (SequenceStep::sparse_positions) packed for decode
// attention: [decode row][KV head][index_stride] positions and a count per (row, KV head), -1 for
// a dense row. One pinned staging buffer and one device copy at fixed addresses, like
// StepInputs, so a captured graph reads each step's lists where it read the last one's.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "engine/batch.h"
#include "engine/cuda/device_buffer.h"

namespace specontext::cuda {

// All zero when no row of the step is sparse.
struct SparseShape {
  int index_stride = 0;
  // Longest list or dense context a decode row attends to: what the attention plan is cut for.
  int max_attend = 0;
};

class SparseIndexInputs {
 public:
  SparseIndexInputs() = default;
  ~SparseIndexInputs();
  SparseIndexInputs(SparseIndexInputs&& other) noexcept;
  SparseIndexInputs& operator=(SparseIndexInputs&& other) noexcept;

  static Result<SparseIndexInputs> Create(int max_sequences, int num_kv_heads);

  // Decode rows are the one-token sequences in the caller's order, then `padded_rows - real`
  // padding rows (dense, length 0). bucket > 0 rounds index_stride up to a power of two of at
  // least `bucket` and max_attend to dense_context for dense rows, so graph shapes repeat.
  Result<SparseShape> Pack(const BatchStep& batch, int num_kv_heads, int padded_rows, int bucket,
                           int dense_context);
  Status Upload(const SparseShape& shape, int rows, cudaStream_t stream);

  const int32_t* counts() const { return device_.as<int32_t>(); }
  const int32_t* indices() const { return device_.as<int32_t>() + lists_offset_; }
  // Changes whenever the device arrays move (graphs that read them must be dropped).
  int generation() const { return generation_; }

 private:
  Status Reserve(size_t entries);

  int32_t* host_ = nullptr;  // pinned: counts [max_sequences][KV heads], then the lists
  DeviceBuffer device_;
  size_t lists_offset_ = 0;   // int32 entries before the lists
  size_t list_capacity_ = 0;  // int32 entries of the lists
  int num_kv_heads_ = 0;
  int generation_ = 0;
};

}  // namespace specontext::cuda
