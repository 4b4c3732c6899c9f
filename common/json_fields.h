// Typed, checked reads of JSON object members. Every mistake in a config or tokenizer file
// becomes a Status that names the file and the key instead of an exception or a silent default.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace specontext {

// Parses `text` as one JSON object; `what` names the file in errors.
Result<boost::json::object> ParseJsonObject(std::string_view text, std::string_view what);

class JsonFields {
 public:
  // `what` names the object in errors (a file, a component); empty: the key alone.
  explicit JsonFields(const boost::json::object& object, std::string what = "")
      : object_(object), what_(std::move(what)) {}

  // The member, or nullptr when it is absent or JSON null.
  const boost::json::value* Find(std::string_view key) const;

  Result<std::optional<int64_t>> OptionalInt(std::string_view key) const;
  Result<std::optional<double>> OptionalDouble(std::string_view key) const;
  Result<std::optional<bool>> OptionalBool(std::string_view key) const;

  Result<int64_t> Int(std::string_view key, int64_t fallback) const;
  Result<int64_t> RequiredInt(std::string_view key) const;
  Result<double> Double(std::string_view key, double fallback) const;
  Result<bool> Bool(std::string_view key, bool fallback) const;
  // No optional<string> here: GCC 12 misreports it as maybe-uninitialized.
  Result<std::string> String(std::string_view key, std::string fallback) const;
  Result<std::string> RequiredString(std::string_view key) const;
  Result<const boost::json::object*> Object(std::string_view key) const;
  Result<const boost::json::array*> Array(std::string_view key) const;
  // An int or a list of ints (eos_token_id); absent or null gives an empty list.
  Result<std::vector<int>> IntOrIntList(std::string_view key) const;

  Status Error(std::string_view key, std::string_view problem) const;

 private:
  const boost::json::object& object_;
  std::string what_;
};

}  // namespace specontext
