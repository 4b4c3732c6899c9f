// The key of a block of tokens that follows the block keyed `parent` (0: the first block):
// splitmix64's finaliser over the parent and every token, so a key stands for the whole prefix
// up to the block's end. Never 0. The KV prefix cache and the retrieval head's prefix blocks key
// their blocks with it.
#pragma once

#include <cstdint>
#include <span>

namespace specontext {

inline uint64_t TokenChainHash(uint64_t parent, std::span<const int32_t> tokens) {
  const auto mix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  uint64_t h = mix(parent ^ 0x5bd1e9955bd1e995ull);
  for (int32_t t : tokens) h = mix(h ^ static_cast<uint32_t>(t));
  return h == 0 ? 1 : h;
}

}  // namespace specontext
