// Device helpers shared by the kernels: 16-byte vectors of eight 16-bit floats, conversions with
// fp32 arithmetic, warp and block reductions, the tensor-core MMA, and the host-side dispatch
// from DType to the element type.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "common/status.h"
#include "engine/dtype.h"

namespace specontext::cuda {

template <typename T>
__device__ __forceinline__ float ToFloat(T v);
template <>
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
__device__ __forceinline__ float ToFloat(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float ToFloat(float v) {
  return v;
}

template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half FromFloat(float v) {
  return __float2half_rn(v);
}

// Two adjacent 16-bit elements packed in 32 bits <-> two floats.
template <typename T>
__device__ __forceinline__ float2 Unpack2(uint32_t bits);
template <>
__device__ __forceinline__ float2 Unpack2<__nv_bfloat16>(uint32_t bits) {
  __nv_bfloat162 h;
  memcpy(&h, &bits, 4);
  return __bfloat1622float2(h);
}
template <>
__device__ __forceinline__ float2 Unpack2<__half>(uint32_t bits) {
  __half2 h;
  memcpy(&h, &bits, 4);
  return __half22float2(h);
}

template <typename T>
__device__ __forceinline__ uint32_t Pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t Pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  uint32_t bits;
  memcpy(&bits, &h, 4);
  return bits;
}
template <>
__device__ __forceinline__ uint32_t Pack2<__half>(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  uint32_t bits;
  memcpy(&bits, &h, 4);
  return bits;
}

// Eight 16-bit elements in one 16-byte load or store.
template <typename T>
__device__ __forceinline__ void Unpack8(const uint4& v, float (&f)[8]) {
  const float2 a = Unpack2<T>(v.x), b = Unpack2<T>(v.y), c = Unpack2<T>(v.z), d = Unpack2<T>(v.w);
  f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y, f[4] = c.x, f[5] = c.y, f[6] = d.x, f[7] = d.y;
}

template <typename T>
__device__ __forceinline__ uint4 Pack8(const float (&f)[8]) {
  return uint4{Pack2<T>(f[0], f[1]), Pack2<T>(f[2], f[3]), Pack2<T>(f[4], f[5]),
               Pack2<T>(f[6], f[7])};
}

// N consecutive elements (N = 8: one 16-byte access; N = 1: one element) as floats.
template <typename T, int N>
__device__ __forceinline__ void LoadN(const T* p, float (&f)[N]) {
  if constexpr (N == 8) {
    Unpack8<T>(*reinterpret_cast<const uint4*>(p), f);
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) f[i] = ToFloat(p[i]);
  }
}

template <typename T, int N>
__device__ __forceinline__ void StoreN(T* p, const float (&f)[N]) {
  if constexpr (N == 8) {
    *reinterpret_cast<uint4*>(p) = Pack8<T>(f);
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) p[i] = FromFloat<T>(f[i]);
  }
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the whole block; `scratch` holds one float per warp. Every thread gets the result.
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  v = WarpSum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0f;
  return WarpSum(v);
}

// Maximum over the whole block, as BlockSum.
__device__ __forceinline__ float BlockMax(float v, float* scratch) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  v = WarpMax(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return WarpMax(v);
}

// Tensor cores, mma.sync.m16n8k16: D (16x8, fp32) += A (16x16, row-major) x B (16x8,
// column-major), 16-bit operands in the PTX fragment layouts (lane = 4 * group + quad).
// Registers only, so not volatile: the compiler may interleave independent MMAs with other work.
template <typename T>
__device__ __forceinline__ void Mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Calls fn(T{}) with T the device type of a 16-bit float dtype; other dtypes are an error.
template <typename Fn>
Status DispatchHalfType(DType dtype, const char* what, Fn&& fn) {
  switch (dtype) {
    case DType::kBF16:
      return fn(__nv_bfloat16{});
    case DType::kF16:
      return fn(__half{});
    default:
      return InvalidArgument(std::string(what) + " supports BF16 and F16 tensors, not " +
                             std::string(DTypeName(dtype)));
  }
}

// True when every pointer is 16-byte aligned, so rows of a multiple of 8 elements can use
// 16-byte accesses.
inline bool Aligned16(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  }
  return true;
}

// The launch's own error (bad configuration) without waiting for the kernel to finish.
inline Status CheckLaunch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return Status::Ok();
  return Internal(std::string(what) + " launch failed: " + cudaGetErrorString(err));
}

}  // namespace specontext::cuda
