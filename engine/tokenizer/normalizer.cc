#include "engine/tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/regex.h"
#include "engine/tokenizer/utf8.h"

namespace specontext::tok {
namespace {

// Upcasts at creation so the result converts to Result<std::unique_ptr<Normalizer>> directly.
template <typename T, typename... Args>
std::unique_ptr<Normalizer> Make(Args&&... args) {
  return std::make_unique<T>(std::forward<Args>(args)...);
}

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  Status Normalize(std::string& text, bool& /*start_aligned*/) const override {
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                            static_cast<utf8proc_ssize_t>(text.size()), &out,
                                            static_cast<utf8proc_option_t>(options_));
    if (n < 0)
      return InvalidArgument(std::string("unicode normalization failed: ") + utf8proc_errmsg(n));
    text.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
    return Status::Ok();
  }

 private:
  int options_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  Status Normalize(std::string& text, bool& /*start_aligned*/) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
      const char32_t cp = NextCodePoint(text, pos);
      // U+0130 is the one character whose full lowercase mapping is two code points.
      if (cp == 0x130) {
        out += "i\xCC\x87";
        continue;
      }
      AppendUtf8(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))), out);
    }
    text = std::move(out);
    return Status::Ok();
  }
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  Status Normalize(std::string& text, bool& /*start_aligned*/) const override {
    if (!text.empty()) text.insert(0, prefix_);
    return Status::Ok();
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string literal, std::optional<Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}
  Status Normalize(std::string& text, bool& start_aligned) const override {
    std::vector<Span> spans;
    if (regex_) {
      SPC_ASSIGN_OR_RETURN(spans, regex_->FindAll(text));
    } else if (!literal_.empty()) {
      for (size_t pos = text.find(literal_); pos != std::string::npos;
           pos = text.find(literal_, pos + literal_.size())) {
        spans.push_back({pos, pos + literal_.size()});
      }
    }
    if (spans.empty()) return Status::Ok();
    if (spans.front().begin == 0 && spans.front().end > 0) start_aligned = false;
    std::string out;
    out.reserve(text.size());
    size_t last = 0;
    for (const Span& s : spans) {
      out.append(text, last, s.begin - last);
      out += content_;
      last = s.end;
    }
    out.append(text, last);
    text = std::move(out);
    return Status::Ok();
  }

 private:
  std::string literal_;
  std::optional<Regex> regex_;
  std::string content_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  Status Normalize(std::string& text, bool& start_aligned) const override {
    size_t begin = 0;
    size_t end = text.size();
    while (left_ && begin < end) {
      size_t pos = begin;
      if (!IsWhitespace(NextCodePoint(text, pos))) break;
      begin = pos;
    }
    if (begin > 0) start_aligned = false;
    if (right_) {
      size_t last_non_space = begin;
      for (size_t pos = begin; pos < end;) {
        if (!IsWhitespace(NextCodePoint(text, pos))) last_non_space = pos;
      }
      end = last_non_space;
    }
    text = text.substr(begin, end - begin);
    return Status::Ok();
  }

 private:
  bool left_;
  bool right_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  Status Normalize(std::string& text, bool& start_aligned) const override {
    for (const auto& step : steps_) SPC_RETURN_IF_ERROR(step->Normalize(text, start_aligned));
    return Status::Ok();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

Result<std::unique_ptr<Normalizer>> ParseReplace(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(PatternSpec pattern, GetPattern(obj));
  SPC_ASSIGN_OR_RETURN(std::string content, JsonFields(obj).RequiredString("content"));
  if (!pattern.is_regex) {
    return std::unique_ptr<Normalizer>(
        std::make_unique<ReplaceNormalizer>(std::move(pattern.text), std::nullopt, content));
  }
  SPC_ASSIGN_OR_RETURN(Regex regex, Regex::Compile(pattern.text));
  return std::unique_ptr<Normalizer>(
      std::make_unique<ReplaceNormalizer>(std::string(), std::move(regex), content));
}

Result<std::unique_ptr<Normalizer>> ParseSequence(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(const boost::json::array* items, JsonFields(obj).Array("normalizers"));
  std::vector<std::unique_ptr<Normalizer>> steps;
  for (const boost::json::value& item : *items) {
    SPC_ASSIGN_OR_RETURN(std::unique_ptr<Normalizer> step, ParseNormalizer(item));
    if (step) steps.push_back(std::move(step));
  }
  return std::unique_ptr<Normalizer>(std::make_unique<SequenceNormalizer>(std::move(steps)));
}

}  // namespace

Result<std::unique_ptr<Normalizer>> ParseNormalizer(const boost::json::value& value) {
  if (value.is_null()) return std::unique_ptr<Normalizer>();
  SPC_ASSIGN_OR_RETURN(const std::string type, ComponentType(value, "normalizer"));
  const boost::json::object& obj = value.get_object();
  const int stable = UTF8PROC_STABLE;
  Result<std::unique_ptr<Normalizer>> result = std::unique_ptr<Normalizer>();
  if (type == "NFC") {
    result = Make<UnicodeNormalizer>(stable | UTF8PROC_COMPOSE);
  } else if (type == "NFD") {
    result = Make<UnicodeNormalizer>(stable | UTF8PROC_DECOMPOSE);
  } else if (type == "NFKC") {
    result = Make<UnicodeNormalizer>(stable | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  } else if (type == "NFKD") {
    result = Make<UnicodeNormalizer>(stable | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  } else if (type == "Lowercase") {
    result = Make<LowercaseNormalizer>();
  } else if (type == "Prepend") {
    Result<std::string> prefix = JsonFields(obj).RequiredString("prepend");
    if (!prefix.ok()) return prefix.status().WithContext("normalizer Prepend");
    result = Make<PrependNormalizer>(*prefix);
  } else if (type == "Replace") {
    result = ParseReplace(obj);
  } else if (type == "Strip") {
    Result<bool> left = JsonFields(obj).Bool("strip_left", true);
    Result<bool> right = JsonFields(obj).Bool("strip_right", true);
    if (!left.ok()) return left.status().WithContext("normalizer Strip");
    if (!right.ok()) return right.status().WithContext("normalizer Strip");
    result = Make<StripNormalizer>(*left, *right);
  } else if (type == "Sequence") {
    result = ParseSequence(obj);
  } else {
    return Unimplemented("normalizer type '" + type + "' is not supported");
  }
  if (!result.ok()) return result.status().WithContext("normalizer " + type);
  return result;
}

}  // namespace specontext::tok
