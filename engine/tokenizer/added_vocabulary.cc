#include "engine/tokenizer/added_vocabulary.h"

#include <algorithm>
#include <tuple>

#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/utf8.h"

namespace specontext::tok {
namespace {

bool EndsWithWordChar(std::string_view text) {
  if (text.empty()) return false;
  size_t pos = text.size() - 1;
  while (pos > 0 && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) --pos;
  return IsWordChar(NextCodePoint(text, pos));
}

bool StartsWithWordChar(std::string_view text) {
  size_t pos = 0;
  return !text.empty() && IsWordChar(NextCodePoint(text, pos));
}

// Start of the whitespace run that ends `text`.
size_t TrailingSpaceStart(std::string_view text) {
  size_t start = text.size();
  while (start > 0) {
    size_t pos = start - 1;
    while (pos > 0 && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) --pos;
    size_t probe = pos;
    if (!IsWhitespace(NextCodePoint(text, probe))) break;
    start = pos;
  }
  return start;
}

// Length of the whitespace run that starts `text`.
size_t LeadingSpaceLength(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t probe = pos;
    if (!IsWhitespace(NextCodePoint(text, probe))) break;
    pos = probe;
  }
  return pos;
}

}  // namespace

void AddedTokenMatcher::Build(const std::vector<const AddedToken*>& tokens) {
  tokens_ = tokens;
  nodes_.assign(1, Node{});
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& content = tokens_[t]->content;
    if (content.empty()) continue;
    first_byte_[static_cast<uint8_t>(content[0])] = true;
    int32_t node = 0;
    for (const char c : content) {
      const auto byte = static_cast<uint8_t>(c);
      auto it = nodes_[node].children.find(byte);
      if (it == nodes_[node].children.end()) {
        nodes_.emplace_back();
        it = nodes_[node].children.emplace(byte, static_cast<int32_t>(nodes_.size() - 1)).first;
      }
      node = it->second;
    }
    // With duplicate contents the first declared token wins.
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int32_t>(t);
  }
}

int32_t AddedTokenMatcher::LongestAt(std::string_view text, size_t pos, size_t& length) const {
  int32_t best = -1;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto it = nodes_[node].children.find(static_cast<uint8_t>(text[i]));
    if (it == nodes_[node].children.end()) break;
    node = it->second;
    if (nodes_[node].token >= 0) {
      best = nodes_[node].token;
      length = i + 1 - pos;
    }
  }
  return best;
}

std::vector<Segment> AddedTokenMatcher::Split(std::string_view text) const {
  std::vector<Segment> segments;
  size_t covered = 0;  // end of the last emitted added-token segment
  size_t pos = 0;
  while (pos < text.size()) {
    size_t length = 0;
    const int32_t t =
        first_byte_[static_cast<uint8_t>(text[pos])] ? LongestAt(text, pos, length) : -1;
    if (t < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = *tokens_[t];
    size_t start = pos;
    size_t stop = pos + length;
    pos = stop;
    if (token.single_word && ((start > 0 && EndsWithWordChar(text.substr(0, start))) ||
                              StartsWithWordChar(text.substr(stop)))) {
      continue;
    }
    if (start < covered) continue;
    if (token.lstrip) start = std::max(TrailingSpaceStart(text.substr(0, start)), covered);
    if (token.rstrip) stop += LeadingSpaceLength(text.substr(stop));
    if (start > covered) segments.push_back({covered, start, -1});
    segments.push_back({start, stop, token.id});
    covered = stop;
    pos = std::max(pos, stop);
  }
  if (covered < text.size()) segments.push_back({covered, text.size(), -1});
  return segments;
}

Result<std::vector<AddedToken>> ParseAddedTokens(const boost::json::array& items) {
  std::vector<AddedToken> tokens;
  tokens.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    if (!items[i].is_object()) return InvalidArgument(where + " must be an object");
    const boost::json::object& obj = items[i].get_object();
    AddedToken token;
    Result<int64_t> id = JsonFields(obj).Int("id", -1);
    if (!id.ok()) return id.status().WithContext(where);
    if (*id < 0 || *id > INT32_MAX) return InvalidArgument(where + " needs a non-negative 'id'");
    token.id = static_cast<int32_t>(*id);
    Result<std::string> content = JsonFields(obj).RequiredString("content");
    if (!content.ok()) return content.status().WithContext(where);
    if (content->empty()) return InvalidArgument(where + " has an empty 'content'");
    token.content = std::move(content).value();
    // Defaults are the reference's: an added token is normalized unless it says otherwise.
    for (auto [key, field, fallback] :
         {std::tuple{"single_word", &token.single_word, false},
          std::tuple{"lstrip", &token.lstrip, false}, std::tuple{"rstrip", &token.rstrip, false},
          std::tuple{"normalized", &token.normalized, true},
          std::tuple{"special", &token.special, false}}) {
      Result<bool> flag = JsonFields(obj).Bool(key, fallback);
      if (!flag.ok()) return flag.status().WithContext(where);
      *field = *flag;
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

}  // namespace specontext::tok
