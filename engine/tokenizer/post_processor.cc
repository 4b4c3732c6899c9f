#include "engine/tokenizer/post_processor.h"

#include <string>
#include <utility>

#include "engine/tokenizer/json_fields.h"

namespace specontext::tok {
namespace {

Status AppendIds(const boost::json::array& ids, std::vector<int32_t>& out) {
  for (const boost::json::value& id : ids) {
    if (!id.is_int64() || id.get_int64() < 0 || id.get_int64() > INT32_MAX) {
      return InvalidArgument("special token ids must be non-negative integers");
    }
    out.push_back(static_cast<int32_t>(id.get_int64()));
  }
  return Status::Ok();
}

Result<PostProcessor> ParseTemplate(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(const boost::json::array* single, JsonFields(obj).Array("single"));
  SPC_ASSIGN_OR_RETURN(const boost::json::object* specials,
                       JsonFields(obj).Object("special_tokens"));
  PostProcessor result;
  bool seen_sequence = false;
  for (const boost::json::value& item : *single) {
    const boost::json::object* piece = item.if_object();
    if (piece == nullptr) return InvalidArgument("'single' items must be objects");
    if (piece->contains("Sequence")) {
      if (seen_sequence) return InvalidArgument("'single' names more than one sequence");
      seen_sequence = true;
      continue;
    }
    SPC_ASSIGN_OR_RETURN(const boost::json::object* special,
                         JsonFields(*piece).Object("SpecialToken"));
    SPC_ASSIGN_OR_RETURN(std::string name, JsonFields(*special).RequiredString("id"));
    const boost::json::value* entry = specials->if_contains(name);
    if (entry == nullptr || !entry->is_object()) {
      return InvalidArgument("special token '" + name + "' is missing from 'special_tokens'");
    }
    SPC_ASSIGN_OR_RETURN(const boost::json::array* ids,
                         JsonFields(entry->get_object()).Array("ids"));
    SPC_RETURN_IF_ERROR(AppendIds(*ids, seen_sequence ? result.suffix : result.prefix));
  }
  if (!seen_sequence) return InvalidArgument("'single' does not place the sequence");
  return result;
}

// BertProcessing / RobertaProcessing: [cls] text [sep], each given as ["token", id].
Result<PostProcessor> ParseClsSep(const boost::json::object& obj) {
  PostProcessor result;
  for (auto [key, ids] : {std::pair{"cls", &result.prefix}, std::pair{"sep", &result.suffix}}) {
    SPC_ASSIGN_OR_RETURN(const boost::json::array* pair, JsonFields(obj).Array(key));
    if (pair->size() != 2) {
      return InvalidArgument("field '" + std::string(key) + "' must be [token, id]");
    }
    SPC_RETURN_IF_ERROR(AppendIds(boost::json::array{(*pair)[1]}, *ids));
  }
  return result;
}

Result<PostProcessor> ParseSequence(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(const boost::json::array* items, JsonFields(obj).Array("processors"));
  PostProcessor result;
  // Each processor wraps the output of the ones before it.
  for (const boost::json::value& item : *items) {
    SPC_ASSIGN_OR_RETURN(PostProcessor step, ParsePostProcessor(item));
    step.prefix.insert(step.prefix.end(), result.prefix.begin(), result.prefix.end());
    result.prefix = std::move(step.prefix);
    result.suffix.insert(result.suffix.end(), step.suffix.begin(), step.suffix.end());
  }
  return result;
}

}  // namespace

Result<PostProcessor> ParsePostProcessor(const boost::json::value& value) {
  if (value.is_null()) return PostProcessor{};
  SPC_ASSIGN_OR_RETURN(const std::string type, ComponentType(value, "post_processor"));
  const boost::json::object& obj = value.get_object();
  Result<PostProcessor> result = PostProcessor{};
  if (type == "TemplateProcessing") {
    result = ParseTemplate(obj);
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    result = ParseClsSep(obj);
  } else if (type == "Sequence") {
    result = ParseSequence(obj);
  } else if (type != "ByteLevel") {  // ByteLevel only adjusts offsets, never ids
    return Unimplemented("post_processor type '" + type + "' is not supported");
  }
  if (!result.ok()) return result.status().WithContext("post_processor " + type);
  return result;
}

}  // namespace specontext::tok
