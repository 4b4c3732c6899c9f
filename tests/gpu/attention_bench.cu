// Attention micro-benchmark at Llama-3.1-8B head shapes (32 query heads, 8 KV heads, head_dim
// 128, bf16, 16-token blocks), median time over repeats with CUDA events. Decode (dense and
// sparse): bandwidth achieved on the bytes that must move, next to a device-to-device copy's.
// Prefill: tensor-core throughput on the causal FLOPs.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "engine/cuda/decode_attention.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/prefill_attention.h"
#include "tests/gpu/bench_util.cuh"

namespace specontext::cuda {
namespace {

constexpr int kQHeads = 32, kKvHeads = 8, kHeadDim = 128, kBlockTokens = 16;
constexpr size_t kBlockElems = 2ull * kKvHeads * kBlockTokens * kHeadDim;

// One sequence of `fresh` new tokens after `past` cached ones; blocks scattered over the pool.
void BenchPrefill(const DeviceBuffer& pool, size_t pool_blocks, int past, int fresh, int tile_rows,
                  std::mt19937& rng) {
  const int total = past + fresh;
  const int blocks = (total + kBlockTokens - 1) / kBlockTokens;
  std::vector<int> order(pool_blocks);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<void*> table(blocks);
  for (int i = 0; i < blocks; ++i) {
    table[i] = pool.as<__nv_bfloat16>() + size_t(order[i]) * kBlockElems;
  }
  DeviceBuffer d_table = Alloc(table.size() * sizeof(void*));
  BENCH_CHECK(cudaMemcpy(d_table.data(), table.data(), d_table.bytes(), cudaMemcpyHostToDevice));
  const std::vector<int32_t> meta = {0, fresh, total};
  DeviceBuffer d_meta = Alloc(meta.size() * 4);
  BENCH_CHECK(cudaMemcpy(d_meta.data(), meta.data(), d_meta.bytes(), cudaMemcpyHostToDevice));
  const size_t act = size_t(fresh) * kQHeads * kHeadDim * 2;
  DeviceBuffer q = Alloc(act), out = Alloc(act);
  FillRandom<<<1024, 256>>>(q.as<__nv_bfloat16>(), act / 2, 13);
  PagedKv kv{d_table.as<void*>(), blocks, kKvHeads, kHeadDim, kBlockTokens, DType::kBF16};
  PrefillAttentionArgs args;
  args.q = q.data();
  args.out = out.data();
  args.q_stride = args.out_stride = kQHeads * kHeadDim;
  args.num_seqs = 1;
  args.num_q_heads = kQHeads;
  args.scale = 0.0883883f;
  args.q_start = d_meta.as<int32_t>();
  args.q_len = d_meta.as<int32_t>() + 1;
  args.kv_len = d_meta.as<int32_t>() + 2;
  args.max_q_len = fresh;
  args.tile_rows = tile_rows;
  Status failed;
  const float ms = MedianMs(
      [&](int) {
        const Status st = PrefillAttention(args, kv, nullptr);
        if (!st.ok()) failed = st;
      },
      10);
  if (!failed.ok()) {
    std::fprintf(stderr, "%s\n", failed.ToString().c_str());
    std::exit(1);
  }
  // Each new token attends to past + its own index + 1 positions: q·k and p·v, 2 FLOPs a MAC.
  const double pairs = double(fresh) * past + double(fresh) * (fresh + 1) / 2;
  const double flops = 4.0 * pairs * kHeadDim * kQHeads;
  std::printf("%-7s %8d %8d %5d %10.1f %9.1f\n", "prefill", past, fresh, tile_rows, ms * 1e3,
              flops / ms / 1e9);
}

int Main() {
  const std::vector<int> batches = {1, 4, 8, 16, 32};
  const std::vector<int> lengths = {2048, 8192, 32768};
  // Pool for the largest case; smaller cases rotate over disjoint copies so L2 (50 MB) cannot
  // serve repeats.
  const size_t pool_blocks = size_t(32) * 32768 / kBlockTokens;
  DeviceBuffer pool = Alloc(pool_blocks * kBlockElems * 2);
  FillRandom<<<4096, 256>>>(pool.as<__nv_bfloat16>(), pool_blocks * kBlockElems, 7);
  BENCH_CHECK(cudaDeviceSynchronize());

  // The copy ceiling: bytes read plus bytes written of a 1 GiB device-to-device copy.
  const size_t copy_bytes = size_t(1) << 30;
  const float copy_ms = MedianMs(
      [&](int) {
        BENCH_CHECK(cudaMemcpyAsync(pool.as<char>() + copy_bytes, pool.data(), copy_bytes,
                                    cudaMemcpyDeviceToDevice));
      },
      20);
  const double copy_gbs = 2.0 * copy_bytes / copy_ms / 1e6;
  std::printf("device-to-device copy: %.0f GB/s (read + write)\n", copy_gbs);
  FillRandom<<<4096, 256>>>(pool.as<__nv_bfloat16>(), pool_blocks * kBlockElems, 7);

  // time_us: one call alone; stream_us: per call among 8 back-to-back calls.
  std::printf("%-7s %6s %7s %6s %6s %10s %9s %8s %8s %10s %9s %8s\n", "mode", "R", "S", "splits",
              "chunk", "time_us", "GB/s", "of_copy", "of_3TB/s", "stream_us", "GB/s", "of_3TB/s");
  std::mt19937 rng(3);
  for (const bool sparse : {false, true}) {
    for (int batch : batches) {
      for (int len : lengths) {
        if (sparse && len != 32768) continue;
        const int attended = sparse ? 2048 : len;
        const size_t blocks_per_seq = len / kBlockTokens;
        const int copies =
            static_cast<int>(std::min<size_t>(8, pool_blocks / (blocks_per_seq * batch)));
        std::vector<int> order(pool_blocks);
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), rng);
        std::vector<void*> tables(size_t(copies) * batch * blocks_per_seq);
        for (size_t i = 0; i < tables.size(); ++i) {
          tables[i] = pool.as<__nv_bfloat16>() + size_t(order[i]) * kBlockElems;
        }
        std::vector<int32_t> lens(batch, len);
        std::vector<int32_t> indices(size_t(batch) * kKvHeads * attended);
        std::vector<int32_t> counts(size_t(batch) * kKvHeads, attended);
        std::uniform_int_distribution<int> pick(0, len - 1);
        for (int32_t& i : indices) i = pick(rng);
        DeviceBuffer d_tables = Alloc(tables.size() * sizeof(void*));
        DeviceBuffer d_lens = Alloc(lens.size() * 4), d_idx = Alloc(indices.size() * 4);
        DeviceBuffer d_counts = Alloc(counts.size() * 4);
        BENCH_CHECK(
            cudaMemcpy(d_tables.data(), tables.data(), d_tables.bytes(), cudaMemcpyHostToDevice));
        BENCH_CHECK(cudaMemcpy(d_lens.data(), lens.data(), d_lens.bytes(), cudaMemcpyHostToDevice));
        BENCH_CHECK(
            cudaMemcpy(d_idx.data(), indices.data(), d_idx.bytes(), cudaMemcpyHostToDevice));
        BENCH_CHECK(
            cudaMemcpy(d_counts.data(), counts.data(), d_counts.bytes(), cudaMemcpyHostToDevice));
        const size_t act = size_t(batch) * kQHeads * kHeadDim * 2;
        DeviceBuffer q = Alloc(act), out = Alloc(act);
        FillRandom<<<64, 256>>>(q.as<__nv_bfloat16>(), act / 2, 11);

        PagedKv kv{d_tables.as<void*>(),
                   static_cast<int>(blocks_per_seq),
                   kKvHeads,
                   kHeadDim,
                   kBlockTokens,
                   DType::kBF16};
        auto plan = PlanDecodeAttention(kv, batch, kQHeads, attended);
        if (!plan.ok()) {
          std::fprintf(stderr, "%s\n", plan.status().ToString().c_str());
          return 1;
        }
        DeviceBuffer ws = Alloc(std::max<size_t>(plan->workspace_bytes, 4));
        DecodeAttentionArgs args;
        args.q = q.data();
        args.out = out.data();
        args.q_stride = args.out_stride = kQHeads * kHeadDim;
        args.batch = batch;
        args.num_q_heads = kQHeads;
        args.scale = 0.0883883f;
        args.seq_lens = d_lens.as<int32_t>();
        if (sparse) {
          args.indices = d_idx.as<int32_t>();
          args.index_counts = d_counts.as<int32_t>();
          args.index_stride = attended;
        }
        Status failed;
        auto launch = [&](int i) {
          PagedKv rotated = kv;
          rotated.block_table = d_tables.as<void*>() + size_t(i % copies) * batch * blocks_per_seq;
          const Status st = DecodeAttention(args, rotated, *plan, ws.data(), nullptr);
          if (!st.ok()) failed = st;
        };
        const float ms = MedianMs(launch, 30);
        // Back to back, as layers run: launch gaps overlap the previous call's execution.
        constexpr int kStream = 8;
        const float stream_ms = MedianMs(
                                    [&](int) {
                                      for (int j = 0; j < kStream; ++j) launch(j);
                                    },
                                    10) /
                                kStream;
        if (!failed.ok()) {
          std::fprintf(stderr, "%s\n", failed.ToString().c_str());
          return 1;
        }
        // Bytes that must move: K and V of every attended position, q in, out back.
        const double bytes = double(batch) * kKvHeads * attended * kHeadDim * 2 * 2 + 2.0 * act;
        const double gbs = bytes / ms / 1e6, stream_gbs = bytes / stream_ms / 1e6;
        std::printf("%-7s %6d %7d %6d %6d %10.1f %9.0f %8.2f %8.2f %10.1f %9.0f %8.2f\n",
                    sparse ? "sparse" : "dense", batch, len, plan->splits, plan->chunk, ms * 1e3,
                    gbs, gbs / copy_gbs, gbs / 3000.0, stream_ms * 1e3, stream_gbs,
                    stream_gbs / 3000.0);
      }
    }
  }
  // tile 0: the height the kernel picks.
  std::printf("\n%-7s %8s %8s %5s %10s %9s\n", "mode", "past", "new", "tile", "time_us", "TFLOP/s");
  for (const auto [past, fresh] : {std::pair{0, 1024}, std::pair{0, 4096}, std::pair{0, 16384},
                                   std::pair{0, 32768}, std::pair{16384, 2048}}) {
    for (int tile_rows : {0, 64, 128}) {
      BenchPrefill(pool, pool_blocks, past, fresh, tile_rows, rng);
    }
  }
  return 0;
}

}  // namespace
}  // namespace specontext::cuda

int main() {
  return specontext::cuda::GpuPresent("attention benchmark") ? specontext::cuda::Main() : 0;
}
