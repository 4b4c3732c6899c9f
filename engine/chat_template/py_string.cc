#include "engine/chat_template/py_string.h"

#include "common/utf8.h"

#include <algorithm>
#include <cctype>

#include "engine/chat_template/value.h"

namespace specontext::chat_template {
namespace {

// Simple case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic: the scripts
// chat content commonly uses. Other code points have no case here.
uint32_t ToUpperCp(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c & ~1u;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 0 ? c - 1 : c;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x3B1 && c <= 0x3C9) return c - 32;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

uint32_t ToLowerCp(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c | 1u;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 1 ? c + 1 : c;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

bool IsCased(uint32_t c) { return ToUpperCp(c) != c || ToLowerCp(c) != c; }

std::vector<uint32_t> Decode(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    if (i + len > s.size()) len = s.size() - i;
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string Encode(const std::vector<uint32_t>& cps) {
  std::string out;
  for (uint32_t cp : cps) AppendUtf8(cp, out);
  return out;
}

// Case-maps only strings that are valid enough to decode; ASCII-only input stays byte-exact.
template <typename F>
std::string MapCodePoints(std::string_view s, F f) {
  std::vector<uint32_t> cps = Decode(s);
  bool previous_cased = false;
  for (size_t i = 0; i < cps.size(); ++i) {
    const bool cased = IsCased(cps[i]);
    cps[i] = f(cps[i], i, previous_cased);
    previous_cased = cased;
  }
  return Encode(cps);
}

}  // namespace

bool IsPyWhitespace(std::string_view cp) {
  if (cp.size() == 1) {
    const char c = cp[0];
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
  }
  // U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
  static constexpr std::string_view kWide[] = {"\u0085", "\u00a0", "\u1680", "\u2000", "\u2001",
                                               "\u2002", "\u2003", "\u2004", "\u2005", "\u2006",
                                               "\u2007", "\u2008", "\u2009", "\u200a", "\u2028",
                                               "\u2029", "\u202f", "\u205f", "\u3000"};
  return std::find(std::begin(kWide), std::end(kWide), cp) != std::end(kWide);
}

std::string PyUpper(std::string_view s) {
  return MapCodePoints(s, [](uint32_t c, size_t, bool) { return ToUpperCp(c); });
}

std::string PyLower(std::string_view s) {
  return MapCodePoints(s, [](uint32_t c, size_t, bool) { return ToLowerCp(c); });
}

std::string PyCapitalize(std::string_view s) {
  return MapCodePoints(
      s, [](uint32_t c, size_t i, bool) { return i == 0 ? ToUpperCp(c) : ToLowerCp(c); });
}

std::string PyTitle(std::string_view s) {
  return MapCodePoints(s, [](uint32_t c, size_t, bool previous_cased) {
    return previous_cased ? ToLowerCp(c) : ToUpperCp(c);
  });
}

bool IsUpperOrLower(std::string_view s, bool upper) {
  bool any = false;
  for (uint32_t c : Decode(s)) {
    if (!IsCased(c)) continue;
    any = true;
    if ((ToUpperCp(c) == c) != upper) return false;
  }
  return any;
}

std::string PyStrip(std::string_view s, const std::optional<std::string>& chars, StripSide side) {
  const std::vector<std::string> cps = Utf8Chars(s);
  const std::vector<std::string> set = chars ? Utf8Chars(*chars) : std::vector<std::string>{};
  auto strip = [&](const std::string& cp) {
    return chars ? std::find(set.begin(), set.end(), cp) != set.end() : IsPyWhitespace(cp);
  };
  size_t begin = 0;
  size_t end = cps.size();
  if (side != StripSide::kRight) {
    while (begin < end && strip(cps[begin])) ++begin;
  }
  if (side != StripSide::kLeft) {
    while (end > begin && strip(cps[end - 1])) --end;
  }
  std::string out;
  for (size_t i = begin; i < end; ++i) out += cps[i];
  return out;
}

std::vector<std::string> PySplit(std::string_view s, const std::optional<std::string>& sep,
                                 int64_t max_split, bool from_right) {
  std::vector<std::string> parts;
  if (sep) {
    if (!from_right) {
      size_t pos = 0;
      while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
        const size_t hit = s.find(*sep, pos);
        if (hit == std::string_view::npos) break;
        parts.emplace_back(s.substr(pos, hit - pos));
        pos = hit + sep->size();
      }
      parts.emplace_back(s.substr(pos));
      return parts;
    }
    size_t end = s.size();
    while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
      if (end < sep->size()) break;
      const size_t hit = s.rfind(*sep, end - sep->size());
      if (hit == std::string_view::npos) break;
      parts.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
      end = hit;
    }
    parts.emplace_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
    return parts;
  }
  // Whitespace split: runs of whitespace separate, leading/trailing whitespace is dropped.
  std::vector<std::string> cps = Utf8Chars(s);
  if (from_right) std::reverse(cps.begin(), cps.end());
  size_t i = 0;
  while (i < cps.size()) {
    while (i < cps.size() && IsPyWhitespace(cps[i])) ++i;
    if (i >= cps.size()) break;
    std::string word;
    if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
      size_t end = cps.size();
      while (end > i && IsPyWhitespace(cps[end - 1])) --end;
      for (size_t k = i; k < end; ++k) word += cps[k];
      parts.push_back(std::move(word));
      break;
    }
    while (i < cps.size() && !IsPyWhitespace(cps[i])) word += cps[i++];
    parts.push_back(std::move(word));
  }
  if (from_right) {
    for (std::string& part : parts) {
      std::vector<std::string> chars = Utf8Chars(part);
      std::reverse(chars.begin(), chars.end());
      part.clear();
      for (const std::string& c : chars) part += c;
    }
    std::reverse(parts.begin(), parts.end());
  }
  return parts;
}

std::vector<std::string> PySplitLines(std::string_view s, bool keep_ends) {
  std::vector<std::string> lines;
  const std::vector<std::string> cps = Utf8Chars(s);
  std::string line;
  for (size_t i = 0; i < cps.size(); ++i) {
    const std::string& cp = cps[i];
    const bool is_break = cp == "\n" || cp == "\r" || cp == "\v" || cp == "\f" || cp == "\x1c" ||
                          cp == "\x1d" || cp == "\x1e" || cp == "\u0085" || cp == "\u2028" ||
                          cp == "\u2029";
    if (!is_break) {
      line += cp;
      continue;
    }
    std::string ending = cp;
    if (cp == "\r" && i + 1 < cps.size() && cps[i + 1] == "\n") {
      ending += "\n";
      ++i;
    }
    if (keep_ends) line += ending;
    lines.push_back(std::move(line));
    line.clear();
  }
  if (!line.empty()) lines.push_back(std::move(line));
  return lines;
}

std::string PyReplace(std::string_view s, std::string_view old, std::string_view replacement,
                      int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts the replacement before every code point and at the end.
    int64_t done = 0;
    for (const std::string& cp : Utf8Chars(s)) {
      if (count < 0 || done < count) {
        out += replacement;
        ++done;
      }
      out += cp;
    }
    if (count < 0 || done < count) out += replacement;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t hit = s.find(old, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(replacement);
    pos = hit + old.size();
    ++done;
  }
  out.append(s.substr(pos));
  return out;
}

int64_t PyCount(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(Utf8Length(s)) + 1;
  int64_t n = 0;
  for (size_t pos = s.find(sub); pos != std::string_view::npos;
       pos = s.find(sub, pos + sub.size())) {
    ++n;
  }
  return n;
}

int64_t PyFind(std::string_view s, std::string_view sub) {
  const size_t hit = s.find(sub);
  if (hit == std::string_view::npos) return -1;
  return static_cast<int64_t>(Utf8Length(s.substr(0, hit)));
}

}  // namespace specontext::chat_template
