// What the server submits and what it gets back. The server turns JSON/proto into a
// GenerationRequest on its I/O threads; the engine thread pushes TokenEvents into the
// request's stream; the I/O side detokenizes and writes them out.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/sampler/sampler.h"
#include "engine/sampler/sampling_params.h"
#include "engine/specontext/step_planner.h"

namespace specontext {

struct GenerationRequest {
  std::string id;
  std::vector<int32_t> prompt_tokens;
  SamplingParams sampling;
  int priority = 0;  // lower runs first
  // SpeContext: kDefault runs the server's mode; kSpecontext needs a server with a planner.
  AttentionMode attention = AttentionMode::kDefault;
  int64_t sparse_budget = 0;  // positions per KV head (own position included); 0: the server's
  // A sparse decode step whose most likely next token is less likely than this runs again
  // densely (StepPlanner::RedoDense); unset: the server's threshold, 0: never.
  std::optional<double> sparse_redo_probability;
};

struct SampledToken {
  int32_t token = 0;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;  // when top_logprobs > 0
};

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;
};

// One message from the engine to the I/O side. The last one for a request has finish set.
struct TokenEvent {
  std::vector<SampledToken> tokens;
  FinishReason finish = FinishReason::kNone;
  bool stopped_by_token = false;  // finished by EOS or a stop token id (kStop)
  Status error;                   // when finish == kError
  Usage usage;                    // filled on the final event
};

// A single-producer (engine), single-consumer (I/O) stream of events with cancellation.
class RequestStream {
 public:
  void Push(TokenEvent event);
  // Blocks until an event arrives, the deadline passes (returns nullopt) or after the final one.
  std::optional<TokenEvent> Next(std::chrono::milliseconds timeout);
  // Non-blocking variant for event loops.
  std::optional<TokenEvent> TryNext();
  // Event loops register a wake-up instead of blocking a thread in Next: it runs on the pushing
  // thread after every Push (and once at registration if events are already queued), so it must
  // only schedule work (e.g. post to an executor), never do it.
  void SetWakeup(std::function<void()> wakeup);
  // Called by the I/O side when the client goes away; the engine frees the request's KV at
  // its next step.
  // `reason` is how the request is counted: kAbort for a client that went away, kStop when the
  // I/O side matched a stop string and needs no more tokens.
  void Cancel(FinishReason reason = FinishReason::kAbort) {
    cancel_reason_.store(reason);
    cancelled_.store(true);
  }
  bool cancelled() const { return cancelled_.load(); }
  FinishReason cancel_reason() const { return cancel_reason_.load(); }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<TokenEvent> events_;
  std::function<void()> wakeup_;
  std::atomic<bool> cancelled_{false};
  std::atomic<FinishReason> cancel_reason_{FinishReason::kAbort};
};

// The server's view of the engine: submit a request, read its stream.
class InferenceService {
 public:
  virtual ~InferenceService() = default;
  // Fails fast with kResourceExhausted (queue full), kInvalidArgument (prompt longer than the
  // context), kUnavailable (draining).
  virtual Result<std::shared_ptr<RequestStream>> Submit(GenerationRequest request) = 0;
};

}  // namespace specontext
