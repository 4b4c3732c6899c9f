#include "loadtest/stream_client.h"

#include <array>
#include <exception>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

#include "loadtest/sse_parser.h"
#include "loadtest/stream_chunk.h"

namespace specontext::loadtest {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kErrorBodyLimit = 300;

double Seconds(StreamClient::Clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

// Measures one event stream: TTFT at the first chunk with text, ITL between such chunks, token
// counts from `usage`.
class StreamMeter {
 public:
  StreamMeter(StreamClient::Clock::time_point sent, RequestRecord& record)
      : sent_(sent), record_(record) {}

  void OnBytes(std::string_view bytes, StreamClient::Clock::time_point now) {
    events_.clear();
    parser_.Feed(bytes, events_);
    for (const std::string& data : events_) OnEvent(data, now);
  }

  // Empty when the stream was complete and well-formed.
  std::string Finish(StreamClient::Clock::time_point now) {
    record_.e2e_s = Seconds(now - sent_);
    if (!error_.empty()) return error_;
    if (!done_) return "stream ended without [DONE]";
    if (text_chunks_ == 0) return "stream carried no text";
    if (!usage_output_) record_.output_tokens = text_chunks_;
    return {};
  }

 private:
  void OnEvent(const std::string& data, StreamClient::Clock::time_point now) {
    if (!error_.empty() || done_) return;
    auto chunk = ParseStreamChunk(data);
    if (!chunk.ok()) {
      error_ = chunk.status().message();
      return;
    }
    if (chunk->error) {
      error_ = "server error in stream: " + *chunk->error;
      return;
    }
    done_ = chunk->done;
    if (chunk->prompt_tokens) record_.prompt_tokens = *chunk->prompt_tokens;
    if (chunk->completion_tokens) {
      record_.output_tokens = *chunk->completion_tokens;
      usage_output_ = true;
    }
    if (!chunk->has_choice || chunk->text.empty()) return;
    if (text_chunks_ == 0) {
      record_.ttft_s = Seconds(now - sent_);
    } else {
      record_.itl_s.push_back(Seconds(now - last_));
    }
    last_ = now;
    ++text_chunks_;
    if (record_.expected_answer) record_.generated_text += chunk->text;
  }

  StreamClient::Clock::time_point sent_;
  StreamClient::Clock::time_point last_;
  RequestRecord& record_;
  SseParser parser_;
  std::vector<std::string> events_;
  int64_t text_chunks_ = 0;
  bool usage_output_ = false;
  bool done_ = false;
  std::string error_;
};

std::string Describe(std::string_view step, const beast::error_code& ec) {
  if (ec == beast::error::timeout) return std::string(step) + ": request timed out";
  return std::string(step) + ": " + ec.message();
}

}  // namespace

Result<ServerAddress> ParseBaseUrl(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return InvalidArgument("bad base URL '" + std::string(url) + "'");
  if (parsed->scheme() != "http") {
    return InvalidArgument("base URL '" + std::string(url) + "' must start with http://");
  }
  ServerAddress address;
  address.host = parsed->host();
  if (address.host.empty())
    return InvalidArgument("base URL '" + std::string(url) + "' has no host");
  address.port = parsed->has_port() ? std::string(parsed->port()) : "80";
  address.base_path = parsed->path();
  while (!address.base_path.empty() && address.base_path.back() == '/') {
    address.base_path.pop_back();
  }
  return address;
}

StreamClient::StreamClient(asio::ip::tcp::resolver::results_type endpoints, ServerAddress address,
                           std::string api_key, std::chrono::milliseconds timeout)
    : endpoints_(std::move(endpoints)),
      address_(std::move(address)),
      api_key_(std::move(api_key)),
      timeout_(timeout) {}

asio::awaitable<void> StreamClient::Stream(std::string path, std::string body,
                                           Clock::time_point origin, RequestRecord& record) const {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(timeout_);  // one deadline for the whole request
  http::request<http::string_body> request(http::verb::post, address_.base_path + path, 11);
  request.set(http::field::host, address_.host + ":" + address_.port);
  request.set(http::field::content_type, "application/json");
  request.set(http::field::accept, "text/event-stream");
  if (!api_key_.empty()) request.set(http::field::authorization, "Bearer " + api_key_);
  request.body() = std::move(body);
  request.prepare_payload();

  const Clock::time_point sent = Clock::now();
  record.start_s = Seconds(sent - origin);
  StreamMeter meter(sent, record);
  auto fail = [&](std::string error) {
    record.e2e_s = Seconds(Clock::now() - sent);
    record.success = false;
    record.error = std::move(error);
  };
  if (auto [ec, endpoint] = co_await stream.async_connect(endpoints_, kNoThrow); ec) {
    co_return fail(Describe("connect", ec));
  }
  if (auto [ec, n] = co_await http::async_write(stream, request, kNoThrow); ec) {
    co_return fail(Describe("send", ec));
  }
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kNoThrow); ec) {
    co_return fail(Describe("read header", ec));
  }
  const unsigned status = parser.get().result_int();
  std::string error_body;
  std::array<char, kReadChunk> chunk;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, kNoThrow);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return fail(Describe("read body", ec));
    const std::string_view bytes(chunk.data(), chunk.size() - parser.get().body().size);
    if (status == 200) {
      meter.OnBytes(bytes, Clock::now());
    } else if (error_body.size() < kErrorBodyLimit) {
      error_body.append(bytes.substr(0, kErrorBodyLimit - error_body.size()));
    }
  }
  if (status != 200) co_return fail("HTTP " + std::to_string(status) + ": " + error_body);
  std::string error = meter.Finish(Clock::now());
  record.success = error.empty();
  record.error = std::move(error);
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

asio::awaitable<Result<std::string>> StreamClient::Get(std::string path) const {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(timeout_);
  http::request<http::empty_body> request(http::verb::get, address_.base_path + path, 11);
  request.set(http::field::host, address_.host + ":" + address_.port);
  if (!api_key_.empty()) request.set(http::field::authorization, "Bearer " + api_key_);
  const std::string what = "GET " + address_.base_path + path;
  if (auto [ec, endpoint] = co_await stream.async_connect(endpoints_, kNoThrow); ec) {
    co_return Unavailable(Describe(what, ec));
  }
  if (auto [ec, n] = co_await http::async_write(stream, request, kNoThrow); ec) {
    co_return Unavailable(Describe(what, ec));
  }
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  if (auto [ec, n] = co_await http::async_read(stream, buffer, response, kNoThrow); ec) {
    co_return Unavailable(Describe(what, ec));
  }
  if (response.result_int() != 200) {
    co_return Unavailable(what + ": HTTP " + std::to_string(response.result_int()) + ": " +
                          response.body().substr(0, kErrorBodyLimit));
  }
  co_return std::move(response.body());
}

}  // namespace specontext::loadtest
