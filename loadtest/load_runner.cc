#include "loadtest/load_runner.h"

#include <exception>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace specontext::loadtest {

namespace asio = boost::asio;
using Clock = StreamClient::Clock;

namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// Warm-up prompts come from their own index range so they never prime the measured prompts.
constexpr uint64_t kWarmupIndexBase = uint64_t{1} << 48;
}  // namespace

// Coroutines cannot `return` a Status; this records it and ends the coroutine.
#define SPC_CO_ASSIGN_OR_FAIL(lhs, expr)           \
  auto SPC_CONCAT(_co_, __LINE__) = (expr);        \
  if (!SPC_CONCAT(_co_, __LINE__).ok()) {          \
    status_ = SPC_CONCAT(_co_, __LINE__).status(); \
    co_return;                                     \
  }                                                \
  lhs = std::move(SPC_CONCAT(_co_, __LINE__)).value()

// State of one run, alive for the duration of the io_context; single-threaded.
class LoadRunner::Session {
 public:
  Session(asio::io_context& io, const LoadRunner& runner) : runner_(runner), slot_freed_(io) {}

  asio::awaitable<void> Main() {
    for (uint64_t i = 0; i < runner_.options_.warmup_requests && status_.ok(); ++i) {
      RequestRecord record;
      SPC_CO_ASSIGN_OR_FAIL(auto body, BodyFor(kWarmupIndexBase + i, record));
      co_await runner_.client_.Stream(runner_.options_.path, std::move(body), Clock::now(), record);
      if (!record.success) status_ = Unavailable("warm-up request failed: " + record.error);
    }
    if (!status_.ok()) co_return;
    origin_ = Clock::now();
    co_await Dispatch();
  }

  Status status() const { return status_; }
  Clock::time_point origin() const { return origin_; }
  std::deque<RequestRecord>& records() { return records_; }
  size_t finished() const { return finished_; }
  size_t failed() const { return failed_; }

 private:
  Result<std::string> BodyFor(uint64_t index, RequestRecord& record) const {
    SPC_ASSIGN_OR_RETURN(SyntheticPrompt prompt, runner_.prompts_.Make(index));
    record.prompt_tokens = prompt.input_tokens;
    record.expected_answer = prompt.expected_answer;
    return BuildRequestBody(runner_.options_.api, runner_.options_.sampling, prompt);
  }

  asio::awaitable<void> Dispatch() {
    const LoadOptions& options = runner_.options_;
    const auto executor = co_await asio::this_coro::executor;
    const bool timed = options.duration_s > 0;
    const Clock::time_point end = origin_ + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(options.duration_s));
    asio::steady_timer arrival(executor);
    double next_arrival_s = 0;
    ArrivalProcess arrivals = runner_.arrivals_;
    for (uint64_t i = 0; options.num_requests == 0 || i < options.num_requests; ++i) {
      RequestRecord record;
      SPC_CO_ASSIGN_OR_FAIL(std::string body, BodyFor(i, record));
      if (i > 0) next_arrival_s += arrivals.NextGap();
      const Clock::time_point due = origin_ + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(next_arrival_s));
      if (timed && due >= end) break;
      arrival.expires_at(due);
      co_await arrival.async_wait(kNoThrow);
      while (options.max_concurrency > 0 && in_flight_ >= options.max_concurrency) {
        slot_freed_.expires_at(Clock::time_point::max());
        co_await slot_freed_.async_wait(kNoThrow);
      }
      if (timed && Clock::now() >= end) break;
      records_.push_back(std::move(record));
      ++in_flight_;
      asio::co_spawn(executor, Send(std::move(body), records_.back()), asio::detached);
    }
  }

  asio::awaitable<void> Send(std::string body, RequestRecord& record) {
    co_await runner_.client_.Stream(runner_.options_.path, std::move(body), origin_, record);
    --in_flight_;
    ++finished_;
    if (!record.success) ++failed_;
    runner_.progress_.Update(finished_, failed_,
                             std::chrono::duration<double>(Clock::now() - origin_).count());
    slot_freed_.cancel();
  }

  const LoadRunner& runner_;
  asio::steady_timer slot_freed_;  // cancelled whenever a request finishes
  Status status_;
  Clock::time_point origin_;
  std::deque<RequestRecord> records_;  // a deque keeps references stable while it grows
  uint64_t in_flight_ = 0;
  size_t finished_ = 0;
  size_t failed_ = 0;
};

LoadRunner::LoadRunner(const StreamClient& client, const PromptSynthesizer& prompts,
                       ArrivalProcess arrivals, LoadOptions options, ProgressBar& progress)
    : client_(client),
      prompts_(prompts),
      arrivals_(std::move(arrivals)),
      options_(std::move(options)),
      progress_(progress) {}

Result<RunOutput> LoadRunner::Run() {
  if (options_.num_requests == 0 && options_.duration_s <= 0) {
    return InvalidArgument("a run needs a request count or a duration");
  }
  asio::io_context io;
  Session session(io, *this);
  try {
    asio::co_spawn(io, session.Main(), asio::detached);
    io.run();
  } catch (const std::exception& error) {
    return Internal(std::string("load generator failed: ") + error.what());
  }
  SPC_RETURN_IF_ERROR(session.status());
  RunOutput output;
  output.duration_s = std::chrono::duration<double>(Clock::now() - session.origin()).count();
  progress_.Finish(session.finished(), session.failed(), output.duration_s);
  output.records = std::move(session.records());
  return output;
}

}  // namespace specontext::loadtest
