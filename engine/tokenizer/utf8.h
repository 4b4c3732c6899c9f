// UTF-8 and Unicode helpers shared by the tokenizer components. Text reaching them has been
// validated once at the API boundary, so the decoders here trust their input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/utf8.h"

namespace specontext::tok {

// Length of the code point starting at `pos` (1 for a stray byte, so loops always advance).
size_t CodePointLength(std::string_view text, size_t pos);

// Decodes the code point at `pos` and advances `pos` past it.
char32_t NextCodePoint(std::string_view text, size_t& pos);

using specontext::AppendUtf8;

bool IsValidUtf8(std::string_view bytes);

// Replaces every maximal invalid subsequence by U+FFFD, the rule the reference library uses
// when turning decoded bytes back into text.
std::string Utf8Lossy(std::string_view bytes);

bool IsWhitespace(char32_t cp);  // Unicode White_Space
bool IsNumeric(char32_t cp);     // general category N*
bool IsWordChar(char32_t cp);    // letters, marks, numbers, connector punctuation

// GPT-2's reversible byte <-> printable code point mapping used by byte-level BPE.
char32_t ByteToChar(uint8_t byte);
// Returns -1 when `cp` is not one of the 256 mapped code points.
int CharToByte(char32_t cp);

}  // namespace specontext::tok
