#include "engine/tokenizer/decoder.h"

#include <optional>
#include <utility>

#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/regex.h"
#include "engine/tokenizer/utf8.h"

namespace specontext::tok {
namespace {

// Upcasts at creation so the result converts to Result<std::unique_ptr<Decoder>> directly.
template <typename T, typename... Args>
std::unique_ptr<Decoder> Make(Args&&... args) {
  return std::make_unique<T>(std::forward<Args>(args)...);
}

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

class ByteLevelDecoder final : public Decoder {
 public:
  Status DecodeChain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      const size_t mark = bytes.size();
      bool mapped = true;
      for (size_t pos = 0; pos < token.size() && mapped;) {
        const int byte = CharToByte(NextCodePoint(token, pos));
        mapped = byte >= 0;
        if (mapped) bytes.push_back(static_cast<char>(byte));
      }
      // Tokens outside the byte alphabet (added tokens such as "<think>") pass through as-is.
      if (!mapped) {
        bytes.resize(mark);
        bytes += token;
      }
    }
    tokens.assign(1, Utf8Lossy(bytes));
    return Status::Ok();
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::string literal, std::optional<Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}
  Status DecodeChain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::vector<Span> spans;
      if (regex_) {
        SPC_ASSIGN_OR_RETURN(spans, regex_->FindAll(token));
      } else if (!literal_.empty()) {
        for (size_t p = token.find(literal_); p != std::string::npos;
             p = token.find(literal_, p + literal_.size())) {
          spans.push_back({p, p + literal_.size()});
        }
      }
      if (spans.empty()) continue;
      std::string out;
      size_t last = 0;
      for (const Span& s : spans) {
        out.append(token, last, s.begin - last);
        out += content_;
        last = s.end;
      }
      out.append(token, last);
      token = std::move(out);
    }
    return Status::Ok();
  }

 private:
  std::string literal_;
  std::optional<Regex> regex_;
  std::string content_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  Status DecodeChain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    const auto flush = [&] {
      if (pending.empty()) return;
      if (IsValidUtf8(pending)) {
        out.push_back(pending);
      } else {
        // The reference emits one replacement character per byte of a broken sequence.
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back(kReplacementChar);
      }
      pending.clear();
    };
    for (std::string& token : tokens) {
      if (const int byte = ParseByteToken(token); byte >= 0) {
        pending.push_back(static_cast<char>(byte));
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
    return Status::Ok();
  }

 private:
  // "<0xNN>" -> NN, otherwise -1.
  static int ParseByteToken(std::string_view token) {
    if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return -1;
    int value = 0;
    for (const char c : token.substr(3, 2)) {
      value *= 16;
      if (c >= '0' && c <= '9') {
        value += c - '0';
      } else if (c >= 'A' && c <= 'F') {
        value += c - 'A' + 10;
      } else if (c >= 'a' && c <= 'f') {
        value += c - 'a' + 10;
      } else {
        return -1;
      }
    }
    return value;
  }
};

class FuseDecoder final : public Decoder {
 public:
  Status DecodeChain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
    return Status::Ok();
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  Status DecodeChain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::vector<size_t> starts;  // byte offset of each code point, plus the end
      std::vector<char32_t> cps;
      for (size_t pos = 0; pos < token.size();) {
        starts.push_back(pos);
        cps.push_back(NextCodePoint(token, pos));
      }
      starts.push_back(token.size());
      size_t first = 0;
      while (first < start_ && first < cps.size() && cps[first] == content_) ++first;
      size_t last = cps.size();
      while (cps.size() - last < stop_ && last > first && cps[last - 1] == content_) --last;
      token = token.substr(starts[first], starts[last] - starts[first]);
    }
    return Status::Ok();
  }

 private:
  char32_t content_;
  size_t start_;
  size_t stop_;
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  Status DecodeChain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& token = tokens[i];
      for (size_t p = 0; p < token.size();) {
        if (token.compare(p, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && strip_first_ && p == 0)) out += ' ';
          p += replacement_.size();
        } else {
          out += token[p++];
        }
      }
      tokens[i] = std::move(out);
    }
    return Status::Ok();
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  Status DecodeChain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) SPC_RETURN_IF_ERROR(step->DecodeChain(tokens));
    return Status::Ok();
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

using Parsed = Result<std::unique_ptr<Decoder>>;

Parsed ParseReplace(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(PatternSpec pattern, GetPattern(obj));
  SPC_ASSIGN_OR_RETURN(std::string content, JsonFields(obj).RequiredString("content"));
  std::optional<Regex> regex;
  if (pattern.is_regex) {
    SPC_ASSIGN_OR_RETURN(regex, Regex::Compile(pattern.text));
    pattern.text.clear();
  }
  return std::unique_ptr<Decoder>(
      std::make_unique<ReplaceDecoder>(std::move(pattern.text), std::move(regex), content));
}

Parsed ParseStrip(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(std::string content, JsonFields(obj).RequiredString("content"));
  if (content.empty() || CodePointLength(content, 0) != content.size()) {
    return InvalidArgument("field 'content' must be a single character");
  }
  SPC_ASSIGN_OR_RETURN(int64_t start, JsonFields(obj).Int("start", 0));
  SPC_ASSIGN_OR_RETURN(int64_t stop, JsonFields(obj).Int("stop", 0));
  if (start < 0 || stop < 0) return InvalidArgument("'start' and 'stop' must not be negative");
  size_t pos = 0;
  return std::unique_ptr<Decoder>(std::make_unique<StripDecoder>(
      NextCodePoint(content, pos), static_cast<size_t>(start), static_cast<size_t>(stop)));
}

Parsed ParseMetaspace(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(std::string replacement, JsonFields(obj).RequiredString("replacement"));
  if (replacement.empty()) return InvalidArgument("field 'replacement' must not be empty");
  SPC_ASSIGN_OR_RETURN(bool add_prefix_space, JsonFields(obj).Bool("add_prefix_space", true));
  SPC_ASSIGN_OR_RETURN(
      std::string scheme,
      JsonFields(obj).String("prepend_scheme", add_prefix_space ? "always" : "never"));
  return std::unique_ptr<Decoder>(
      std::make_unique<MetaspaceDecoder>(std::move(replacement), scheme != "never"));
}

Parsed ParseSequence(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(const boost::json::array* items, JsonFields(obj).Array("decoders"));
  std::vector<std::unique_ptr<Decoder>> steps;
  for (const boost::json::value& item : *items) {
    SPC_ASSIGN_OR_RETURN(std::unique_ptr<Decoder> step, ParseDecoder(item));
    if (step) steps.push_back(std::move(step));
  }
  return std::unique_ptr<Decoder>(std::make_unique<SequenceDecoder>(std::move(steps)));
}

}  // namespace

Result<std::unique_ptr<Decoder>> ParseDecoder(const boost::json::value& value) {
  if (value.is_null()) return std::unique_ptr<Decoder>();
  SPC_ASSIGN_OR_RETURN(const std::string type, ComponentType(value, "decoder"));
  const boost::json::object& obj = value.get_object();
  Parsed result = std::unique_ptr<Decoder>();
  if (type == "ByteLevel") {
    result = Make<ByteLevelDecoder>();
  } else if (type == "Replace") {
    result = ParseReplace(obj);
  } else if (type == "ByteFallback") {
    result = Make<ByteFallbackDecoder>();
  } else if (type == "Fuse") {
    result = Make<FuseDecoder>();
  } else if (type == "Strip") {
    result = ParseStrip(obj);
  } else if (type == "Metaspace") {
    result = ParseMetaspace(obj);
  } else if (type == "Sequence") {
    result = ParseSequence(obj);
  } else {
    return Unimplemented("decoder type '" + type + "' is not supported");
  }
  if (!result.ok()) return result.status().WithContext("decoder " + type);
  return result;
}

}  // namespace specontext::tok
