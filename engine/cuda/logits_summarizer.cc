#include "engine/cuda/logits_summarizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/logits_summary_kernels.h"
#include "engine/cuda/topk_kernels.h"

namespace specontext::cuda {
namespace {

size_t Align(size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

LogitsSummarizer::~LogitsSummarizer() {
  if (host_ != nullptr) cudaFreeHost(host_);
}

LogitsSummarizer::Layout LogitsSummarizer::LayoutFor(int rows, int top_k, size_t gathered) {
  Layout l;
  l.temperatures = 0;
  l.flat_index = Align(rows * sizeof(float));
  l.inputs_end = l.flat_index + Align(gathered * sizeof(int32_t));
  l.stats = l.inputs_end;
  l.values = l.stats + Align(rows * sizeof(RowStats));
  l.indices = l.values + Align(static_cast<size_t>(rows) * top_k * sizeof(float));
  l.gathered = l.indices + Align(static_cast<size_t>(rows) * top_k * sizeof(int32_t));
  l.end = l.gathered + Align(gathered * sizeof(float));
  return l;
}

Status LogitsSummarizer::Reserve(size_t bytes) {
  if (bytes <= capacity_) return Status::Ok();
  bytes = std::max(bytes, capacity_ * 2);
  if (host_ != nullptr) cudaFreeHost(host_);
  host_ = nullptr;
  capacity_ = 0;
  device_ = DeviceBuffer();
  SPC_ASSIGN_OR_RETURN(device_, DeviceBuffer::Allocate(bytes));
  SPC_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&host_), bytes, cudaHostAllocDefault));
  capacity_ = bytes;
  return Status::Ok();
}

Status LogitsSummarizer::Summarize(const float* logits, int rows, int vocab,
                                   const LogitsSummaryRequest& request, cudaStream_t stream,
                                   std::vector<LogitsSummary>* out) {
  const int top_k = request.top_k;
  if (top_k < 1 || top_k > kMaxTopK || top_k > vocab) {
    return InvalidArgument("a logits summary of the top " + std::to_string(top_k) +
                           " tokens (at most " + std::to_string(kMaxTopK) + ")");
  }
  size_t gathered = 0;
  for (const auto& tokens : request.gather) gathered += tokens.size();
  const Layout l = LayoutFor(rows, top_k, gathered);
  SPC_RETURN_IF_ERROR(Reserve(l.end));
  // Both stages run in stream order, so they share one scratch area.
  const size_t scratch =
      std::max(RowStatsWorkspaceBytes(rows, vocab), TopKWorkspaceBytes(rows, vocab, top_k));
  if (scratch > scratch_.bytes()) {
    const size_t bytes = std::max(scratch, 2 * scratch_.bytes());
    scratch_ = DeviceBuffer();
    SPC_ASSIGN_OR_RETURN(scratch_, DeviceBuffer::Allocate(bytes));
  }

  std::memcpy(host_ + l.temperatures, request.temperatures.data(), rows * sizeof(float));
  auto* flat = reinterpret_cast<int32_t*>(host_ + l.flat_index);
  for (int row = 0; row < rows; ++row) {
    for (int32_t token : request.gather[row]) *flat++ = row * vocab + token;
  }
  std::byte* dev = device_.as<std::byte>();
  SPC_CUDA(cudaMemcpyAsync(dev, host_, l.inputs_end, cudaMemcpyHostToDevice, stream));
  auto* stats = reinterpret_cast<RowStats*>(dev + l.stats);
  SPC_RETURN_IF_ERROR(ComputeRowStats(logits, rows, vocab,
                                      reinterpret_cast<const float*>(dev + l.temperatures), stats,
                                      scratch_.data(), scratch_.bytes(), stream));
  SPC_RETURN_IF_ERROR(
      TopK(DType::kF32, logits, rows, vocab, vocab, top_k, reinterpret_cast<float*>(dev + l.values),
           reinterpret_cast<int32_t*>(dev + l.indices), scratch_.data(), scratch_.bytes(), stream));
  SPC_RETURN_IF_ERROR(GatherLogits(logits, reinterpret_cast<const int32_t*>(dev + l.flat_index),
                                   static_cast<int>(gathered),
                                   reinterpret_cast<float*>(dev + l.gathered), stream));
  SPC_CUDA(cudaMemcpyAsync(host_ + l.stats, dev + l.stats, l.end - l.stats, cudaMemcpyDeviceToHost,
                           stream));
  SPC_CUDA(cudaStreamSynchronize(stream));

  out->resize(rows);
  const auto* host_stats = reinterpret_cast<const RowStats*>(host_ + l.stats);
  const auto* values = reinterpret_cast<const float*>(host_ + l.values);
  const auto* indices = reinterpret_cast<const int32_t*>(host_ + l.indices);
  const auto* gathered_values = reinterpret_cast<const float*>(host_ + l.gathered);
  for (int row = 0; row < rows; ++row) {
    LogitsSummary& s = (*out)[row];
    const RowStats& st = host_stats[row];
    s.max_logit = st.max_logit;
    s.sum = st.sum;
    s.sum_scaled = st.sum_scaled;
    s.non_finite = st.non_finite;
    s.neg_inf = st.neg_inf;
    const size_t first = static_cast<size_t>(row) * top_k;
    s.top_logits.assign(values + first, values + first + top_k);
    s.top_tokens.assign(indices + first, indices + first + top_k);
    const size_t n = request.gather[row].size();
    s.gathered.assign(gathered_values, gathered_values + n);
    gathered_values += n;
  }
  return Status::Ok();
}

}  // namespace specontext::cuda
