// Host cost of sampling one row of logits, the work the engine thread does per sequence and
// step while sampling runs on the CPU. Prints a table; not a test.
//   build/tests/sampler/sampler_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "engine/sampler/sampler.h"

namespace specontext {
namespace {

std::vector<float> Row(int vocab) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(vocab);
  for (float& l : logits) l = normal(rng);
  return logits;
}

// Arguments: vocabulary size, then the mode (0 greedy, 1 greedy with logprobs and 5 top
// alternatives, 2 temperature 0.8 with top-p 0.95).
void BM_SampleRow(benchmark::State& state) {
  const std::vector<float> logits = Row(static_cast<int>(state.range(0)));
  SamplingParams params;
  params.max_tokens = 1 << 20;
  params.temperature = state.range(1) == 2 ? 0.8f : 0.0f;
  params.top_p = state.range(1) == 2 ? 0.95f : 1.0f;
  params.logprobs = state.range(1) == 1;
  params.top_logprobs = state.range(1) == 1 ? 5 : 0;
  const Sampler sampler({2});
  uint64_t seed = 0;
  for (auto _ : state) {
    Result<SampleResult> result = sampler.Sample(logits, params, {.seed = ++seed});
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_SampleRow)
    ->ArgNames({"vocab", "mode"})
    ->ArgsProduct({{49152, 151936}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace specontext

BENCHMARK_MAIN();
