// splitmix64's finaliser: every input bit reaches every output bit. The mixing step of the
// chain keys over token blocks (the KV prefix cache, the retrieval head's prefix blocks).
#pragma once

#include <cstdint>

namespace specontext {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace specontext
