#include "engine/model/random_fill.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

#include "common/usable_cpus.h"

namespace specontext {
namespace {

constexpr int64_t kChunk = int64_t{1} << 20;

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

float Sample(const FillJob& job, int64_t i) {
  if (job.stddev == 0.0f) return job.mean;
  const uint64_t bits = Mix(job.seed ^ Mix(static_cast<uint64_t>(i)));
  const uint32_t sum = static_cast<uint32_t>(bits & 0xffff) + ((bits >> 16) & 0xffff) +
                       ((bits >> 32) & 0xffff) + (bits >> 48);
  // Four uniforms on [0, 1) have mean 2 and variance 1/3.
  constexpr float kScale = 1.7320508f / 65536.0f;
  return job.mean + job.stddev * (static_cast<float>(sum) - 2.0f * 65536.0f) * kScale;
}

void FillRange(const FillJob& job, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float value = Sample(job, i);
    switch (job.dtype) {
      case DType::kBF16: {
        const uint16_t bits = FloatToBf16(value);
        std::memcpy(job.data + i * 2, &bits, 2);
        break;
      }
      case DType::kF16: {
        const uint16_t bits = FloatToHalf(value);
        std::memcpy(job.data + i * 2, &bits, 2);
        break;
      }
      default:
        std::memcpy(job.data + i * 4, &value, 4);
        break;
    }
  }
}

}  // namespace

uint64_t HashName(std::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}

void FillRandom(std::span<const FillJob> jobs) {
  struct Piece {
    const FillJob* job;
    int64_t begin, end;
  };
  std::vector<Piece> pieces;
  for (const FillJob& job : jobs) {
    for (int64_t begin = 0; begin < job.count; begin += kChunk) {
      pieces.push_back({&job, begin, std::min(job.count, begin + kChunk)});
    }
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < pieces.size(); i = next++) {
      FillRange(*pieces[i].job, pieces[i].begin, pieces[i].end);
    }
  };
  const size_t threads = std::min<size_t>(static_cast<size_t>(UsableCpus()), pieces.size());
  std::vector<std::jthread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
}

}  // namespace specontext
