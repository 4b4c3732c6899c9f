#include "loadtest/sse_parser.h"

namespace specontext::loadtest {

void SseParser::Feed(std::string_view bytes, std::vector<std::string>& events) {
  pending_.append(bytes);
  size_t start = 0;
  for (size_t newline = pending_.find('\n', start); newline != std::string::npos;
       newline = pending_.find('\n', start)) {
    std::string_view line(pending_.data() + start, newline - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ProcessLine(line, events);
    start = newline + 1;
  }
  pending_.erase(0, start);
}

void SseParser::ProcessLine(std::string_view line, std::vector<std::string>& events) {
  if (line.empty()) {
    if (has_data_) events.push_back(std::move(data_));
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // comment, e.g. a keep-alive
  const size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field != "data") return;  // event, id and retry change nothing we measure
  if (has_data_) data_.push_back('\n');
  data_.append(value);
  has_data_ = true;
}

}  // namespace specontext::loadtest
