// Elastic loading's copy path (engine/cuda/slot_loader.h, slot_copy_kernels.h): K and V rows of
// host blocks gathered on the host, sent in chunks and scattered into device slot blocks must
// land byte for byte where the CPU reference says, across more copies than one chunk holds (so
// the ring of chunks wraps and segments split between chunks), with every layer's event
// recorded.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "engine/cuda/slot_loader.h"
#include "engine/device.h"

namespace specontext::testing_gpu {
namespace {

TEST(SlotLoader, CopiesLandInTheirSlotsAcrossChunks) {
  if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
  const KvLayout layout{.num_layers = 4,
                        .num_kv_heads = 2,
                        .head_dim = 64,
                        .block_tokens = 16,
                        .dtype = DType::kBF16};
  const int positions = 8192, slots = 4096, rows = 3;
  const int blocks = positions / layout.block_tokens, slot_blocks = slots / layout.block_tokens;
  const size_t row_bytes = layout.head_dim * 2;
  std::mt19937 rng(3);

  // Per (row, layer): host blocks with random bytes and device slot blocks; layer 0 stays on
  // the GPU (no segments), so the loader starts at layer 1.
  std::vector<cuda::PinnedBuffer> host;
  std::vector<cuda::DeviceBuffer> device;
  std::vector<std::vector<std::byte*>> tables;
  // Each (row, layer)'s slot blocks in reverse order: lent blocks are not adjacent, and the
  // loader must follow the pointers, not the first one.
  std::vector<std::vector<std::byte*>> slot_tables;
  std::vector<std::vector<cuda::SlotCopyJob>> jobs;
  std::vector<cuda::SlotSegment> segments;
  for (int layer = 1; layer < layout.num_layers; ++layer) {
    for (int row = 0; row < rows; ++row) {
      auto h = cuda::PinnedBuffer::Allocate(blocks * layout.BlockBytes());
      auto d = cuda::DeviceBuffer::Allocate(slot_blocks * layout.BlockBytes());
      ASSERT_TRUE(h.ok() && d.ok());
      auto* bytes = h->as<uint8_t>();
      for (size_t i = 0; i < h->bytes(); ++i) bytes[i] = static_cast<uint8_t>(rng());
      ASSERT_EQ(cudaMemset(d->data(), 0, d->bytes()), cudaSuccess);
      std::vector<std::byte*> table;
      for (int b = 0; b < blocks; ++b)
        table.push_back(h->as<std::byte>() + b * layout.BlockBytes());
      // Rows take 0, a few, or thousands of copies: 3 layers x ~8K, more than one 16K chunk.
      const int count = row == 0 ? 0 : row == 1 ? 37 : 2 * slots - 3;
      std::vector<cuda::SlotCopyJob> list;
      for (int j = 0; j < count; ++j) {
        list.push_back({.position = static_cast<int32_t>(rng() % positions),
                        .kv_head = j % 2,
                        .slot = static_cast<int32_t>((j / 2) % slots)});
      }
      std::vector<std::byte*> slot_table;
      for (int b = 0; b < slot_blocks; ++b) {
        slot_table.push_back(d->as<std::byte>() + (slot_blocks - 1 - b) * layout.BlockBytes());
      }
      slot_tables.push_back(std::move(slot_table));
      host.push_back(std::move(h).value());
      device.push_back(std::move(d).value());
      tables.push_back(std::move(table));
      jobs.push_back(std::move(list));
    }
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].empty()) continue;
    segments.push_back({.layer = 1 + static_cast<int>(i) / rows,
                        .host_blocks = tables[i].data(),
                        .slot_blocks = slot_tables[i].data(),
                        .jobs = jobs[i].data(),
                        .count = static_cast<int>(jobs[i].size())});
  }
  std::vector<cudaEvent_t> events(layout.num_layers);
  for (cudaEvent_t& e : events) ASSERT_EQ(cudaEventCreate(&e), cudaSuccess);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  cpu::ThreadPool pool(4);
  auto loader = cuda::SlotLoader::Create(layout, &pool);
  ASSERT_TRUE(loader.ok()) << loader.status().ToString();
  // Twice: the second run finds the ring's chunks still in flight from the first.
  for (int run = 0; run < 2; ++run) {
    const Status st = (*loader)->Load(segments, 1, events, stream);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  for (int layer = 1; layer < layout.num_layers; ++layer) {
    EXPECT_EQ(cudaEventQuery(events[layer]), cudaSuccess) << "layer " << layer;
  }

  // The reference: the last job naming a (head, slot) decides its bytes.
  const int shift = 4;
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::vector<uint8_t> want(slot_blocks * layout.BlockBytes(), 0), got(want.size());
    for (const cuda::SlotCopyJob& job : jobs[i]) {
      const size_t src = (job.position >> shift) * layout.BlockBytes() +
                         ((size_t(job.kv_head) << shift) + (job.position & 15)) * row_bytes;
      const size_t dst = (slot_blocks - 1 - (job.slot >> shift)) * layout.BlockBytes() +
                         ((size_t(job.kv_head) << shift) + (job.slot & 15)) * row_bytes;
      for (size_t half : {size_t{0}, layout.HalfBlockBytes()}) {
        std::memcpy(want.data() + dst + half, host[i].as<uint8_t>() + src + half, row_bytes);
      }
    }
    ASSERT_EQ(cudaMemcpy(got.data(), device[i].data(), got.size(), cudaMemcpyDeviceToHost),
              cudaSuccess);
    EXPECT_TRUE(got == want) << "row " << i % rows << " of layer " << 1 + i / rows;
  }
  for (cudaEvent_t e : events) cudaEventDestroy(e);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace specontext::testing_gpu
