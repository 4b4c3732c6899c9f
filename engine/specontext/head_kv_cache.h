// One sequence's retrieval-head K cache: K after RoPE for every position, per KV head, no V.
// Rows are contiguous per head so scoring one head streams one block of memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace specontext {

class HeadKvCache {
 public:
  HeadKvCache(int num_kv_heads, int head_dim)
      : head_dim_(head_dim), heads_(static_cast<size_t>(num_kv_heads)) {}

  int num_kv_heads() const { return static_cast<int>(heads_.size()); }
  int head_dim() const { return head_dim_; }
  int64_t size() const { return size_; }

  // `k` is [rows][num_kv_heads·head_dim], the layout RetrievalHead::Project writes.
  void Append(const float* k, int rows);
  // Positions [first, first + count) into `out` in Append's layout (a block kept for reuse).
  void CopyRows(int64_t first, int64_t count, float* out) const;
  // Keeps positions [0, size): a recompute after preemption starts again from there.
  void Truncate(int64_t size);
  // [size()][head_dim] for one KV head.
  const float* Head(int kv_head) const { return heads_[kv_head].data(); }

 private:
  int head_dim_;
  int64_t size_ = 0;
  std::vector<std::vector<float>> heads_;
};

}  // namespace specontext
