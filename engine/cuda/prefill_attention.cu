#include "engine/cuda/cuda_check.h"
#include "engine/cuda/kernel_util.cuh"
#include "engine/cuda/prefill_attention.h"

namespace specontext::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kTileK = 64;
// Up to this many new tokens per sequence the 64-row tile wastes less on rows past q_len; above
// it 128-row tiles (two row tiles per warp) are faster at every length measured.
constexpr int kShortPromptRows = 64;
constexpr float kLog2e = 1.4426950408889634f;

struct PrefillParams {
  PrefillAttentionArgs a;
  void* const* block_table;
  int max_blocks;
  int num_kv_heads;
  int block_shift;
  int group;
};

// 2^x by the special-function unit alone (exp2f adds range handling that these arguments,
// all <= 0 or -inf, never need).
__device__ __forceinline__ float FastExp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Four 8x8 16-bit matrices from shared memory; lane l gives the row address of matrix l / 8 and
// receives, from matrix i, register i: row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 (with
// .trans, the same of the transposed matrix) -- the B fragment layout of mma.m16n8k16.
template <bool kTrans>
__device__ __forceinline__ void LoadMatrixX4(const uint16_t* row, uint32_t (&r)[4]) {
  const uint32_t saddr = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  if constexpr (kTrans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(saddr));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(saddr));
  }
}

// 16 bytes global -> shared without passing through registers; zero-filled when !valid.
__device__ __forceinline__ void CopyAsync16(uint16_t* dst, const void* src, bool valid) {
  const uint32_t saddr = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void CopyAsyncCommit() { asm volatile("cp.async.commit_group;\n"); }
template <int kPending>
__device__ __forceinline__ void CopyAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// Grid: (query tiles, query heads, sequences); 4 warps, each owning kRowTiles x 16 query rows.
// Shared memory holds two stages of K and V tiles (the next one loads while this one computes),
// rows padded by 8 elements so the fragment loads of 8 rows hit 32 distinct banks.
// - kRowTiles 1: Q fragments stay in registers, and the Q tile passes through the second stage
//   on its way there, before that stage's first load; 3 CTAs per multiprocessor.
// - kRowTiles 2: every K and V fragment feeds two row tiles, which halves the shared-memory
//   reads per MMA; Q fragments are read from their own shared tile per step, and the
//   accumulators need the registers of 2 CTAs per multiprocessor.
// Fragment layouts are those of mma.m16n8k16: lane = 4 * group + quad.
template <typename T, int kHeadDim, int kRowTiles>
__global__ void __launch_bounds__(kWarps * 32, kRowTiles == 1 ? 3 : 2)
    PrefillKernel(PrefillParams p) {
  constexpr int kWarpRows = 16 * kRowTiles;
  constexpr int kTileQ = kWarps * kWarpRows;
  constexpr int kLd = kHeadDim + 8;
  constexpr int kChunks = kHeadDim / 8;  // 16-byte pieces per row
  constexpr int kThreads = kWarps * 32;
  constexpr int kSteps = kHeadDim / 16;  // k-steps of Q·Kᵀ
  static_assert(kThreads % kChunks == 0 && (kRowTiles == 2 || kTileQ <= 2 * kTileK));
  extern __shared__ uint4 smem_raw[];
  // Stage s: K rows at stages + 2 s kTileK kLd, V rows right after; then Q for kRowTiles 2.
  uint16_t* const stages = reinterpret_cast<uint16_t*>(smem_raw);
  uint16_t* const qs = stages + (kRowTiles == 1 ? 2 : 4) * kTileK * kLd;

  const PrefillAttentionArgs& a = p.a;
  const int seq = blockIdx.z, head = blockIdx.y;
  // Later query tiles have more keys: start them first.
  const int tile = gridDim.x - 1 - blockIdx.x;
  const int q_len = a.q_len[seq];
  if (tile * kTileQ >= q_len) return;
  const int kv_len = a.kv_len[seq];
  const int past = kv_len - q_len;
  const int row0 = a.q_start[seq] + tile * kTileQ;
  const int kv_head = head / p.group;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int grp = lane / 4, quad = lane % 4;

  void* const* table = p.block_table + static_cast<size_t>(seq) * p.max_blocks;
  const int block_mask = (1 << p.block_shift) - 1;
  const size_t half_block = static_cast<size_t>(p.num_kv_heads) << p.block_shift;
  const int key_end = past + min(q_len, (tile + 1) * kTileQ);  // one past the last query
  // Each thread copies the same 16-byte column of every (kThreads / kChunks)-th row. Positions
  // past kv_len are zero-filled: masked scores, and zero (not poison) V rows.
  auto load_tile = [&](int k0, int stage) {
    uint16_t* ks = stages + stage * 2 * kTileK * kLd;
    uint16_t* vs = ks + kTileK * kLd;
    const int col = (tid % kChunks) * 8;
#pragma unroll
    for (int r = tid / kChunks; r < kTileK; r += kThreads / kChunks) {
      const int pos = k0 + r;
      const bool valid = pos < kv_len;
      const uint16_t* src = static_cast<const uint16_t*>(a.q);  // any valid address when !valid
      if (valid) {
        src = static_cast<const uint16_t*>(table[pos >> p.block_shift]) +
              ((static_cast<size_t>(kv_head) << p.block_shift) + (pos & block_mask)) * kHeadDim +
              col;
      }
      CopyAsync16(ks + r * kLd + col, src, valid);
      CopyAsync16(vs + r * kLd + col, valid ? src + half_block * kHeadDim : src, valid);
    }
    CopyAsyncCommit();
  };
  load_tile(0, 0);

  for (int c = tid; c < kTileQ * kChunks; c += kThreads) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    uint4 v{0, 0, 0, 0};
    if (tile * kTileQ + r < q_len) {
      v = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(a.q) +
                                          static_cast<size_t>(row0 + r) * a.q_stride +
                                          head * kHeadDim + col);
    }
    *reinterpret_cast<uint4*>(qs + r * kLd + col) = v;
  }
  __syncthreads();
  // A fragments of Q for row tile mt, k-step kk: lanes 0-15 address rows 0-15 at column 0,
  // lanes 16-31 the same rows at column 8 (matrices: rows 0-7 / 8-15 x columns 0-7 / 8-15).
  const uint16_t* const q_frag_row = qs + (warp * kWarpRows + lane % 16) * kLd + lane / 16 * 8;
  uint32_t qf[kRowTiles == 1 ? kSteps : 1][4];
  if constexpr (kRowTiles == 1) {
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) LoadMatrixX4<false>(q_frag_row + kk * 16, qf[kk]);
    __syncthreads();  // every warp holds its Q before stage 1 is overwritten
  }
  // Positions of this thread's rows (grp and grp + 8 of each row tile). Rows past q_len compute
  // on zeros and are not stored; key 0 is visible to every row, so no row's running maximum
  // stays at -inf.
  int qpos[kRowTiles][2];
#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt) {
    qpos[mt][0] = past + tile * kTileQ + warp * kWarpRows + mt * 16 + grp;
    qpos[mt][1] = qpos[mt][0] + 8;
  }
  // The last position this warp's rows see: later key tiles are all masked for it.
  const int warp_last = past + min(q_len - 1, tile * kTileQ + warp * kWarpRows + kWarpRows - 1);
  const float scale = a.scale * kLog2e;

  float o[kRowTiles][kHeadDim / 8][4];
  float m[kRowTiles][2], l[kRowTiles][2];
#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt) {
#pragma unroll
    for (int n = 0; n < kHeadDim / 8; ++n)
      o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0;
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.0f;
  }

  for (int k0 = 0, stage = 0; k0 < key_end; k0 += kTileK, stage ^= 1) {
    if (k0 + kTileK < key_end) {
      load_tile(k0 + kTileK, stage ^ 1);
      CopyAsyncWait<1>();
    } else {
      CopyAsyncWait<0>();
    }
    __syncthreads();  // this stage's copies, from every thread, have landed
    if (k0 > warp_last) {
      __syncthreads();
      continue;
    }
    const uint16_t* ks = stages + stage * 2 * kTileK * kLd;
    const uint16_t* vs = ks + kTileK * kLd;

    // S = Q Kᵀ: one ldmatrix.x4 yields the B fragments of key tiles n and n + 1 (matrices: keys
    // of tile n, dims kk·16 + 0..7 and + 8..15, then the same for tile n + 1). kk outermost:
    // consecutive MMAs go to different accumulators, so none waits on the one before.
    float s[kRowTiles][kTileK / 8][4];
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt) {
#pragma unroll
      for (int n = 0; n < kTileK / 8; ++n)
        s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0;
    }
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) {
      uint32_t qa[kRowTiles][4];
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt) {
        if constexpr (kRowTiles == 1) {
#pragma unroll
          for (int r = 0; r < 4; ++r) qa[mt][r] = qf[kk][r];
        } else {
          LoadMatrixX4<false>(q_frag_row + mt * 16 * kLd + kk * 16, qa[mt]);
        }
      }
#pragma unroll
      for (int n = 0; n < kTileK / 8; n += 2) {
        uint32_t b[4];
        LoadMatrixX4<false>(
            ks + ((n + lane / 16) * 8 + lane % 8) * kLd + kk * 16 + (lane / 8) % 2 * 8, b);
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt) {
          Mma<T>(s[mt][n], qa[mt], b[0], b[1]);
          Mma<T>(s[mt][n + 1], qa[mt], b[2], b[3]);
        }
      }
    }
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt) {
      // Only tiles reaching past this row tile's first position need the causal mask.
      const bool needs_mask = k0 + kTileK - 1 > qpos[mt][0];
      float row_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int n = 0; n < kTileK / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = k0 + n * 8 + quad * 2 + (e & 1);
          s[mt][n][e] = !needs_mask || key <= qpos[mt][e / 2] ? s[mt][n][e] * scale : -INFINITY;
          row_max[e / 2] = fmaxf(row_max[e / 2], s[mt][n][e]);
        }
      }
      float alpha[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        row_max[h] = fmaxf(row_max[h], __shfl_xor_sync(0xffffffffu, row_max[h], 1));
        row_max[h] = fmaxf(row_max[h], __shfl_xor_sync(0xffffffffu, row_max[h], 2));
        const float m_new = fmaxf(m[mt][h], row_max[h]);
        alpha[h] = FastExp2(m[mt][h] - m_new);
        m[mt][h] = m_new;
        l[mt][h] *= alpha[h];
      }
#pragma unroll
      for (int n = 0; n < kTileK / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[mt][n][e] = FastExp2(s[mt][n][e] - m[mt][e / 2]);
          l[mt][e / 2] += s[mt][n][e];
        }
      }
#pragma unroll
      for (int n = 0; n < kHeadDim / 8; ++n) {
        o[mt][n][0] *= alpha[0], o[mt][n][1] *= alpha[0];
        o[mt][n][2] *= alpha[1], o[mt][n][3] *= alpha[1];
      }
    }
    // P (the score fragments, rounded to 16 bits) is the A operand of P·V as it stands.
#pragma unroll
    for (int kk = 0; kk < kTileK / 16; ++kk) {
      uint32_t pa[kRowTiles][4];
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt) {
        pa[mt][0] = Pack2<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pa[mt][1] = Pack2<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pa[mt][2] = Pack2<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pa[mt][3] = Pack2<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
      // Transposed loads of V give the B fragments of dim tiles n and n + 1 (matrices: keys
      // kk·16 + 0..7 and + 8..15 of tile n, then of tile n + 1).
#pragma unroll
      for (int n = 0; n < kHeadDim / 8; n += 2) {
        uint32_t b[4];
        LoadMatrixX4<true>(
            vs + (kk * 16 + (lane / 8) % 2 * 8 + lane % 8) * kLd + (n + lane / 16) * 8, b);
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt) {
          Mma<T>(o[mt][n], pa[mt], b[0], b[1]);
          Mma<T>(o[mt][n + 1], pa[mt], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // the next iteration's copy overwrites this stage
  }

#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float sum = l[mt][h];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int r = warp * kWarpRows + mt * 16 + grp + 8 * h;
      if (tile * kTileQ + r >= q_len) continue;
      const float inv = 1.0f / sum;
      uint16_t* dst = static_cast<uint16_t*>(a.out) + static_cast<size_t>(row0 + r) * a.out_stride +
                      head * kHeadDim + quad * 2;
#pragma unroll
      for (int n = 0; n < kHeadDim / 8; ++n) {
        *reinterpret_cast<uint32_t*>(dst + n * 8) =
            Pack2<T>(o[mt][n][2 * h] * inv, o[mt][n][2 * h + 1] * inv);
      }
    }
  }
}

template <typename T, int kHeadDim, int kRowTiles>
Status Launch(const PrefillParams& p, cudaStream_t stream) {
  constexpr int kTileQ = kWarps * 16 * kRowTiles;
  const size_t smem =
      sizeof(uint16_t) * (4 * kTileK + (kRowTiles == 1 ? 0 : kTileQ)) * (kHeadDim + 8);
  SPC_CUDA(cudaFuncSetAttribute(PrefillKernel<T, kHeadDim, kRowTiles>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid((p.a.max_q_len + kTileQ - 1) / kTileQ, p.a.num_q_heads, p.a.num_seqs);
  PrefillKernel<T, kHeadDim, kRowTiles><<<grid, kWarps * 32, smem, stream>>>(p);
  return CheckLaunch("PrefillAttention");
}

template <typename T, int kHeadDim>
Status LaunchTile(const PrefillParams& p, int tile_rows, cudaStream_t stream) {
  return tile_rows == 64 ? Launch<T, kHeadDim, 1>(p, stream) : Launch<T, kHeadDim, 2>(p, stream);
}

}  // namespace

Status PrefillAttention(const PrefillAttentionArgs& args, const PagedKv& kv, cudaStream_t stream) {
  SPC_RETURN_IF_ERROR(kv.Validate("PrefillAttention"));
  if (kv.head_dim == 256) return Unimplemented("PrefillAttention: head_dim 256");
  if (args.num_seqs < 0 || args.num_q_heads <= 0 || args.num_q_heads % kv.num_kv_heads != 0 ||
      args.max_q_len < 0 || args.q_start == nullptr || args.q_len == nullptr ||
      args.kv_len == nullptr) {
    return InvalidArgument("PrefillAttention: needs sequences, row offsets and lengths");
  }
  if (args.num_seqs == 0 || args.max_q_len == 0) return Status::Ok();
  if (args.q_stride % 8 != 0 || !Aligned16({args.q})) {
    return InvalidArgument("PrefillAttention: q rows must be 16-byte aligned");
  }
  if (args.out_stride % 2 != 0 || reinterpret_cast<uintptr_t>(args.out) % 4 != 0) {
    return InvalidArgument("PrefillAttention: out rows must be 4-byte aligned");
  }
  if (args.tile_rows != 0 && args.tile_rows != 64 && args.tile_rows != 128) {
    return InvalidArgument("PrefillAttention: tile_rows is 64 or 128");
  }
  const int tile_rows =
      args.tile_rows != 0 ? args.tile_rows : (args.max_q_len > kShortPromptRows ? 128 : 64);
  PrefillParams p{
      args, kv.block_table, kv.max_blocks, kv.num_kv_heads, 0, args.num_q_heads / kv.num_kv_heads};
  while ((1 << p.block_shift) < kv.block_tokens) ++p.block_shift;
  return DispatchHalfType(kv.dtype, "PrefillAttention", [&](auto tag) -> Status {
    using T = decltype(tag);
    return kv.head_dim == 64 ? LaunchTile<T, 64>(p, tile_rows, stream)
                             : LaunchTile<T, 128>(p, tile_rows, stream);
  });
}

}  // namespace specontext::cuda
