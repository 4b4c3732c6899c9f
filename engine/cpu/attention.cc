#include "engine/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace specontext::cpu {
namespace {

// The K (or V) vector of one head at one position: block position / block_tokens, slot the rest.
const float* KvVector(const KvLayout& layout, const std::vector<std::byte*>& blocks, int head,
                      int position, bool value) {
  const int slot = position % layout.block_tokens;
  const size_t offset = value ? layout.VOffset(head, slot) : layout.KOffset(head, slot);
  return reinterpret_cast<const float*>(blocks[position / layout.block_tokens] + offset);
}

// softmax(q · K[position_at(i)]ᵀ · scale) for i < count, into weights[0, count). One template
// for dense ranges and sparse lists keeps their arithmetic identical, so a sparse row that
// lists every position reproduces the dense row bit for bit.
template <typename PositionAt>
void SoftmaxScores(const KvLayout& layout, const std::vector<std::byte*>& blocks, int kv_head,
                   int count, PositionAt position_at, const float* q, float scale, float* weights) {
  const int d = layout.head_dim;
  float max_score = -INFINITY;
  for (int i = 0; i < count; ++i) {
    const float* k = KvVector(layout, blocks, kv_head, position_at(i), false);
    float dot = 0.0f;
    for (int j = 0; j < d; ++j) dot += q[j] * k[j];
    weights[i] = dot * scale;
    max_score = std::max(max_score, weights[i]);
  }
  float total = 0.0f;
  for (int i = 0; i < count; ++i) total += weights[i] = std::exp(weights[i] - max_score);
  for (int i = 0; i < count; ++i) weights[i] /= total;
}

// One query head of one token.
template <typename PositionAt>
void AttendOne(const KvLayout& layout, const std::vector<std::byte*>& blocks, int kv_head,
               int count, PositionAt position_at, const float* q, float scale,
               std::vector<float>& scores, float* out) {
  const int d = layout.head_dim;
  scores.resize(count);
  SoftmaxScores(layout, blocks, kv_head, count, position_at, q, scale, scores.data());
  std::fill(out, out + d, 0.0f);
  for (int i = 0; i < count; ++i) {
    const float* v = KvVector(layout, blocks, kv_head, position_at(i), true);
    const float w = scores[i];
    for (int j = 0; j < d; ++j) out[j] += w * v[j];
  }
}

int FirstVisible(const AttentionShape& shape, int position) {
  return shape.sliding_window > 0 ? std::max(0, position - shape.sliding_window + 1) : 0;
}

}  // namespace

void WriteKv(const KvLayout& layout, const std::vector<std::byte*>& blocks, int position,
             const float* k, const float* v) {
  std::byte* block = blocks[position / layout.block_tokens];
  const int slot = position % layout.block_tokens;
  const size_t bytes = static_cast<size_t>(layout.head_dim) * sizeof(float);
  for (int h = 0; h < layout.num_kv_heads; ++h) {
    std::memcpy(block + layout.KOffset(h, slot), k + static_cast<long>(h) * layout.head_dim, bytes);
    std::memcpy(block + layout.VOffset(h, slot), v + static_cast<long>(h) * layout.head_dim, bytes);
  }
}

void PagedAttention(ThreadPool& pool, const KvLayout& layout, const AttentionShape& shape,
                    const std::vector<AttentionSpan>& spans, const float* q, int q_stride,
                    float* out) {
  // Flatten (row, head) so decode steps of a few rows still spread over every thread.
  std::vector<const AttentionSpan*> span_of_row;
  for (const AttentionSpan& span : spans) {
    span_of_row.insert(span_of_row.end(), span.num_tokens, &span);
  }
  const int heads = shape.num_heads;
  const int group = heads / layout.num_kv_heads;
  const int d = layout.head_dim;
  pool.ParallelFor(
      static_cast<int64_t>(span_of_row.size()) * heads, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> scores;
        for (int64_t item = begin; item < end; ++item) {
          const int row = static_cast<int>(item / heads);
          const int head = static_cast<int>(item % heads);
          const AttentionSpan& span = *span_of_row[row];
          const int position = span.start_position + (row - span.first_row);
          const float* q_head = q + static_cast<long>(row) * q_stride + static_cast<long>(head) * d;
          float* out_head = out + (static_cast<long>(row) * heads + head) * d;
          const int kv_head = head / group;
          if (span.sparse != nullptr) {
            const std::vector<int32_t>& list = (*span.sparse)[kv_head];
            AttendOne(
                layout, *span.blocks, kv_head, static_cast<int>(list.size()),
                [&list](int i) { return list[i]; }, q_head, shape.scale, scores, out_head);
          } else {
            const int first = FirstVisible(shape, position);
            AttendOne(
                layout, *span.blocks, kv_head, position - first + 1,
                [first](int i) { return first + i; }, q_head, shape.scale, scores, out_head);
          }
        }
      });
}

void DenseAttentionWeights(ThreadPool& pool, const KvLayout& layout, const AttentionShape& shape,
                           const AttentionSpan& span, const float* q, int q_stride,
                           std::vector<float>& weights) {
  const int row = span.first_row + span.num_tokens - 1;
  const int position = span.start_position + span.num_tokens - 1;
  const int first = FirstVisible(shape, position);
  const int group = shape.num_heads / layout.num_kv_heads;
  const long stride = position + 1;
  weights.assign(static_cast<size_t>(shape.num_heads) * stride, 0.0f);
  pool.ParallelFor(shape.num_heads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t head = begin; head < end; ++head) {
      SoftmaxScores(
          layout, *span.blocks, static_cast<int>(head / group), position - first + 1,
          [first](int i) { return first + i; },
          q + static_cast<long>(row) * q_stride + head * layout.head_dim, shape.scale,
          weights.data() + head * stride + first);
    }
  });
}

}  // namespace specontext::cpu
