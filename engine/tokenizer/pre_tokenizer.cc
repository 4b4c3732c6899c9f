#include "engine/tokenizer/pre_tokenizer.h"

#include <optional>
#include <string_view>
#include <utility>

#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/regex.h"
#include "engine/tokenizer/split_behavior.h"
#include "engine/tokenizer/utf8.h"

namespace specontext::tok {
namespace {

// Upcasts at creation so the result converts to Result<std::unique_ptr<PreTokenizer>> directly.
template <typename T, typename... Args>
std::unique_ptr<PreTokenizer> Make(Args&&... args) {
  return std::make_unique<T>(std::forward<Args>(args)...);
}

constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Every occurrence of each code point satisfying `pred`, one span per code point.
template <typename Pred>
std::vector<Span> FindCodePoints(std::string_view text, Pred pred) {
  std::vector<Span> spans;
  for (size_t pos = 0; pos < text.size();) {
    const size_t begin = pos;
    if (pred(NextCodePoint(text, pos))) spans.push_back({begin, pos});
  }
  return spans;
}

std::vector<Span> FindLiteral(std::string_view text, std::string_view literal) {
  std::vector<Span> spans;
  if (literal.empty()) return spans;
  for (size_t pos = text.find(literal); pos != std::string_view::npos;
       pos = text.find(literal, pos + literal.size())) {
    spans.push_back({pos, pos + literal.size()});
  }
  return spans;
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::string literal, std::optional<Regex> regex, SplitBehavior behavior,
                    bool invert)
      : literal_(std::move(literal)),
        regex_(std::move(regex)),
        behavior_(behavior),
        invert_(invert) {}

  Status PreTokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size());
    for (const Piece& piece : pieces) {
      std::vector<Span> spans;
      if (regex_) {
        SPC_ASSIGN_OR_RETURN(spans, regex_->FindAll(piece.text));
      } else {
        spans = FindLiteral(piece.text, literal_);
      }
      std::vector<Marked> marks = MarkMatches(piece.text.size(), spans);
      if (invert_) {
        for (Marked& m : marks) m.is_match = !m.is_match;
      }
      SplitPiece(piece, std::move(marks), behavior_, out);
    }
    pieces = std::move(out);
    return Status::Ok();
  }

 private:
  std::string literal_;
  std::optional<Regex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::optional<Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}

  Status PreTokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> split;
    split.reserve(pieces.size());
    for (Piece& piece : pieces) {
      if (add_prefix_space_ && !piece.text.starts_with(' ')) piece.text.insert(0, " ");
      if (!regex_) {
        split.push_back(std::move(piece));
        continue;
      }
      SPC_ASSIGN_OR_RETURN(std::vector<Span> spans, regex_->FindAll(piece.text));
      SplitPiece(piece, MarkMatches(piece.text.size(), spans), SplitBehavior::kIsolated, split);
    }
    for (Piece& piece : split) {
      std::string mapped;
      mapped.reserve(piece.text.size() * 2);
      for (const char c : piece.text) AppendUtf8(ByteToChar(static_cast<uint8_t>(c)), mapped);
      piece.text = std::move(mapped);
    }
    pieces = std::move(split);
    return Status::Ok();
  }

 private:
  bool add_prefix_space_;
  std::optional<Regex> regex_;
};

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  Status PreTokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& piece : pieces) {
      SplitPiece(piece, MarkMatches(piece.text.size(), FindCodePoints(piece.text, IsNumeric)),
                 individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, out);
    }
    pieces = std::move(out);
    return Status::Ok();
  }

 private:
  bool individual_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}

  Status PreTokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (Piece& piece : pieces) {
      std::string text;
      text.reserve(piece.text.size() + replacement_.size());
      for (const char c : piece.text) {
        if (c == ' ') {
          text += replacement_;
        } else {
          text += c;
        }
      }
      const bool prepend = scheme_ == PrependScheme::kAlways ||
                           (scheme_ == PrependScheme::kFirst && piece.at_input_start);
      if (prepend && !text.starts_with(replacement_)) text.insert(0, replacement_);
      piece.text = std::move(text);
      if (!split_) {
        out.push_back(std::move(piece));
        continue;
      }
      SplitPiece(piece, MarkMatches(piece.text.size(), FindLiteral(piece.text, replacement_)),
                 SplitBehavior::kMergedWithNext, out);
    }
    pieces = std::move(out);
    return Status::Ok();
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class WhitespaceSplitPreTokenizer final : public PreTokenizer {
 public:
  Status PreTokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& piece : pieces) {
      SplitPiece(piece, MarkMatches(piece.text.size(), FindCodePoints(piece.text, IsWhitespace)),
                 SplitBehavior::kRemoved, out);
    }
    pieces = std::move(out);
    return Status::Ok();
  }
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  Status PreTokenize(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) SPC_RETURN_IF_ERROR(step->PreTokenize(pieces));
    return Status::Ok();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

using Parsed = Result<std::unique_ptr<PreTokenizer>>;

Parsed ParseSplit(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(PatternSpec pattern, GetPattern(obj));
  SPC_ASSIGN_OR_RETURN(std::string behavior_name, JsonFields(obj).RequiredString("behavior"));
  SPC_ASSIGN_OR_RETURN(SplitBehavior behavior, ParseSplitBehavior(behavior_name));
  SPC_ASSIGN_OR_RETURN(bool invert, JsonFields(obj).Bool("invert", false));
  std::optional<Regex> regex;
  if (pattern.is_regex) {
    SPC_ASSIGN_OR_RETURN(regex, Regex::Compile(pattern.text));
    pattern.text.clear();
  }
  return std::unique_ptr<PreTokenizer>(std::make_unique<SplitPreTokenizer>(
      std::move(pattern.text), std::move(regex), behavior, invert));
}

Parsed ParseByteLevel(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(bool add_prefix_space, JsonFields(obj).Bool("add_prefix_space", true));
  SPC_ASSIGN_OR_RETURN(bool use_regex, JsonFields(obj).Bool("use_regex", true));
  std::optional<Regex> regex;
  if (use_regex) {
    SPC_ASSIGN_OR_RETURN(regex, Regex::Compile(kGpt2Pattern));
  }
  return std::unique_ptr<PreTokenizer>(
      std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, std::move(regex)));
}

Parsed ParseMetaspace(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(std::string replacement, JsonFields(obj).RequiredString("replacement"));
  if (replacement.empty() || CodePointLength(replacement, 0) != replacement.size()) {
    return InvalidArgument("field 'replacement' must be a single character");
  }
  SPC_ASSIGN_OR_RETURN(bool add_prefix_space, JsonFields(obj).Bool("add_prefix_space", true));
  SPC_ASSIGN_OR_RETURN(
      std::string scheme_name,
      JsonFields(obj).String("prepend_scheme", add_prefix_space ? "always" : "never"));
  PrependScheme scheme = PrependScheme::kAlways;
  if (scheme_name == "first") {
    scheme = PrependScheme::kFirst;
  } else if (scheme_name == "never") {
    scheme = PrependScheme::kNever;
  } else if (scheme_name != "always") {
    return InvalidArgument("unknown prepend_scheme '" + scheme_name + "'");
  }
  SPC_ASSIGN_OR_RETURN(bool split, JsonFields(obj).Bool("split", true));
  return std::unique_ptr<PreTokenizer>(
      std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme, split));
}

Parsed ParseSequence(const boost::json::object& obj) {
  SPC_ASSIGN_OR_RETURN(const boost::json::array* items, JsonFields(obj).Array("pretokenizers"));
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  for (const boost::json::value& item : *items) {
    SPC_ASSIGN_OR_RETURN(std::unique_ptr<PreTokenizer> step, ParsePreTokenizer(item));
    if (step) steps.push_back(std::move(step));
  }
  return std::unique_ptr<PreTokenizer>(std::make_unique<SequencePreTokenizer>(std::move(steps)));
}

// Whitespace keeps runs of word characters and runs of other non-space characters.
Parsed MakeWhitespace() {
  SPC_ASSIGN_OR_RETURN(Regex regex, Regex::Compile(R"(\w+|[^\w\s]+)"));
  return std::unique_ptr<PreTokenizer>(std::make_unique<SplitPreTokenizer>(
      std::string(), std::move(regex), SplitBehavior::kRemoved, /*invert=*/true));
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const boost::json::value& value) {
  if (value.is_null()) return std::unique_ptr<PreTokenizer>();
  SPC_ASSIGN_OR_RETURN(const std::string type, ComponentType(value, "pre_tokenizer"));
  const boost::json::object& obj = value.get_object();
  Parsed result = std::unique_ptr<PreTokenizer>();
  if (type == "Split") {
    result = ParseSplit(obj);
  } else if (type == "ByteLevel") {
    result = ParseByteLevel(obj);
  } else if (type == "Digits") {
    Result<bool> individual = JsonFields(obj).Bool("individual_digits", false);
    if (!individual.ok()) return individual.status().WithContext("pre_tokenizer Digits");
    result = Make<DigitsPreTokenizer>(*individual);
  } else if (type == "Metaspace") {
    result = ParseMetaspace(obj);
  } else if (type == "Whitespace") {
    result = MakeWhitespace();
  } else if (type == "WhitespaceSplit") {
    result = Make<WhitespaceSplitPreTokenizer>();
  } else if (type == "Sequence") {
    result = ParseSequence(obj);
  } else {
    return Unimplemented("pre_tokenizer type '" + type + "' is not supported");
  }
  if (!result.ok()) return result.status().WithContext("pre_tokenizer " + type);
  return result;
}

}  // namespace specontext::tok
