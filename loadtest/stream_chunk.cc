#include "loadtest/stream_chunk.h"

#include <boost/json.hpp>

namespace specontext::loadtest {

namespace json = boost::json;

namespace {

void AppendString(const json::object& object, std::string_view key, std::string& out) {
  if (const auto* value = object.if_contains(key); value && value->is_string()) {
    out.append(value->get_string());
  }
}

std::optional<int64_t> IntField(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr) return std::nullopt;
  if (value->is_int64()) return value->get_int64();
  if (value->is_uint64()) return static_cast<int64_t>(value->get_uint64());
  return std::nullopt;
}

std::string ErrorMessage(const json::value& error) {
  if (error.is_object()) {
    if (const auto* message = error.get_object().if_contains("message");
        message && message->is_string()) {
      return std::string(message->get_string());
    }
  }
  return json::serialize(error);
}

}  // namespace

Result<StreamChunk> ParseStreamChunk(std::string_view data) {
  StreamChunk chunk;
  if (data == "[DONE]") {
    chunk.done = true;
    return chunk;
  }
  boost::system::error_code ec;
  const json::value parsed = json::parse(data, ec);
  if (ec || !parsed.is_object()) {
    return InvalidArgument("stream event is not a JSON object: " +
                           std::string(data.substr(0, 200)));
  }
  const json::object& root = parsed.get_object();
  if (const auto* error = root.if_contains("error"); error && !error->is_null()) {
    chunk.error = ErrorMessage(*error);
    return chunk;
  }
  if (const auto* choices = root.if_contains("choices"); choices && choices->is_array()) {
    const json::array& list = choices->get_array();
    if (!list.empty() && list.front().is_object()) {
      const json::object& choice = list.front().get_object();
      chunk.has_choice = true;
      AppendString(choice, "text", chunk.text);
      if (const auto* delta = choice.if_contains("delta"); delta && delta->is_object()) {
        AppendString(delta->get_object(), "reasoning_content", chunk.text);
        AppendString(delta->get_object(), "content", chunk.text);
      }
      if (const auto* finish = choice.if_contains("finish_reason"); finish && finish->is_string()) {
        chunk.finish_reason = std::string(finish->get_string());
      }
    }
  }
  if (const auto* usage = root.if_contains("usage"); usage && usage->is_object()) {
    chunk.prompt_tokens = IntField(usage->get_object(), "prompt_tokens");
    chunk.completion_tokens = IntField(usage->get_object(), "completion_tokens");
  }
  return chunk;
}

}  // namespace specontext::loadtest
