#include "server/openai/json_fields.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <set>

#include "server/openai/api_error.h"

namespace specontext::server::openai {

namespace json = boost::json;

namespace {

std::string FormatNumber(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<int64_t>(value));
  }
  return std::to_string(value);
}

}  // namespace

const json::value* FindField(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) return nullptr;
  return value;
}

Status ReadNumber(const json::object& object, std::string_view key, NumberRange range,
                  double* out) {
  const json::value* value = FindField(object, key);
  if (value == nullptr) return Status::Ok();
  if (!value->is_number()) return FieldTypeError(key, "a number");
  const double number = value->to_number<double>();
  const bool below = range.lo_exclusive ? number <= range.lo : number < range.lo;
  if (!std::isfinite(number) || below || number > range.hi) {
    return FieldError(key, "must be " +
                               std::string(range.lo_exclusive ? "greater than " : "at least ") +
                               FormatNumber(range.lo) + " and at most " + FormatNumber(range.hi) +
                               ", got " + json::serialize(*value));
  }
  *out = number;
  return Status::Ok();
}

Status ReadNumber(const json::object& object, std::string_view key, NumberRange range, float* out) {
  double number = *out;  // an absent field leaves it as it was
  SPC_RETURN_IF_ERROR(ReadNumber(object, key, range, &number));
  *out = static_cast<float>(number);
  return Status::Ok();
}

Result<int64_t> IntegerValue(const json::value& value, std::string_view param, int64_t lo,
                             int64_t hi) {
  std::optional<int64_t> integer;
  if (value.is_int64()) {
    integer = value.get_int64();
  } else if (value.is_uint64()) {
    if (value.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      integer = static_cast<int64_t>(value.get_uint64());
    }
  } else if (value.is_double()) {
    const double d = value.get_double();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) {
      integer = static_cast<int64_t>(d);
    }
  } else {
    return FieldTypeError(param, "an integer");
  }
  if (!integer.has_value() || *integer < lo || *integer > hi) {
    return FieldError(param, "must be an integer between " + std::to_string(lo) + " and " +
                                 std::to_string(hi) + ", got " + json::serialize(value));
  }
  return *integer;
}

Status ReadInteger(const json::object& object, std::string_view key, int64_t lo, int64_t hi,
                   int64_t* out) {
  const json::value* value = FindField(object, key);
  if (value == nullptr) return Status::Ok();
  SPC_ASSIGN_OR_RETURN(*out, IntegerValue(*value, key, lo, hi));
  return Status::Ok();
}

Status ReadInt(const json::object& object, std::string_view key, int lo, int hi, int* out) {
  int64_t wide = *out;
  SPC_RETURN_IF_ERROR(ReadInteger(object, key, lo, hi, &wide));
  *out = static_cast<int>(wide);
  return Status::Ok();
}

Status ReadBool(const json::object& object, std::string_view key, bool* out) {
  const json::value* value = FindField(object, key);
  if (value == nullptr) return Status::Ok();
  if (!value->is_bool()) return FieldTypeError(key, "a boolean");
  *out = value->get_bool();
  return Status::Ok();
}

Status ReadString(const json::object& object, std::string_view key, std::string* out) {
  const json::value* value = FindField(object, key);
  if (value == nullptr) return Status::Ok();
  if (!value->is_string()) return FieldTypeError(key, "a string");
  *out = std::string(value->get_string());
  return Status::Ok();
}

Result<std::vector<int32_t>> TokenIdList(const json::value& value, std::string_view param,
                                         size_t max_size) {
  if (!value.is_array()) return FieldTypeError(param, "an array of token ids");
  const json::array& array = value.get_array();
  if (array.size() > max_size) {
    return FieldError(param, "at most " + std::to_string(max_size) + " token ids are allowed");
  }
  std::vector<int32_t> ids;
  ids.reserve(array.size());
  for (const json::value& element : array) {
    SPC_ASSIGN_OR_RETURN(const int64_t id,
                         IntegerValue(element, param, 0, std::numeric_limits<int32_t>::max()));
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

void NoteUnknownFields(const json::object& object, std::string_view endpoint,
                       std::span<const std::string_view> shared_fields,
                       std::span<const std::string_view> endpoint_fields) {
  static std::mutex mutex;
  static std::set<std::string, std::less<>> logged;
  for (const auto& entry : object) {
    const std::string_view key = entry.key();
    if (std::ranges::find(shared_fields, key) != shared_fields.end() ||
        std::ranges::find(endpoint_fields, key) != endpoint_fields.end()) {
      continue;
    }
    std::lock_guard<std::mutex> lock(mutex);
    if (logged.insert(std::string(endpoint) + " " + std::string(key)).second) {
      spdlog::debug("{}: ignoring unknown request field '{}'", endpoint, key);
    }
  }
}

}  // namespace specontext::server::openai
