#include "engine/tokenizer/utf8.h"

#include <utf8proc.h>

#include <array>

namespace specontext::tok {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// Length of the valid prefix of the sequence at `pos` (0 when the lead byte is invalid) and the
// full length the lead byte announces; follows the Unicode "maximal subpart" rule.
struct SequenceCheck {
  size_t valid = 0;
  size_t expected = 0;
};

SequenceCheck CheckSequence(std::string_view s, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t lead = byte(pos);
  if (lead < 0x80) return {1, 1};
  size_t expected = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    expected = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    expected = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    expected = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return {0, 1};
  }
  size_t valid = 1;
  for (size_t i = 1; i < expected; ++i) {
    if (pos + i >= s.size()) break;
    const uint8_t b = byte(pos + i);
    const uint8_t min = i == 1 ? lo : 0x80;
    const uint8_t max = i == 1 ? hi : 0xBF;
    if (b < min || b > max) break;
    ++valid;
  }
  return {valid, expected};
}

struct ByteTables {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 324> to_byte{};
  ByteTables() {
    to_byte.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_char[b] = printable ? static_cast<char32_t>(b) : next++;
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& Tables() {
  static const ByteTables tables;
  return tables;
}

}  // namespace

size_t CodePointLength(std::string_view text, size_t pos) {
  const SequenceCheck c = CheckSequence(text, pos);
  return c.valid == c.expected ? c.expected : 1;
}

char32_t NextCodePoint(std::string_view text, size_t& pos) {
  const size_t len = CodePointLength(text, pos);
  const auto b0 = static_cast<uint8_t>(text[pos]);
  char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t i = 1; i < len; ++i) cp = (cp << 6) | (static_cast<uint8_t>(text[pos + i]) & 0x3F);
  pos += len;
  return cp;
}

bool IsValidUtf8(std::string_view bytes) {
  for (size_t pos = 0; pos < bytes.size();) {
    const SequenceCheck c = CheckSequence(bytes, pos);
    if (c.valid != c.expected) return false;
    pos += c.expected;
  }
  return true;
}

std::string Utf8Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    const SequenceCheck c = CheckSequence(bytes, pos);
    if (c.valid == c.expected) {
      out.append(bytes.substr(pos, c.expected));
      pos += c.expected;
    } else {
      AppendUtf8(kReplacement, out);
      pos += c.valid == 0 ? 1 : c.valid;
    }
  }
  return out;
}

bool IsWhitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

bool IsNumeric(char32_t cp) {
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool IsWordChar(char32_t cp) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

char32_t ByteToChar(uint8_t byte) { return Tables().to_char[byte]; }

int CharToByte(char32_t cp) { return cp < Tables().to_byte.size() ? Tables().to_byte[cp] : -1; }

}  // namespace specontext::tok
