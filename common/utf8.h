// UTF-8 encoding of one code point, shared by the tokenizer and the chat-template interpreter.
#pragma once

#include <string>

namespace specontext {

// Appends `cp` (at most U+10FFFF; callers validate) as UTF-8.
void AppendUtf8(char32_t cp, std::string& out);

}  // namespace specontext
