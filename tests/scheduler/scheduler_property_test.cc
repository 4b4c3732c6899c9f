// Randomized property test: random arrivals, lengths, priorities and cancellations against a
// KV store far smaller than demand. Every request must end (finished, cancelled, or failed with
// a reason), no block may leak, and preemption must stay bounded.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <thread>

#include "tests/scheduler/engine_fixture.h"

namespace specontext::testing {
namespace {

struct Submitted {
  std::shared_ptr<RequestStream> stream;
  bool cancel = false;
  int prompt_len = 0;
  int max_tokens = 0;
};

// Counts what the engine did, for the scale reported with the results.
struct StepCounter : EngineObserver {
  void OnStep(const StepStats& stats) override {
    if (stats.prefill_tokens + stats.decode_tokens == 0) return;  // the idle report
    steps++;
    tokens += stats.prefill_tokens + stats.decode_tokens;
  }
  int64_t steps = 0;
  int64_t tokens = 0;
};

TEST(SchedulerPropertyTest, RandomLoadEndsEveryRequestAndLeaksNothing) {
  constexpr int kRequests = 600;
  StepCounter counter;
  EngineFixtureOptions options;
  options.observer = &counter;
  options.host_blocks = 2 * 24;  // 384 positions per layer, shared by everyone
  options.scheduler.max_running = 8;
  options.scheduler.max_step_tokens = 48;
  options.scheduler.max_waiting = kRequests;
  EngineFixture engine(options);
  const int vocab = engine.config().vocab_size;

  std::mt19937 rng(20261123);
  std::vector<Submitted> submitted;
  for (int i = 0; i < kRequests; ++i) {
    Submitted s;
    s.prompt_len = std::uniform_int_distribution<int>(1, 150)(rng);
    s.max_tokens = std::uniform_int_distribution<int>(1, 30)(rng);
    s.cancel = std::uniform_int_distribution<int>(0, 4)(rng) == 0;
    GenerationRequest request;
    request.id = "r" + std::to_string(i);
    request.prompt_tokens = MakePrompt(s.prompt_len, vocab, 1000 + i);
    request.sampling.temperature = 0.8f;
    request.sampling.seed = i;
    request.sampling.max_tokens = s.max_tokens;
    request.sampling.ignore_eos = true;
    request.priority = std::uniform_int_distribution<int>(0, 3)(rng);
    auto stream = engine.loop().Submit(std::move(request));
    ASSERT_TRUE(stream.ok()) << stream.status().ToString();
    s.stream = *stream;
    if (s.cancel) s.stream->Cancel();
    submitted.push_back(std::move(s));
    // Bursty arrivals: sometimes let the engine run a little between submissions.
    if (std::uniform_int_distribution<int>(0, 3)(rng) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  int finished = 0, cancelled = 0;
  for (const Submitted& s : submitted) {
    const EngineFixture::Outcome outcome = EngineFixture::Collect(*s.stream);
    if (s.cancel) {
      EXPECT_TRUE(outcome.finish == FinishReason::kAbort ||
                  outcome.finish == FinishReason::kLength);
      cancelled += outcome.finish == FinishReason::kAbort;
      continue;
    }
    // Nothing here exceeds the store, so every uncancelled request finishes normally.
    ASSERT_EQ(outcome.finish, FinishReason::kLength) << outcome.error.ToString();
    EXPECT_EQ(static_cast<int>(outcome.tokens.size()), s.max_tokens);
    EXPECT_EQ(outcome.usage.prompt_tokens, s.prompt_len);
    finished++;
  }
  EXPECT_GT(finished, kRequests / 2);
  EXPECT_GT(cancelled, 0);
  // Preemption happens under this pressure, but a request is not bounced endlessly.
  EXPECT_LT(engine.loop().preemptions(), 3 * kRequests);

  engine.loop().Stop(std::chrono::milliseconds(0));
  EXPECT_EQ(engine.loop().idle_check_failures(), 0);
  engine.store().DropUnusedPrefixes();
  EXPECT_TRUE(engine.store().CheckIntegrity().ok());
  EXPECT_EQ(engine.store().Usage(Tier::kHost).used_blocks, 0);
  const KvPlacement& placement = engine.placement();
  RecordProperty("steps", std::to_string(counter.steps));
  RecordProperty("preemptions", std::to_string(engine.loop().preemptions()));
  std::printf(
      "scale: %d requests (%d finished, %d cancelled), %lld steps, %lld tokens, %lld "
      "preemptions; memory decisions: %lld admit, %lld defer, %lld reject\n",
      kRequests, finished, cancelled, static_cast<long long>(counter.steps),
      static_cast<long long>(counter.tokens), static_cast<long long>(engine.loop().preemptions()),
      static_cast<long long>(placement.decisions(MemoryDecision::kAdmit)),
      static_cast<long long>(placement.decisions(MemoryDecision::kDefer)),
      static_cast<long long>(placement.decisions(MemoryDecision::kReject)));
}

}  // namespace
}  // namespace specontext::testing
