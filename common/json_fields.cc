#include "common/json_fields.h"

#include <cmath>
#include <limits>

namespace specontext {

Result<boost::json::object> ParseJsonObject(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec);
  if (ec) return InvalidArgument(std::string(what) + ": invalid JSON: " + ec.message());
  if (!value.is_object()) return InvalidArgument(std::string(what) + ": not a JSON object");
  return std::move(value.as_object());
}

const boost::json::value* JsonFields::Find(std::string_view key) const {
  const boost::json::value* value = object_.if_contains(key);
  if (value == nullptr || value->is_null()) return nullptr;
  return value;
}

Status JsonFields::Error(std::string_view key, std::string_view problem) const {
  const std::string field = "\"" + std::string(key) + "\" " + std::string(problem);
  return InvalidArgument(what_.empty() ? field : what_ + ": " + field);
}

Result<std::optional<int64_t>> JsonFields::OptionalInt(std::string_view key) const {
  const boost::json::value* value = Find(key);
  if (value == nullptr) return std::optional<int64_t>();
  if (value->is_int64()) return std::optional<int64_t>(value->get_int64());
  if (value->is_uint64() && value->get_uint64() <= uint64_t{std::numeric_limits<int64_t>::max()}) {
    return std::optional<int64_t>(static_cast<int64_t>(value->get_uint64()));
  }
  // Some writers emit integral floats ("max_position_embeddings": 8192.0).
  if (value->is_double() && std::trunc(value->get_double()) == value->get_double() &&
      std::abs(value->get_double()) < 9.0e15) {
    return std::optional<int64_t>(static_cast<int64_t>(value->get_double()));
  }
  return Error(key, "must be an integer");
}

Result<std::optional<double>> JsonFields::OptionalDouble(std::string_view key) const {
  const boost::json::value* value = Find(key);
  if (value == nullptr) return std::optional<double>();
  if (!value->is_number()) return Error(key, "must be a number");
  return std::optional<double>(value->to_number<double>());
}

Result<std::optional<bool>> JsonFields::OptionalBool(std::string_view key) const {
  const boost::json::value* value = Find(key);
  if (value == nullptr) return std::optional<bool>();
  if (!value->is_bool()) return Error(key, "must be true or false");
  return std::optional<bool>(value->get_bool());
}

Result<std::string> JsonFields::String(std::string_view key, std::string fallback) const {
  const boost::json::value* value = Find(key);
  if (value == nullptr) return fallback;
  if (!value->is_string()) return Error(key, "must be a string");
  return std::string(value->get_string());
}

Result<std::string> JsonFields::RequiredString(std::string_view key) const {
  const boost::json::value* value = Find(key);
  if (value == nullptr) return Error(key, "is missing");
  if (!value->is_string()) return Error(key, "must be a string");
  return std::string(value->get_string());
}

Result<const boost::json::object*> JsonFields::Object(std::string_view key) const {
  const boost::json::value* value = Find(key);
  if (value == nullptr) return Error(key, "is missing");
  if (!value->is_object()) return Error(key, "must be an object");
  return &value->get_object();
}

Result<const boost::json::array*> JsonFields::Array(std::string_view key) const {
  const boost::json::value* value = Find(key);
  if (value == nullptr) return Error(key, "is missing");
  if (!value->is_array()) return Error(key, "must be an array");
  return &value->get_array();
}

Result<int64_t> JsonFields::Int(std::string_view key, int64_t fallback) const {
  SPC_ASSIGN_OR_RETURN(std::optional<int64_t> value, OptionalInt(key));
  return value.value_or(fallback);
}

Result<int64_t> JsonFields::RequiredInt(std::string_view key) const {
  SPC_ASSIGN_OR_RETURN(std::optional<int64_t> value, OptionalInt(key));
  if (!value) return Error(key, "is missing");
  return *value;
}

Result<double> JsonFields::Double(std::string_view key, double fallback) const {
  SPC_ASSIGN_OR_RETURN(std::optional<double> value, OptionalDouble(key));
  return value.value_or(fallback);
}

Result<bool> JsonFields::Bool(std::string_view key, bool fallback) const {
  SPC_ASSIGN_OR_RETURN(std::optional<bool> value, OptionalBool(key));
  return value.value_or(fallback);
}

Result<std::vector<int>> JsonFields::IntOrIntList(std::string_view key) const {
  const boost::json::value* value = Find(key);
  std::vector<int> ids;
  if (value == nullptr) return ids;
  auto push = [&](const boost::json::value& item) -> Status {
    if (!item.is_int64() || item.get_int64() < 0 ||
        item.get_int64() > std::numeric_limits<int>::max()) {
      return Error(key, "must be a non-negative integer or a list of them");
    }
    ids.push_back(static_cast<int>(item.get_int64()));
    return Status::Ok();
  };
  if (value->is_array()) {
    for (const boost::json::value& item : value->get_array()) SPC_RETURN_IF_ERROR(push(item));
  } else {
    SPC_RETURN_IF_ERROR(push(*value));
  }
  return ids;
}

}  // namespace specontext
