#include <cub/block/block_scan.cuh>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/selection_kernels.h"

namespace specontext::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kMaxGroup = 16;
constexpr int kScoreThreads = 128;
constexpr int kStatThreads = 256;
constexpr int kSelectThreads = 1024;

__host__ __device__ inline int WarpTiles(int length) { return (length + 31) / 32; }

struct Workspace {
  float* scores;    // [rows][q_heads][max_length], log2 domain
  float2* partial;  // [rows][q_heads][warp tiles]: max, sum of exp2(score - max) per 32 positions
  float* stats;     // [rows][q_heads][2]: max, sum of exp2(score - max)
  float* weights;   // [rows][kv_heads][max_length]: the group-max softmax weights
  float* ranking;   // [rows][kv_heads][max_length]: what the top-B ranks (weights, or the memory's)
};

// Sections start at 16-byte boundaries: the partial statistics are read as float2, and the
// scores of 9 heads of an odd length end at any 4-byte offset.
size_t Padded(size_t floats) { return (floats + 3) / 4 * 4; }

Workspace Carve(void* base, int rows, int q_heads, int kv_heads, int max_length) {
  auto* f = static_cast<float*>(base);
  Workspace w;
  w.scores = f;
  w.partial = reinterpret_cast<float2*>(w.scores + Padded(size_t(rows) * q_heads * max_length));
  w.stats = reinterpret_cast<float*>(w.partial + size_t(rows) * q_heads * WarpTiles(max_length));
  w.weights = w.stats + Padded(size_t(rows) * q_heads * 2);
  w.ranking = w.weights + size_t(rows) * kv_heads * max_length;
  return w;
}

// Adds v over the kLanes lanes that share a K row, transposed: each halving of the lanes also
// halves the values a lane carries (the lanes with bit kOffset set keep the upper half), so
// kCap heads take about kCap + log2(kLanes) shuffles instead of kCap * log2(kLanes). A lane
// ends with max(1, kCap / kLanes) sums, of heads first_head and up.
template <int kOffset, int kWidth, int kCap>
__device__ __forceinline__ void ReduceTransposed(float (&v)[kCap], int sub, int& first_head) {
  if constexpr (kOffset > 0) {
    if constexpr (kWidth > 1) {
      constexpr int kHalf = kWidth / 2;
      const bool upper = (sub & kOffset) != 0;
#pragma unroll
      for (int i = 0; i < kHalf; ++i) {
        const float send = upper ? v[i] : v[i + kHalf];
        const float keep = upper ? v[i + kHalf] : v[i];
        v[i] = keep + __shfl_xor_sync(0xffffffffu, send, kOffset);
      }
      if (upper) first_head += kHalf;
      ReduceTransposed<kOffset / 2, kHalf, kCap>(v, sub, first_head);
    } else {
      v[0] += __shfl_xor_sync(0xffffffffu, v[0], kOffset);
      ReduceTransposed<kOffset / 2, 1, kCap>(v, sub, first_head);
    }
  }
}

// Grid (position tiles of kScoreThreads, kv_heads, rows). Each warp scores 32 positions for
// every query head of the group (at most kCap): head_dim / 8 lanes read one K row together
// (16 bytes each, so a warp reads whole rows, adjacent in the block), each lane keeps its eighth
// of every head's q in registers, the partial dot products are added by a transposed reduction,
// and the warp writes each head's 32 scores at once through shared memory.
template <typename T, int kHeadDim, int kCap>
__global__ void ScoreKernel(SelectionArgs a, PagedKv kv, int block_shift, Workspace ws) {
  constexpr int kLanes = kHeadDim / 8;               // lanes per K row
  constexpr int kRows = 32 / kLanes;                 // rows a warp reads per round
  constexpr int kRounds = 32 / kRows;                // rounds for its 32 positions
  constexpr int kBatch = kRounds < 4 ? kRounds : 4;  // rounds whose loads are in flight at once
  constexpr int kSums = kCap < kLanes ? 1 : kCap / kLanes;    // sums a lane holds after reducing
  constexpr int kCopies = kCap < kLanes ? kLanes / kCap : 1;  // lanes holding the same sums
  __shared__ float scores_smem[kScoreThreads / 32][kCap][32];
  const int row = blockIdx.z, kv_head = blockIdx.y;
  const int group = a.num_q_heads / kv.num_kv_heads, head0 = kv_head * group;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int len = a.lengths[row];
  const int first = blockIdx.x * blockDim.x + warp * 32;
  if (first >= len) return;
  const int sub = lane % kLanes, mask = (1 << block_shift) - 1;
  float qr[kCap][8];
  const T* q = static_cast<const T*>(a.q) + size_t(row) * a.q_stride + size_t(head0) * kHeadDim;
#pragma unroll
  for (int g = 0; g < kCap; ++g) {
    if (g < group) {
      Unpack8<T>(*reinterpret_cast<const uint4*>(q + g * kHeadDim + sub * 8), qr[g]);
#pragma unroll
      for (int j = 0; j < 8; ++j) qr[g][j] *= a.scale * kLog2e;
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) qr[g][j] = 0.0f;
    }
  }
  float(*scores)[32] = scores_smem[warp];
  void* const* table = kv.block_table + size_t(row) * kv.max_blocks;
  for (int round0 = 0; round0 < kRounds; round0 += kBatch) {
    uint4 raw[kBatch];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int p = first + (round0 + b) * kRows + lane / kLanes;
      if (p < len) {
        raw[b] = *reinterpret_cast<const uint4*>(
            static_cast<const T*>(table[p >> block_shift]) +
            ((size_t(kv_head) << block_shift) + (p & mask)) * kHeadDim + sub * 8);
      } else {
        raw[b] = uint4{0u, 0u, 0u, 0u};
      }
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      float kf[8], v[kCap];
      Unpack8<T>(raw[b], kf);
#pragma unroll
      for (int g = 0; g < kCap; ++g) {
        v[g] = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j) v[g] += qr[g][j] * kf[j];
      }
      int first_head = 0;
      ReduceTransposed<kLanes / 2, kCap, kCap>(v, sub, first_head);
      if (sub % kCopies == 0) {
#pragma unroll
        for (int i = 0; i < kSums; ++i) {
          scores[first_head + i][(round0 + b) * kRows + lane / kLanes] = v[i];
        }
      }
    }
  }
  __syncwarp();
  // Each head's scores go out whole, with their softmax statistics over these 32 positions, so
  // the statistics over the row need not read the scores again.
  const int count = min(32, len - first);
  for (int g = 0; g < group; ++g) {
    const size_t head_row = size_t(row) * a.num_q_heads + head0 + g;
    const float s = lane < count ? scores[g][lane] : -INFINITY;
    if (lane < count) ws.scores[head_row * a.max_length + first + lane] = s;
    const float m = WarpMax(s);
    const float l = WarpSum(lane < count ? exp2f(s - m) : 0.0f);
    if (lane == 0) ws.partial[head_row * WarpTiles(a.max_length) + first / 32] = make_float2(m, l);
  }
}

// Grid (q_heads, rows): the softmax statistics of one query head over its row's positions,
// merged from those of its 32-position tiles.
__global__ void StatsKernel(SelectionArgs a, Workspace ws) {
  __shared__ float scratch[32];
  const int head = blockIdx.x, row = blockIdx.y, tiles = WarpTiles(a.lengths[row]);
  const float2* part = ws.partial + (size_t(row) * a.num_q_heads + head) * WarpTiles(a.max_length);
  float m = -INFINITY;
  for (int t = threadIdx.x; t < tiles; t += blockDim.x) m = fmaxf(m, part[t].x);
  m = BlockMax(m, scratch);
  float l = 0.0f;
  for (int t = threadIdx.x; t < tiles; t += blockDim.x) l += part[t].y * exp2f(part[t].x - m);
  l = BlockSum(l, scratch);
  if (threadIdx.x == 0) {
    ws.stats[(size_t(row) * a.num_q_heads + head) * 2] = m;
    ws.stats[(size_t(row) * a.num_q_heads + head) * 2 + 1] = l;
  }
}

// Grid (position tiles, kv_heads, rows): the largest softmax weight over the group's heads.
__global__ void GroupMaxKernel(SelectionArgs a, int num_kv_heads, Workspace ws) {
  const int row = blockIdx.z, kv_head = blockIdx.y, len = a.lengths[row];
  const int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= len) return;
  const int group = a.num_q_heads / num_kv_heads;
  float w = 0.0f;
  for (int g = 0; g < group; ++g) {
    const size_t head_row = size_t(row) * a.num_q_heads + kv_head * group + g;
    const float m = ws.stats[head_row * 2], l = ws.stats[head_row * 2 + 1];
    w = fmaxf(w, exp2f(ws.scores[head_row * a.max_length + p] - m) / l);
  }
  const size_t at = (size_t(row) * num_kv_heads + kv_head) * a.max_length + p;
  ws.weights[at] = w;
  if (a.memory_decay > 0.0f) {
    float* memory = a.memory[row] + size_t(p) * num_kv_heads + kv_head;
    const float rank = p < a.remembered[row] ? fmaxf(w, a.memory_decay * *memory) : w;
    *memory = rank;
    ws.ranking[at] = rank;
  }
}

// Weights are in [0, 1], so their bit patterns order like the values; forced positions rank
// above every weight.
__device__ __forceinline__ uint32_t RankKey(const float* w, int p, int len,
                                            const SelectionArgs& a) {
  if (p < a.sinks || p >= len - a.window) return 0xffffffffu;
  const float v = w[p];
  return v > 0.0f ? __float_as_uint(v) : 0u;
}

// Grid (kv_heads, rows): radix-select the B-th largest key, then write every larger position and
// the lowest-positioned ties in ascending order.
__global__ void __launch_bounds__(kSelectThreads)
    SelectKernel(SelectionArgs a, int num_kv_heads, Workspace ws) {
  using Scan = cub::BlockScan<int, kSelectThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ int hist[256];
  __shared__ uint32_t prefix_s;
  __shared__ int need_s;
  __shared__ float scratch[32];
  const int kv_head = blockIdx.x, row = blockIdx.y, len = a.lengths[row];
  const size_t slot = size_t(row) * num_kv_heads + kv_head;
  const float* w = ws.weights + slot * a.max_length;
  const float* rank = a.memory_decay > 0.0f ? ws.ranking + slot * a.max_length : w;
  int32_t* out = a.indices + slot * a.budget;
  if (len <= a.budget) {
    for (int p = threadIdx.x; p < len; p += blockDim.x) out[p] = p;
    if (threadIdx.x == 0) a.counts[slot] = len, a.mass[slot] = 1.0f;
    return;
  }
  uint32_t prefix = 0, mask = 0;
  int need = a.budget;  // how many of the keys matching prefix/mask are still to take
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    // Most weights share their high bits, so the lanes of a warp count as one per digit:
    // shared-memory atomics on one address would otherwise run one lane at a time.
    for (int base = 0; base < len; base += blockDim.x) {
      const int p = base + threadIdx.x;
      const uint32_t key = p < len ? RankKey(rank, p, len, a) : 0u;
      const int digit = p < len && (key & mask) == prefix ? int((key >> shift) & 255) : -1;
      const unsigned peers = __match_any_sync(0xffffffffu, digit);
      if (digit >= 0 && threadIdx.x % 32 == __ffs(peers) - 1) {
        atomicAdd(&hist[digit], __popc(peers));
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int above = 0, digit = 0;
      for (digit = 255; digit > 0 && above + hist[digit] < need; --digit) above += hist[digit];
      prefix_s = prefix | (uint32_t(digit) << shift);
      need_s = need - above;
    }
    __syncthreads();
    prefix = prefix_s;
    need = need_s;
    mask |= 255u << shift;
  }
  // prefix is now the B-th largest key; `need` ties at that key are taken, lowest positions first.
  int written = 0, ties_seen = 0;
  float selected = 0.0f, total = 0.0f;
  for (int base = 0; base < len; base += blockDim.x) {
    const int p = base + threadIdx.x;
    const uint32_t key = p < len ? RankKey(rank, p, len, a) : 0u;
    const bool tie = p < len && key == prefix;
    int tie_rank, tie_total;
    Scan(scan_storage).ExclusiveSum(tie ? 1 : 0, tie_rank, tie_total);
    __syncthreads();
    const bool take = p < len && (key > prefix || (tie && ties_seen + tie_rank < need));
    int out_rank, taken;
    Scan(scan_storage).ExclusiveSum(take ? 1 : 0, out_rank, taken);
    __syncthreads();
    if (take) out[written + out_rank] = p;
    if (p < len) {
      total += w[p];
      if (take) selected += w[p];
    }
    written += taken;
    ties_seen += tie_total;
  }
  selected = BlockSum(selected, scratch);
  total = BlockSum(total, scratch);
  if (threadIdx.x == 0) {
    a.counts[slot] = written;
    a.mass[slot] = total > 0.0f ? selected / total : 1.0f;
  }
}

template <typename T, int kHeadDim>
Status Launch(const SelectionArgs& a, const PagedKv& kv, const Workspace& ws, cudaStream_t stream) {
  int block_shift = 0;
  while ((1 << block_shift) < kv.block_tokens) ++block_shift;
  const int group = a.num_q_heads / kv.num_kv_heads;
  const int tiles = (a.max_length + kScoreThreads - 1) / kScoreThreads;
  const dim3 grid(tiles, kv.num_kv_heads, a.rows);
  if (group <= 4) {
    ScoreKernel<T, kHeadDim, 4><<<grid, kScoreThreads, 0, stream>>>(a, kv, block_shift, ws);
  } else if (group <= 8) {
    ScoreKernel<T, kHeadDim, 8><<<grid, kScoreThreads, 0, stream>>>(a, kv, block_shift, ws);
  } else {
    ScoreKernel<T, kHeadDim, kMaxGroup><<<grid, kScoreThreads, 0, stream>>>(a, kv, block_shift, ws);
  }
  SPC_RETURN_IF_ERROR(CheckLaunch("SelectPositions scores"));
  StatsKernel<<<dim3(a.num_q_heads, a.rows), kStatThreads, 0, stream>>>(a, ws);
  SPC_RETURN_IF_ERROR(CheckLaunch("SelectPositions softmax"));
  const int wtiles = (a.max_length + kStatThreads - 1) / kStatThreads;
  GroupMaxKernel<<<dim3(wtiles, kv.num_kv_heads, a.rows), kStatThreads, 0, stream>>>(
      a, kv.num_kv_heads, ws);
  SPC_RETURN_IF_ERROR(CheckLaunch("SelectPositions group max"));
  SelectKernel<<<dim3(kv.num_kv_heads, a.rows), kSelectThreads, 0, stream>>>(a, kv.num_kv_heads,
                                                                             ws);
  return CheckLaunch("SelectPositions top-B");
}

}  // namespace

size_t SelectionWorkspaceBytes(int rows, int num_q_heads, int num_kv_heads, int max_length) {
  return sizeof(float) *
         (Padded(size_t(rows) * num_q_heads * max_length) +
          2 * size_t(rows) * num_q_heads * WarpTiles(max_length) +
          Padded(size_t(rows) * num_q_heads * 2) + 2 * size_t(rows) * num_kv_heads * max_length);
}

Status SelectPositions(const SelectionArgs& args, const PagedKv& head_k, void* workspace,
                       size_t workspace_bytes, cudaStream_t stream) {
  SPC_RETURN_IF_ERROR(head_k.Validate("SelectPositions"));
  const int kv_heads = head_k.num_kv_heads;
  if (args.rows <= 0 || args.num_q_heads <= 0 || args.num_q_heads % kv_heads != 0 ||
      args.num_q_heads / kv_heads > kMaxGroup) {
    return InvalidArgument("SelectPositions: needs rows and a GQA group of at most 16 heads");
  }
  if (args.budget <= 0 || args.sinks < 0 || args.window < 0 ||
      args.sinks + args.window > args.budget || args.max_length <= 0) {
    return InvalidArgument(
        "SelectPositions: needs a budget of at least sinks + window and a length");
  }
  if (args.q == nullptr || args.lengths == nullptr || args.indices == nullptr ||
      args.counts == nullptr || args.mass == nullptr) {
    return InvalidArgument("SelectPositions: missing input or output arrays");
  }
  if (!(args.memory_decay >= 0.0f && args.memory_decay <= 1.0f) ||
      (args.memory_decay > 0.0f && (args.memory == nullptr || args.remembered == nullptr))) {
    return InvalidArgument(
        "SelectPositions: memory_decay must be in [0, 1], and a memory needs its arrays");
  }
  // Each lane reads its 8 elements of q in one 16-byte load.
  if (!Aligned16({args.q, workspace}) || args.q_stride % 8 != 0) {
    return InvalidArgument(
        "SelectPositions: q and the workspace must be 16-byte aligned and "
        "q_stride a multiple of 8");
  }
  if (workspace == nullptr ||
      workspace_bytes <
          SelectionWorkspaceBytes(args.rows, args.num_q_heads, kv_heads, args.max_length)) {
    return InvalidArgument("SelectPositions: workspace too small");
  }
  const Workspace ws = Carve(workspace, args.rows, args.num_q_heads, kv_heads, args.max_length);
  return DispatchHalfType(head_k.dtype, "SelectPositions", [&](auto tag) -> Status {
    using T = decltype(tag);
    switch (head_k.head_dim) {
      case 64:
        return Launch<T, 64>(args, head_k, ws, stream);
      case 128:
        return Launch<T, 128>(args, head_k, ws, stream);
      default:
        return Launch<T, 256>(args, head_k, ws, stream);
    }
  });
}

}  // namespace specontext::cuda
