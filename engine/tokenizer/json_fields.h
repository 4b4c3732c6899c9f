// The tokenizer.json shapes every component shares, read through JsonFields
// (common/json_fields.h) so a malformed file becomes a Status naming the field.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "common/json_fields.h"
#include "common/status.h"

namespace specontext::tok {

// The "type" member every tokenizer component carries.
Result<std::string> ComponentType(const boost::json::value& value, std::string_view what);

// A `{"String": "..."}` or `{"Regex": "..."}` pattern object.
struct PatternSpec {
  bool is_regex = false;
  std::string text;
};
Result<PatternSpec> GetPattern(const boost::json::object& obj);

}  // namespace specontext::tok
