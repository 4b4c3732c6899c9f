#include "engine/tokenizer/json_fields.h"

#include <string>

namespace specontext::tok {

Result<std::string> ComponentType(const boost::json::value& value, std::string_view what) {
  if (!value.is_object()) return InvalidArgument(std::string(what) + " must be an object");
  return JsonFields(value.get_object(), std::string(what)).RequiredString("type");
}

Result<PatternSpec> GetPattern(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(const boost::json::object* pattern, JsonFields(obj).Object("pattern"));
  if (const auto* s = pattern->if_contains("String"); s != nullptr && s->is_string()) {
    return PatternSpec{false, std::string(s->get_string())};
  }
  if (const auto* r = pattern->if_contains("Regex"); r != nullptr && r->is_string()) {
    return PatternSpec{true, std::string(r->get_string())};
  }
  return InvalidArgument("\"pattern\" must hold a \"String\" or \"Regex\" string");
}

}  // namespace specontext::tok
