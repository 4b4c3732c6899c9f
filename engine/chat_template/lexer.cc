#include "engine/chat_template/lexer.h"

#include "common/utf8.h"

#include <cctype>
#include <cstdint>

namespace specontext::chat_template {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// jinja2 turns \r\n and \r into \n and drops one trailing newline before lexing.
std::string NormalizeNewlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  Result<std::vector<Token>> Run() {
    bool strip_leading = false;  // previous tag ended with '-'
    bool trim_newline = false;   // previous block/comment tag ended plainly (trim_blocks)
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t start = FindTagStart(pos_);
      std::string text = src_.substr(pos_, start - pos_);
      CountLines(text);
      if (strip_leading) {
        size_t k = 0;
        while (k < text.size() && IsSpace(text[k])) ++k;
        text.erase(0, k);
      } else if (trim_newline && !text.empty() && text[0] == '\n') {
        text.erase(0, 1);
      }
      strip_leading = trim_newline = false;
      if (start >= src_.size()) {
        EmitText(std::move(text));
        break;
      }
      const char kind = src_[start + 1];
      size_t p = start + 2;
      const char modifier = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
      if (modifier) ++p;
      if (modifier == '-') {
        size_t end = text.size();
        while (end > 0 && IsSpace(text[end - 1])) --end;
        text.resize(end);
      } else if (modifier != '+' && kind != '{') {
        const size_t nl = text.rfind('\n');
        const size_t line_pos = nl == std::string::npos ? 0 : nl + 1;
        if (line_pos > 0 || line_starting) {
          bool blank = line_pos < text.size();
          for (size_t k = line_pos; k < text.size(); ++k) blank = blank && IsSpace(text[k]);
          if (blank) text.resize(line_pos);
        }
      }
      EmitText(std::move(text));
      pos_ = p;
      char end_modifier = 0;
      if (kind == '#') {
        SPC_RETURN_IF_ERROR(SkipComment(end_modifier));
      } else if (kind == '%' && IsRawTag()) {
        SPC_RETURN_IF_ERROR(LexRaw(end_modifier));
      } else {
        SPC_RETURN_IF_ERROR(LexTag(kind, end_modifier));
      }
      if (end_modifier == '-') {
        strip_leading = true;
      } else if (end_modifier == 0 && kind != '{') {
        trim_newline = true;
      }
      line_starting = pos_ < src_.size() && src_[pos_] == '\n' && trim_newline;
      if (strip_leading || end_modifier == '+') line_starting = false;
    }
    tokens_.push_back({TokenKind::kEnd, "", line_});
    return std::move(tokens_);
  }

 private:
  size_t FindTagStart(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return src_.size();
  }

  void CountLines(std::string_view text) {
    for (char c : text) line_ += c == '\n';
  }

  void EmitText(std::string text) {
    if (!text.empty()) tokens_.push_back({TokenKind::kText, std::move(text), line_});
  }

  Status Error(const std::string& message) const {
    return InvalidArgument("line " + std::to_string(line_) + ": " + message);
  }

  Status SkipComment(char& end_modifier) {
    const size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) return Error("unterminated comment");
    CountLines(std::string_view(src_).substr(pos_, end - pos_));
    if (end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+')) end_modifier = src_[end - 1];
    pos_ = end + 2;
    return Status::Ok();
  }

  bool IsRawTag() const {
    size_t p = pos_;
    while (p < src_.size() && IsSpace(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    return p < src_.size() && (IsSpace(src_[p]) || src_[p] == '-' || src_[p] == '%');
  }

  // Finds the `%}` closing the tag that starts at pos_, returning its modifier.
  Result<size_t> FindBlockEnd(size_t from, char& modifier) const {
    const size_t end = src_.find("%}", from);
    if (end == std::string::npos) return Error("unterminated block tag");
    modifier = 0;
    if (end > from && (src_[end - 1] == '-' || src_[end - 1] == '+')) modifier = src_[end - 1];
    return end;
  }

  Status LexRaw(char& end_modifier) {
    char open_modifier = 0;
    SPC_ASSIGN_OR_RETURN(size_t open_end, FindBlockEnd(pos_, open_modifier));
    CountLines(std::string_view(src_).substr(pos_, open_end - pos_));
    size_t body_start = open_end + 2;
    if (open_modifier == '-') {
      while (body_start < src_.size() && IsSpace(src_[body_start])) ++body_start;
    }
    // The body runs to the next {% endraw %}, whatever it contains.
    size_t search = body_start;
    while (true) {
      const size_t tag = src_.find("{%", search);
      if (tag == std::string::npos) return Error("missing endraw");
      size_t p = tag + 2;
      const char modifier = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
      if (modifier) ++p;
      while (p < src_.size() && IsSpace(src_[p])) ++p;
      if (src_.compare(p, 6, "endraw") != 0) {
        search = tag + 2;
        continue;
      }
      std::string body = src_.substr(body_start, tag - body_start);
      CountLines(body);
      if (modifier == '-') {
        while (!body.empty() && IsSpace(body.back())) body.pop_back();
      }
      EmitText(std::move(body));
      SPC_ASSIGN_OR_RETURN(size_t close_end, FindBlockEnd(p + 6, end_modifier));
      pos_ = close_end + 2;
      return Status::Ok();
    }
  }

  Status LexTag(char kind, char& end_modifier) {
    const bool is_variable = kind == '{';
    const std::string end_marker = is_variable ? "}}" : "%}";
    tokens_.push_back(
        {is_variable ? TokenKind::kVariableBegin : TokenKind::kBlockBegin, "", line_});
    int depth = 0;  // brackets inside a variable tag may contain "}}"
    while (true) {
      while (pos_ < src_.size() && IsSpace(src_[pos_])) {
        line_ += src_[pos_] == '\n';
        ++pos_;
      }
      if (pos_ >= src_.size()) return Error("unexpected end of template inside a tag");
      const char c = src_[pos_];
      // Tag end, optionally preceded by a whitespace-control marker.
      if ((c == '-' || c == '+') && depth == 0 && src_.compare(pos_ + 1, 2, end_marker) == 0) {
        end_modifier = c;
        pos_ += 3;
        break;
      }
      if (depth == 0 && src_.compare(pos_, 2, end_marker) == 0) {
        end_modifier = 0;
        pos_ += 2;
        break;
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t end = pos_;
        while (end < src_.size() &&
               (std::isalnum(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) {
          ++end;
        }
        tokens_.push_back({TokenKind::kName, src_.substr(pos_, end - pos_), line_});
        pos_ = end;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        LexNumber();
      } else if (c == '\'' || c == '"') {
        SPC_RETURN_IF_ERROR(LexString(c));
      } else {
        static constexpr std::string_view kTwo[] = {"**", "//", "==", "!=", "<=", ">="};
        std::string op(1, c);
        for (std::string_view two : kTwo) {
          if (src_.compare(pos_, 2, two) == 0) op = std::string(two);
        }
        if (op.size() == 1 &&
            std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos) {
          return Error(std::string("unexpected character '") + c + "'");
        }
        if (c == '(' || c == '[' || c == '{') ++depth;
        if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
        tokens_.push_back({TokenKind::kOperator, op, line_});
        pos_ += op.size();
      }
    }
    tokens_.push_back({is_variable ? TokenKind::kVariableEnd : TokenKind::kBlockEnd, "", line_});
    return Status::Ok();
  }

  void LexNumber() {
    size_t end = pos_;
    auto digits = [&] {
      while (end < src_.size() &&
             (std::isdigit(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) {
        ++end;
      }
    };
    digits();
    bool is_float = false;
    if (end + 1 < src_.size() && src_[end] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[end + 1]))) {
      is_float = true;
      ++end;
      digits();
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
        is_float = true;
        end = e;
        digits();
      }
    }
    std::string text;
    for (size_t i = pos_; i < end; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    tokens_.push_back({is_float ? TokenKind::kFloat : TokenKind::kInteger, text, line_});
    pos_ = end;
  }

  // Decodes Python escape sequences, as jinja2 does for string literals.
  Status LexString(char quote) {
    const int start_line = line_;
    std::string value;
    size_t p = pos_ + 1;
    while (true) {
      if (p >= src_.size()) return Error("unterminated string literal");
      const char c = src_[p];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c != '\\' || p + 1 >= src_.size()) {
        value += c;
        ++p;
        continue;
      }
      const char e = src_[p + 1];
      p += 2;
      auto hex = [&](size_t count) -> int64_t {
        if (p + count > src_.size()) return -1;
        uint32_t cp = 0;
        for (size_t k = 0; k < count; ++k) {
          const char h = src_[p + k];
          if (!std::isxdigit(static_cast<unsigned char>(h))) return -1;
          cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                   ? h - '0'
                                                   : std::tolower(h) - 'a' + 10);
        }
        p += count;
        return cp;
      };
      switch (e) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'r':
          value += '\r';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'v':
          value += '\v';
          break;
        case 'a':
          value += '\a';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case '\n':
          ++line_;
          break;
        case 'x':
        case 'u':
        case 'U': {
          const int64_t cp = hex(e == 'x' ? 2 : e == 'u' ? 4 : 8);
          if (cp < 0 || cp > 0x10FFFF) return Error("invalid escape in string literal");
          AppendUtf8(static_cast<char32_t>(cp), value);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++k) {
              cp = cp * 8 + static_cast<uint32_t>(src_[p++] - '0');
            }
            AppendUtf8(cp, value);
          } else {
            value += '\\';
            value += e;
          }
      }
    }
    tokens_.push_back({TokenKind::kString, std::move(value), start_line});
    pos_ = p + 1;
    return Status::Ok();
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

Result<std::vector<Token>> Tokenize(std::string_view source) {
  return Lexer(NormalizeNewlines(source)).Run();
}

}  // namespace specontext::chat_template
