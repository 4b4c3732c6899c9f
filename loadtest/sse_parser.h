// Incremental parser for a server-sent event stream: bytes go in as they arrive off the socket,
// split anywhere, and the `data` payload of each complete event comes out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace specontext::loadtest {

class SseParser {
 public:
  // Appends the payloads of the events completed by `bytes` to `events`.
  void Feed(std::string_view bytes, std::vector<std::string>& events);

 private:
  void ProcessLine(std::string_view line, std::vector<std::string>& events);

  std::string pending_;  // bytes of a line not yet terminated
  std::string data_;     // data lines of the event being assembled, joined by '\n'
  bool has_data_ = false;
};

}  // namespace specontext::loadtest
