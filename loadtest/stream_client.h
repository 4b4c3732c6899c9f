// An HTTP/1.1 client for the benchmark: one connection per request, a streaming POST whose
// server-sent events are timestamped as they come off the socket, and a plain GET for discovery.
// Everything runs on the caller's executor; nothing here throws.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/status.h"
#include "loadtest/request_record.h"

namespace specontext::loadtest {

struct ServerAddress {
  std::string host;
  std::string port;
  std::string base_path;  // prepended to every request path, without a trailing slash
};

// `http://host[:port][/base]`; https is not supported.
Result<ServerAddress> ParseBaseUrl(std::string_view url);

class StreamClient {
 public:
  using Clock = std::chrono::steady_clock;

  StreamClient(boost::asio::ip::tcp::resolver::results_type endpoints, ServerAddress address,
               std::string api_key, std::chrono::milliseconds timeout);

  // Fills `record` (times relative to `origin`) from one streaming request.
  boost::asio::awaitable<void> Stream(std::string path, std::string body, Clock::time_point origin,
                                      RequestRecord& record) const;

  // The body of a 200 response, else an error naming the status.
  boost::asio::awaitable<Result<std::string>> Get(std::string path) const;

 private:
  boost::asio::ip::tcp::resolver::results_type endpoints_;
  ServerAddress address_;
  std::string api_key_;
  std::chrono::milliseconds timeout_;
};

}  // namespace specontext::loadtest
