#include "engine/cuda/sparse_index_inputs.h"

#include <algorithm>
#include <string>
#include <utility>

#include "engine/cuda/cuda_check.h"

namespace specontext::cuda {
namespace {

int NextPow2(int n) {
  int p = 1;
  while (p < n) p *= 2;
  return p;
}

}  // namespace

SparseIndexInputs::~SparseIndexInputs() {
  if (host_ != nullptr) cudaFreeHost(host_);
}

SparseIndexInputs::SparseIndexInputs(SparseIndexInputs&& other) noexcept {
  *this = std::move(other);
}

SparseIndexInputs& SparseIndexInputs::operator=(SparseIndexInputs&& other) noexcept {
  if (this != &other) {
    if (host_ != nullptr) cudaFreeHost(host_);
    host_ = std::exchange(other.host_, nullptr);
    device_ = std::move(other.device_);
    lists_offset_ = other.lists_offset_;
    list_capacity_ = other.list_capacity_;
    num_kv_heads_ = other.num_kv_heads_;
    generation_ = other.generation_;
  }
  return *this;
}

Result<SparseIndexInputs> SparseIndexInputs::Create(int max_sequences, int num_kv_heads) {
  if (max_sequences <= 0 || num_kv_heads <= 0) {
    return InvalidArgument("CUDA backend: sparse inputs need sequences and KV heads");
  }
  SparseIndexInputs inputs;
  inputs.num_kv_heads_ = num_kv_heads;
  inputs.lists_offset_ = (static_cast<size_t>(max_sequences) * num_kv_heads + 63) / 64 * 64;
  return inputs;
}

Status SparseIndexInputs::Reserve(size_t entries) {
  if (entries <= list_capacity_ && host_ != nullptr) return Status::Ok();
  const size_t bytes = sizeof(int32_t) * (lists_offset_ + entries);
  if (host_ != nullptr) cudaFreeHost(host_);
  host_ = nullptr;
  list_capacity_ = 0;
  if (cudaHostAlloc(reinterpret_cast<void**>(&host_), bytes, cudaHostAllocDefault) != cudaSuccess) {
    cudaGetLastError();
    host_ = nullptr;
    return ResourceExhausted("CUDA backend: cannot pin " + std::to_string(bytes) +
                             " bytes for sparse position lists");
  }
  SPC_ASSIGN_OR_RETURN(device_, DeviceBuffer::Allocate(bytes));
  list_capacity_ = entries;
  ++generation_;
  return Status::Ok();
}

Result<SparseShape> SparseIndexInputs::Pack(const BatchStep& batch, int num_kv_heads,
                                            int padded_rows, int bucket, int dense_context) {
  if (num_kv_heads != num_kv_heads_) {
    return InvalidArgument("CUDA backend: sparse lists for " + std::to_string(num_kv_heads) +
                           " KV heads, inputs made for " + std::to_string(num_kv_heads_));
  }
  SparseShape shape;
  int longest_list = 0;
  bool any_sparse = false;
  for (const SequenceStep& seq : batch.sequences) {
    if (seq.tokens.size() != 1) continue;
    if (seq.sparse_positions.empty()) {
      shape.max_attend = std::max(shape.max_attend, seq.start_position + 1);
      continue;
    }
    any_sparse = true;
    for (const auto& list : seq.sparse_positions) {
      longest_list = std::max(longest_list, static_cast<int>(list.size()));
    }
  }
  if (!any_sparse) return SparseShape{};
  shape.index_stride = bucket > 0 ? std::max(bucket, NextPow2(longest_list)) : longest_list;
  shape.index_stride = std::max(shape.index_stride, 1);
  if (bucket > 0 && shape.max_attend > 0) shape.max_attend = dense_context;
  shape.max_attend = std::max(shape.max_attend, shape.index_stride);
  const size_t rows_entries = static_cast<size_t>(padded_rows) * num_kv_heads;
  if (rows_entries > lists_offset_) {
    return InvalidArgument("CUDA backend: more decode rows than the sparse inputs were made for");
  }
  SPC_RETURN_IF_ERROR(Reserve(rows_entries * shape.index_stride));

  int32_t* counts = host_;
  int32_t* lists = host_ + lists_offset_;
  int row = 0;
  for (const SequenceStep& seq : batch.sequences) {
    if (seq.tokens.size() != 1) continue;
    for (int h = 0; h < num_kv_heads; ++h) {
      const size_t slot = static_cast<size_t>(row) * num_kv_heads + h;
      if (seq.sparse_positions.empty()) {
        counts[slot] = -1;
        continue;
      }
      const auto& list = seq.sparse_positions[h];
      counts[slot] = static_cast<int32_t>(list.size());
      std::copy(list.begin(), list.end(), lists + slot * shape.index_stride);
    }
    ++row;
  }
  // Padding rows are dense with length 0: nothing attended, a zero output.
  for (size_t slot = static_cast<size_t>(row) * num_kv_heads; slot < rows_entries; ++slot) {
    counts[slot] = -1;
  }
  return shape;
}

Status SparseIndexInputs::Upload(const SparseShape& shape, int rows, cudaStream_t stream) {
  if (shape.index_stride == 0) return Status::Ok();
  const size_t entries = static_cast<size_t>(rows) * num_kv_heads_;
  SPC_CUDA(cudaMemcpyAsync(device_.data(), host_, sizeof(int32_t) * entries, cudaMemcpyHostToDevice,
                           stream));
  SPC_CUDA(cudaMemcpyAsync(device_.as<int32_t>() + lists_offset_, host_ + lists_offset_,
                           sizeof(int32_t) * entries * shape.index_stride, cudaMemcpyHostToDevice,
                           stream));
  return Status::Ok();
}

}  // namespace specontext::cuda
