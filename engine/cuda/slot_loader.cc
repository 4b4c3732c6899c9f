#include "engine/cuda/slot_loader.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "engine/cuda/cuda_check.h"

namespace specontext::cuda {
namespace {

constexpr int kChunkCopies = 16384;  // 8.5 MB at head_dim 128: a transfer near link speed
constexpr int kRing = 3;
constexpr int64_t kGrain = 512;
constexpr int kBatch = 16;  // rows whose host reads are in flight at once, per thread

}  // namespace

Result<std::unique_ptr<SlotLoader>> SlotLoader::Create(const KvLayout& layout,
                                                       cpu::ThreadPool* pool) {
  if (pool == nullptr || layout.num_layers <= 0 || layout.block_tokens <= 0 ||
      !std::has_single_bit(static_cast<unsigned>(layout.block_tokens)) ||
      layout.head_dim * layout.ElementBytes() % 16 != 0) {
    return InvalidArgument(
        "slot loader: needs a thread pool, layers, power-of-two blocks and 16-byte rows");
  }
  return std::unique_ptr<SlotLoader>(new SlotLoader(layout, pool));
}

SlotLoader::SlotLoader(const KvLayout& layout, cpu::ThreadPool* pool)
    : layout_(layout), row_bytes_(layout.head_dim * layout.ElementBytes()), pool_(pool) {}

SlotLoader::~SlotLoader() {
  for (cudaEvent_t event : sent_) cudaEventDestroy(event);
}

Status SlotLoader::Allocate() {
  if (!host_.empty()) return Status::Ok();
  const size_t bytes = kChunkCopies * (sizeof(void*) + 2 * row_bytes_);
  for (int i = 0; i < kRing; ++i) {
    SPC_ASSIGN_OR_RETURN(PinnedBuffer host, PinnedBuffer::Allocate(bytes));
    SPC_ASSIGN_OR_RETURN(DeviceBuffer device, DeviceBuffer::Allocate(bytes));
    cudaEvent_t event = nullptr;
    SPC_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    host_.push_back(std::move(host));
    device_.push_back(std::move(device));
    sent_.push_back(event);
  }
  in_flight_.assign(kRing, false);
  return Status::Ok();
}

void SlotLoader::Gather(std::span<const SlotSegment> segments, std::span<const Piece> pieces,
                        int copies, int ring) {
  auto* base = host_[ring].as<std::byte>();
  auto** dst = reinterpret_cast<std::byte**>(base);
  std::byte* payload = base + kChunkCopies * sizeof(void*);
  const int shift = std::countr_zero(static_cast<unsigned>(layout_.block_tokens));
  const int32_t mask = layout_.block_tokens - 1;
  const size_t row = row_bytes_, half = layout_.HalfBlockBytes();
  pool_->ParallelFor(copies, kGrain, [&](int64_t begin, int64_t end) {
    auto piece = std::upper_bound(pieces.begin(), pieces.end(), begin,
                                  [](int64_t i, const Piece& p) { return i < p.offset; }) -
                 1;
    const std::byte* src[kBatch];
    for (int64_t first = begin; first < end; first += kBatch) {
      const int n = static_cast<int>(std::min<int64_t>(kBatch, end - first));
      // Addresses and prefetches for a batch first, so its rows' cache misses overlap.
      for (int k = 0; k < n; ++k) {
        const int64_t i = first + k;
        while (i >= piece->offset + piece->count) ++piece;
        const SlotSegment& segment = segments[piece->segment];
        const SlotCopyJob& job = segment.jobs[piece->first_job + (i - piece->offset)];
        const size_t head_row = static_cast<size_t>(job.kv_head) << shift;
        src[k] =
            segment.host_blocks[job.position >> shift] + (head_row + (job.position & mask)) * row;
        for (size_t line = 0; line < row; line += 64) {
          __builtin_prefetch(src[k] + line);
          __builtin_prefetch(src[k] + half + line);
        }
        dst[i] = segment.slot_blocks[job.slot >> shift] + (head_row + (job.slot & mask)) * row;
      }
      for (int k = 0; k < n; ++k) {
        std::byte* out = payload + (first + k) * 2 * row;
        std::memcpy(out, src[k], row);
        std::memcpy(out + row, src[k] + half, row);
      }
    }
  });
}

Status SlotLoader::Send(int copies, int ring, cudaStream_t stream) {
  auto* host = host_[ring].as<std::byte>();
  auto* device = device_[ring].as<std::byte>();
  const size_t payload = kChunkCopies * sizeof(void*);
  SPC_CUDA(cudaMemcpyAsync(device, host, copies * sizeof(void*), cudaMemcpyHostToDevice, stream));
  SPC_CUDA(cudaMemcpyAsync(device + payload, host + payload, copies * 2 * row_bytes_,
                           cudaMemcpyHostToDevice, stream));
  SPC_CUDA(cudaEventRecord(sent_[ring], stream));
  in_flight_[ring] = true;
  return ScatterToSlots({.dst = reinterpret_cast<std::byte* const*>(device),
                         .payload = device + payload,
                         .count = copies,
                         .row_bytes = row_bytes_,
                         .half_block_bytes = layout_.HalfBlockBytes()},
                        stream);
}

Status SlotLoader::Load(std::span<const SlotSegment> segments, int first_layer,
                        std::span<const cudaEvent_t> layer_events, cudaStream_t stream) {
  SPC_RETURN_IF_ERROR(Allocate());
  const int layers = static_cast<int>(layer_events.size());
  int next_event = first_layer;
  auto record_below = [&](int layer) -> Status {
    for (; next_event < std::min(layer, layers); ++next_event) {
      SPC_CUDA(cudaEventRecord(layer_events[next_event], stream));
    }
    return Status::Ok();
  };
  SPC_RETURN_IF_ERROR(record_below(segments.empty() ? layers : segments.front().layer));
  std::vector<Piece> pieces;
  int copies = 0, chunk = 0;
  // Sends the chunk, then marks the layers whose copies are all queued: those below the layer
  // of the first copy not yet taken.
  auto flush = [&](size_t next_segment, int next_job) -> Status {
    if (copies == 0) return Status::Ok();
    const int ring = chunk++ % kRing;
    if (in_flight_[ring]) SPC_CUDA(cudaEventSynchronize(sent_[ring]));
    Gather(segments, pieces, copies, ring);
    SPC_RETURN_IF_ERROR(Send(copies, ring, stream));
    pieces.clear();
    copies = 0;
    while (next_segment < segments.size() && next_job >= segments[next_segment].count) {
      ++next_segment;
      next_job = 0;
    }
    return record_below(next_segment < segments.size() ? segments[next_segment].layer : layers);
  };
  for (size_t s = 0; s < segments.size(); ++s) {
    for (int first = 0; first < segments[s].count;) {
      const int take = std::min(segments[s].count - first, kChunkCopies - copies);
      pieces.push_back(
          {.segment = static_cast<int>(s), .first_job = first, .count = take, .offset = copies});
      copies += take;
      first += take;
      if (copies == kChunkCopies) SPC_RETURN_IF_ERROR(flush(s, first));
    }
  }
  SPC_RETURN_IF_ERROR(flush(segments.size(), 0));
  return record_below(layers);
}

}  // namespace specontext::cuda
