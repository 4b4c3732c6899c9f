#include "server/openai/generation_options.h"

#include <boost/json.hpp>

#include <limits>

#include "server/openai/api_error.h"
#include "server/openai/json_fields.h"

namespace specontext::server::openai {

namespace json = boost::json;

namespace {

constexpr int kIntMax = std::numeric_limits<int>::max();
constexpr size_t kMaxStopLength = 1024;
constexpr size_t kMaxStopTokenIds = 1024;

Status ReadStop(const json::object& body, std::vector<std::string>* out) {
  const json::value* value = FindField(body, "stop");
  if (value == nullptr) return Status::Ok();
  std::vector<std::string> stops;
  if (value->is_string()) {
    stops.emplace_back(value->get_string());
  } else if (value->is_array()) {
    for (const json::value& element : value->get_array()) {
      if (!element.is_string()) return FieldTypeError("stop", "a string or an array of strings");
      stops.emplace_back(element.get_string());
    }
  } else {
    return FieldTypeError("stop", "a string or an array of strings");
  }
  if (stops.size() > kMaxStopStrings) {
    return FieldError("stop", "at most " + std::to_string(kMaxStopStrings) +
                                  " stop sequences are allowed, got " +
                                  std::to_string(stops.size()));
  }
  for (const std::string& stop : stops) {
    if (stop.empty()) return FieldError("stop", "stop sequences must not be empty");
    if (stop.size() > kMaxStopLength) {
      return FieldError(
          "stop", "stop sequences are limited to " + std::to_string(kMaxStopLength) + " bytes");
    }
  }
  *out = std::move(stops);
  return Status::Ok();
}

Status ReadStreamOptions(const json::object& body, GenerationOptions* out) {
  const json::value* value = FindField(body, "stream_options");
  if (value == nullptr) return Status::Ok();
  if (!value->is_object()) return FieldTypeError("stream_options", "an object");
  if (!out->stream) {
    return FieldError("stream_options", "only allowed when 'stream' is true");
  }
  const json::object& options = value->get_object();
  if (const json::value* usage = FindField(options, "include_usage")) {
    if (!usage->is_bool()) return FieldTypeError("stream_options.include_usage", "a boolean");
    out->include_usage = usage->get_bool();
  }
  return Status::Ok();
}

Status ReadAttention(const json::object& body, GenerationOptions* out) {
  std::string mode;
  SPC_RETURN_IF_ERROR(ReadString(body, "attention", &mode));
  if (!mode.empty()) {
    const std::optional<AttentionMode> named = AttentionModeNamed(mode);
    if (!named.has_value()) {
      return FieldError("attention", "must be \"dense\" or \"specontext\", got \"" + mode + "\"");
    }
    out->attention = *named;
  }
  for (std::string_view key : {"sparse_budget", "sparse_redo_probability"}) {
    if (FindField(body, key) != nullptr && out->attention == AttentionMode::kDense) {
      return FieldError(key, "only applies to \"attention\": \"specontext\"");
    }
  }
  SPC_RETURN_IF_ERROR(ReadInteger(body, "sparse_budget", 1, kIntMax, &out->sparse_budget));
  if (FindField(body, "sparse_redo_probability") == nullptr) return Status::Ok();
  double redo = 0.0;
  SPC_RETURN_IF_ERROR(ReadNumber(body, "sparse_redo_probability", {0.0, 1.0}, &redo));
  out->sparse_redo_probability = redo;
  return Status::Ok();
}

// Fields we cannot honour are refused rather than silently ignored.
Status RefuseUnsupported(const json::object& body) {
  if (const json::value* bias = FindField(body, "logit_bias")) {
    if (!bias->is_object()) return FieldTypeError("logit_bias", "an object");
    if (!bias->get_object().empty()) return FieldError("logit_bias", "is not supported");
  }
  if (const json::value* format = FindField(body, "response_format")) {
    if (!format->is_object()) return FieldTypeError("response_format", "an object");
    const json::value* type = FindField(format->get_object(), "type");
    if (type == nullptr || !type->is_string() || type->get_string() != "text") {
      return FieldError("response_format", "only {\"type\": \"text\"} is supported");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ReadGenerationOptions(const json::object& body,
                             std::initializer_list<std::string_view> max_tokens_keys,
                             GenerationOptions* out) {
  SamplingParams& sampling = out->sampling;
  SPC_RETURN_IF_ERROR(ReadString(body, "model", &out->model));
  for (std::string_view key : max_tokens_keys) {
    if (FindField(body, key) == nullptr) continue;
    int max_tokens = 0;
    SPC_RETURN_IF_ERROR(ReadInt(body, key, 1, kIntMax, &max_tokens));
    out->max_tokens = max_tokens;
    sampling.max_tokens = max_tokens;
    break;
  }
  SPC_RETURN_IF_ERROR(ReadNumber(body, "temperature", {0.0, 2.0}, &sampling.temperature));
  SPC_RETURN_IF_ERROR(ReadNumber(body, "top_p", {0.0, 1.0, true}, &sampling.top_p));
  // -1 is the vLLM spelling of "off".
  SPC_RETURN_IF_ERROR(ReadInt(body, "top_k", -1, kIntMax, &sampling.top_k));
  if (sampling.top_k < 0) sampling.top_k = 0;
  SPC_RETURN_IF_ERROR(ReadNumber(body, "min_p", {0.0, 1.0}, &sampling.min_p));
  SPC_RETURN_IF_ERROR(
      ReadNumber(body, "presence_penalty", {-2.0, 2.0}, &sampling.presence_penalty));
  SPC_RETURN_IF_ERROR(
      ReadNumber(body, "frequency_penalty", {-2.0, 2.0}, &sampling.frequency_penalty));
  SPC_RETURN_IF_ERROR(
      ReadNumber(body, "repetition_penalty", {0.0, 10.0, true}, &sampling.repetition_penalty));
  if (FindField(body, "seed") != nullptr) {
    int64_t seed = 0;
    SPC_RETURN_IF_ERROR(ReadInteger(body, "seed", std::numeric_limits<int64_t>::min(),
                                    std::numeric_limits<int64_t>::max(), &seed));
    sampling.seed = static_cast<uint64_t>(seed);
  }
  SPC_RETURN_IF_ERROR(ReadStop(body, &out->stop));
  if (const json::value* ids = FindField(body, "stop_token_ids")) {
    SPC_ASSIGN_OR_RETURN(sampling.stop_token_ids,
                         TokenIdList(*ids, "stop_token_ids", kMaxStopTokenIds));
  }
  SPC_RETURN_IF_ERROR(ReadInt(body, "n", 1, kMaxChoices, &out->n));
  SPC_RETURN_IF_ERROR(ReadBool(body, "stream", &out->stream));
  SPC_RETURN_IF_ERROR(ReadStreamOptions(body, out));
  SPC_RETURN_IF_ERROR(ReadBool(body, "ignore_eos", &sampling.ignore_eos));
  SPC_RETURN_IF_ERROR(ReadInt(body, "min_tokens", 0, kIntMax, &sampling.min_tokens));
  if (out->max_tokens.has_value() && sampling.min_tokens > *out->max_tokens) {
    return FieldError("min_tokens", "must not exceed max_tokens (" +
                                        std::to_string(*out->max_tokens) + "), got " +
                                        std::to_string(sampling.min_tokens));
  }
  SPC_RETURN_IF_ERROR(ReadString(body, "user", &out->user));
  SPC_RETURN_IF_ERROR(ReadBool(body, "skip_special_tokens", &out->skip_special_tokens));
  SPC_RETURN_IF_ERROR(ReadAttention(body, out));
  return RefuseUnsupported(body);
}

}  // namespace specontext::server::openai
