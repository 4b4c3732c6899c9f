// Typed reads of optional request fields with OpenAI's validation: JSON null counts as absent,
// a wrong type or an out-of-range value is a FieldError naming the field. An absent field leaves
// the destination unchanged, so defaults live in the request structs.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace specontext::server::openai {

// The value of `key`, or nullptr when absent or null.
const boost::json::value* FindField(const boost::json::object& object, std::string_view key);

// `lo`/`hi` bound the value; the *_exclusive forms reject the bound itself.
struct NumberRange {
  double lo;
  double hi;
  bool lo_exclusive = false;
};

Status ReadNumber(const boost::json::object& object, std::string_view key, NumberRange range,
                  double* out);
Status ReadNumber(const boost::json::object& object, std::string_view key, NumberRange range,
                  float* out);
Status ReadInteger(const boost::json::object& object, std::string_view key, int64_t lo, int64_t hi,
                   int64_t* out);
Status ReadInt(const boost::json::object& object, std::string_view key, int lo, int hi, int* out);
Status ReadBool(const boost::json::object& object, std::string_view key, bool* out);
Status ReadString(const boost::json::object& object, std::string_view key, std::string* out);

// An integer value (JSON integers, or floats with no fractional part) in [lo, hi].
Result<int64_t> IntegerValue(const boost::json::value& value, std::string_view param, int64_t lo,
                             int64_t hi);
// A list of token ids, each in [0, 2^31).
Result<std::vector<int32_t>> TokenIdList(const boost::json::value& value, std::string_view param,
                                         size_t max_size);

// Logs, once per process and field name, the fields of `object` not in `known` (debug level):
// unknown fields are accepted and ignored, as OpenAI-compatible servers do.
void NoteUnknownFields(const boost::json::object& object, std::string_view endpoint,
                       std::span<const std::string_view> shared_fields,
                       std::span<const std::string_view> endpoint_fields);

}  // namespace specontext::server::openai
