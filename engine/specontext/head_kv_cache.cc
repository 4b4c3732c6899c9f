#include "engine/specontext/head_kv_cache.h"

#include <algorithm>

namespace specontext {

void HeadKvCache::Append(const float* k, int rows) {
  const size_t row_width = heads_.size() * head_dim_;
  for (size_t h = 0; h < heads_.size(); ++h) {
    std::vector<float>& head = heads_[h];
    for (int r = 0; r < rows; ++r) {
      const float* src = k + r * row_width + h * head_dim_;
      head.insert(head.end(), src, src + head_dim_);
    }
  }
  size_ += rows;
}

void HeadKvCache::CopyRows(int64_t first, int64_t count, float* out) const {
  const size_t row_width = heads_.size() * head_dim_;
  for (size_t h = 0; h < heads_.size(); ++h) {
    for (int64_t r = 0; r < count; ++r) {
      const float* src = heads_[h].data() + (first + r) * head_dim_;
      std::copy(src, src + head_dim_, out + r * row_width + h * head_dim_);
    }
  }
}

void HeadKvCache::Truncate(int64_t size) {
  size_ = std::clamp<int64_t>(size, 0, size_);
  for (std::vector<float>& head : heads_) head.resize(static_cast<size_t>(size_) * head_dim_);
}

}  // namespace specontext
