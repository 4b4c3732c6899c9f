#include "engine/chat_template/python_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace specontext::chat_template {

std::string FormatPythonFloat(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string sci(buf, end);
  // sci is "[-]d[.ddd]e[+-]XX": split into sign, digits and exponent.
  std::string sign;
  size_t pos = 0;
  if (sci[0] == '-') {
    sign = "-";
    pos = 1;
  }
  const size_t e = sci.find('e');
  std::string digits;
  for (size_t i = pos; i < e; ++i) {
    if (sci[i] != '.') digits += sci[i];
  }
  const int exponent = std::stoi(sci.substr(e + 1));
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (exponent < -4 || exponent >= 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+',
                  std::abs(exponent));
    return out + exp_buf;
  }
  std::string out;
  if (exponent < 0) {
    out = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  } else {
    const size_t int_len = static_cast<size_t>(exponent) + 1;
    if (digits.size() <= int_len) {
      out = digits + std::string(int_len - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, int_len) + "." + digits.substr(int_len);
    }
  }
  return sign + out;
}

namespace {

// The escapes Python's repr and JSON write alike.
bool AppendSharedEscape(std::string& out, unsigned char c) {
  switch (c) {
    case '\\':
      out += "\\\\";
      return true;
    case '\n':
      out += "\\n";
      return true;
    case '\r':
      out += "\\r";
      return true;
    case '\t':
      out += "\\t";
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string PythonStringRepr(std::string_view text) {
  const bool has_single = text.find('\'') != std::string_view::npos;
  const bool has_double = text.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : text) {
    if (AppendSharedEscape(out, c)) continue;
    if (c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

namespace {

void AppendEscapedCodePoint(std::string& out, uint32_t cp) {
  char buf[16];
  if (cp >= 0x10000) {
    cp -= 0x10000;
    std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
  } else {
    std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
  }
  out += buf;
}

void AppendJsonString(std::string& out, std::string_view text, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (ensure_ascii && c >= 0x80) {
      const size_t len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      uint32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
      for (size_t k = 1; k < len && i + k < text.size(); ++k) {
        cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
      }
      AppendEscapedCodePoint(out, cp);
      i += len - 1;
      continue;
    }
    if (AppendSharedEscape(out, c)) continue;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

Status AppendJson(std::string& out, const Value& value, const JsonOptions& options, int depth) {
  if (depth > 256) return InvalidArgument("tojson: value nested too deeply");
  const bool pretty = options.indent.has_value();
  auto newline = [&](int level) {
    if (!pretty) return;
    out += '\n';
    out.append(static_cast<size_t>(std::max(0, *options.indent) * level), ' ');
  };
  const std::string item_sep =
      options.separators ? options.separators->first : (pretty ? "," : ", ");
  const std::string key_sep = options.separators ? options.separators->second : ": ";
  switch (value.kind()) {
    case Value::Kind::kNone:
      out += "null";
      return Status::Ok();
    case Value::Kind::kBool:
      out += value.as_bool() ? "true" : "false";
      return Status::Ok();
    case Value::Kind::kInt:
      out += std::to_string(value.as_int());
      return Status::Ok();
    case Value::Kind::kFloat: {
      const double f = value.as_double();
      if (std::isnan(f)) {
        out += "NaN";
      } else if (std::isinf(f)) {
        out += f > 0 ? "Infinity" : "-Infinity";
      } else {
        out += FormatPythonFloat(f);
      }
      return Status::Ok();
    }
    case Value::Kind::kString:
      AppendJsonString(out, value.str(), options.ensure_ascii);
      return Status::Ok();
    case Value::Kind::kList: {
      if (value.list().empty()) {
        out += "[]";
        return Status::Ok();
      }
      out += '[';
      bool first = true;
      for (const Value& item : value.list()) {
        if (!first) out += item_sep;
        first = false;
        newline(depth + 1);
        SPC_RETURN_IF_ERROR(AppendJson(out, item, options, depth + 1));
      }
      newline(depth);
      out += ']';
      return Status::Ok();
    }
    case Value::Kind::kDict: {
      if (value.dict().is_namespace) break;
      if (value.dict().size() == 0) {
        out += "{}";
        return Status::Ok();
      }
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& entry : value.dict().entries()) entries.push_back(&entry);
      if (options.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto* a, const auto* b) { return a->first < b->first; });
      }
      out += '{';
      bool first = true;
      for (const auto* entry : entries) {
        if (!first) out += item_sep;
        first = false;
        newline(depth + 1);
        AppendJsonString(out, entry->first, options.ensure_ascii);
        out += key_sep;
        SPC_RETURN_IF_ERROR(AppendJson(out, entry->second, options, depth + 1));
      }
      newline(depth);
      out += '}';
      return Status::Ok();
    }
    default:
      break;
  }
  return InvalidArgument("Object of type " + std::string(value.TypeName()) +
                         " is not JSON serializable");
}

}  // namespace

Result<std::string> ToPythonJson(const Value& value, const JsonOptions& options) {
  std::string out;
  SPC_RETURN_IF_ERROR(AppendJson(out, value, options, 0));
  return out;
}

Result<std::string> PercentFormat(std::string_view format, const Value& args) {
  std::vector<Value> items;
  if (args.is_list()) {
    items = args.list();
  } else {
    items.push_back(args);
  }
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    // Flags, width and precision are passed through to snprintf for numeric conversions.
    size_t j = i + 1;
    while (j < format.size() &&
           std::string_view("-+ #0123456789.").find(format[j]) != std::string_view::npos) {
      ++j;
    }
    if (j >= format.size()) return InvalidArgument("incomplete format");
    const char conv = format[j];
    const std::string spec(format.substr(i, j - i));
    i = j;
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (next >= items.size()) return InvalidArgument("not enough arguments for format string");
    const Value& arg = items[next++];
    char buf[128];
    switch (conv) {
      case 's':
        out += arg.ToString();
        break;
      case 'r':
        out += arg.Repr();
        break;
      case 'd':
      case 'i':
      case 'x':
        if (!arg.is_number()) return InvalidArgument("%d format: a number is required");
        std::snprintf(
            buf, sizeof(buf), (spec + "ll" + (conv == 'x' ? 'x' : 'd')).c_str(),
            static_cast<long long>(arg.is_float() ? std::trunc(arg.as_double()) : arg.as_int()));
        out += buf;
        break;
      case 'f':
      case 'e':
      case 'g':
        if (!arg.is_number()) return InvalidArgument("%f format: a number is required");
        std::snprintf(buf, sizeof(buf), (spec + conv).c_str(), arg.as_double());
        out += buf;
        break;
      default:
        return InvalidArgument(std::string("unsupported format character '") + conv + "'");
    }
  }
  if (next < items.size() && args.is_list()) {
    return InvalidArgument("not all arguments converted during string formatting");
  }
  return out;
}

}  // namespace specontext::chat_template
