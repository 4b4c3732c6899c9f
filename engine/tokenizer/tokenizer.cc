#include "engine/tokenizer/tokenizer.h"

#include <boost/json.hpp>

#include <fstream>
#include <sstream>
#include <utility>

#include "engine/tokenizer/added_vocabulary.h"
#include "engine/tokenizer/bpe_model.h"
#include "engine/tokenizer/decoder.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/normalizer.h"
#include "engine/tokenizer/post_processor.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/utf8.h"

namespace specontext {
namespace {

Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return DataLoss("error reading " + path.string());
  return std::move(buffer).str();
}

Result<boost::json::value> ParseJson(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec);
  if (ec) return DataLoss("invalid JSON: " + ec.message());
  if (!value.is_object()) return DataLoss("top-level JSON value must be an object");
  return value;
}

const boost::json::value& FieldOrNull(const boost::json::object& obj, std::string_view key) {
  static const boost::json::value kNull;
  const boost::json::value* v = obj.if_contains(key);
  return v == nullptr ? kNull : *v;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(
    const std::filesystem::path& path, std::optional<std::filesystem::path> config_path) {
  SPC_ASSIGN_OR_RETURN(std::string json, ReadFile(path));
  if (!config_path) {
    std::filesystem::path sibling = path.parent_path() / "tokenizer_config.json";
    std::error_code ec;
    if (std::filesystem::exists(sibling, ec)) config_path = std::move(sibling);
  }
  std::string config;
  if (config_path) {
    SPC_ASSIGN_OR_RETURN(config, ReadFile(*config_path));
  }
  auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer());
  if (Status s = tokenizer->Load(json); !s.ok()) return s.WithContext(path.string());
  if (config_path) {
    if (Status s = tokenizer->LoadConfig(config); !s.ok()) {
      return s.WithContext(config_path->string());
    }
  }
  return tokenizer;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view tokenizer_json,
                                                       std::string_view config_json) {
  auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer());
  if (Status s = tokenizer->Load(tokenizer_json); !s.ok()) return s.WithContext("tokenizer.json");
  if (!config_json.empty()) {
    if (Status s = tokenizer->LoadConfig(config_json); !s.ok()) {
      return s.WithContext("tokenizer_config.json");
    }
  }
  return tokenizer;
}

Status Tokenizer::Load(std::string_view tokenizer_json) {
  SPC_ASSIGN_OR_RETURN(boost::json::value root_value, ParseJson(tokenizer_json));
  const boost::json::object& root = root_value.get_object();

  SPC_ASSIGN_OR_RETURN(const boost::json::object* model, JsonFields(root).Object("model"));
  SPC_ASSIGN_OR_RETURN(std::string model_type, JsonFields(*model).String("type", "BPE"));
  if (model_type != "BPE") {
    return Unimplemented("model type '" + model_type + "' is not supported (only BPE)");
  }
  Result<std::unique_ptr<tok::BpeModel>> bpe = tok::BpeModel::FromJson(*model);
  if (!bpe.ok()) return bpe.status().WithContext("model BPE");
  model_ = std::move(bpe).value();

  SPC_ASSIGN_OR_RETURN(normalizer_, tok::ParseNormalizer(FieldOrNull(root, "normalizer")));
  SPC_ASSIGN_OR_RETURN(pre_tokenizer_, tok::ParsePreTokenizer(FieldOrNull(root, "pre_tokenizer")));
  SPC_ASSIGN_OR_RETURN(decoder_, tok::ParseDecoder(FieldOrNull(root, "decoder")));
  SPC_ASSIGN_OR_RETURN(tok::PostProcessor post,
                       tok::ParsePostProcessor(FieldOrNull(root, "post_processor")));
  post_processor_ = std::make_unique<tok::PostProcessor>(std::move(post));

  const boost::json::value& added = FieldOrNull(root, "added_tokens");
  if (!added.is_null()) {
    if (!added.is_array()) return InvalidArgument("field 'added_tokens' must be an array");
    SPC_ASSIGN_OR_RETURN(added_tokens_, tok::ParseAddedTokens(added.get_array()));
  }
  SPC_RETURN_IF_ERROR(IndexAddedTokens());
  for (const std::vector<int32_t>* ids : {&post_processor_->prefix, &post_processor_->suffix}) {
    for (const int32_t id : *ids) {
      if (!TokenText(id)) {
        return InvalidArgument("post_processor uses unknown id " + std::to_string(id));
      }
    }
  }
  return Status::Ok();
}

Status Tokenizer::IndexAddedTokens() {
  vocab_size_ = model_->IdLimit();
  // Normalized added tokens are matched against normalized text, so their own content goes
  // through the normalizer first.
  normalized_forms_.reserve(added_tokens_.size());
  for (const tok::AddedToken& token : added_tokens_) {
    // Ids far past the vocabulary would size the embedding table absurdly: a corrupt file.
    if (static_cast<size_t>(token.id) > 2 * (model_->IdLimit() + added_tokens_.size()) + 1024) {
      return InvalidArgument("added token '" + token.content + "' has implausible id " +
                             std::to_string(token.id));
    }
    added_by_id_[token.id] = &token;
    added_by_content_.try_emplace(token.content, token.id);
    if (token.special) special_ids_.insert(token.id);
    vocab_size_ = std::max(vocab_size_, static_cast<size_t>(token.id) + 1);
    if (!token.normalized) continue;
    tok::AddedToken form = token;
    bool unused_alignment = true;
    if (normalizer_) SPC_RETURN_IF_ERROR(normalizer_->Normalize(form.content, unused_alignment));
    normalized_forms_.push_back(std::move(form));
  }
  std::vector<const tok::AddedToken*> raw, normalized;
  for (const tok::AddedToken& token : added_tokens_) {
    if (!token.normalized) raw.push_back(&token);
  }
  for (const tok::AddedToken& form : normalized_forms_) normalized.push_back(&form);
  raw_matcher_ = std::make_unique<tok::AddedTokenMatcher>();
  raw_matcher_->Build(raw);
  normalized_matcher_ = std::make_unique<tok::AddedTokenMatcher>();
  normalized_matcher_->Build(normalized);
  return Status::Ok();
}

Status Tokenizer::LoadConfig(std::string_view config_json) {
  SPC_ASSIGN_OR_RETURN(boost::json::value root_value, ParseJson(config_json));
  const boost::json::object& root = root_value.get_object();
  // A special token is named by a string or by an AddedToken object with "content".
  const auto lookup = [&](std::string_view key) -> Result<std::optional<int32_t>> {
    const boost::json::value& v = FieldOrNull(root, key);
    if (v.is_null()) return std::optional<int32_t>();
    std::string name;
    if (v.is_string()) {
      name = v.get_string();
    } else if (v.is_object()) {
      SPC_ASSIGN_OR_RETURN(name, JsonFields(v.get_object()).RequiredString("content"));
    } else {
      return InvalidArgument("field '" + std::string(key) + "' must be a string or an object");
    }
    const std::optional<int32_t> id = TokenToId(name);
    if (!id) return InvalidArgument(std::string(key) + " '" + name + "' is not in the vocabulary");
    return id;
  };
  SPC_ASSIGN_OR_RETURN(bos_id_, lookup("bos_token"));
  SPC_ASSIGN_OR_RETURN(eos_id_, lookup("eos_token"));
  SPC_ASSIGN_OR_RETURN(pad_id_, lookup("pad_token"));
  return Status::Ok();
}

Status Tokenizer::EncodePlain(std::string_view text, bool at_input_start,
                              std::vector<int32_t>& ids) const {
  std::string normalized(text);
  bool start_aligned = at_input_start;
  if (normalizer_) SPC_RETURN_IF_ERROR(normalizer_->Normalize(normalized, start_aligned));
  for (const tok::Segment& segment : normalized_matcher_->Split(normalized)) {
    if (segment.added_id >= 0) {
      ids.push_back(segment.added_id);
      continue;
    }
    std::vector<tok::Piece> pieces;
    pieces.push_back({normalized.substr(segment.begin, segment.end - segment.begin),
                      start_aligned && segment.begin == 0});
    if (pre_tokenizer_) SPC_RETURN_IF_ERROR(pre_tokenizer_->PreTokenize(pieces));
    for (const tok::Piece& piece : pieces) model_->Tokenize(piece.text, ids);
  }
  return Status::Ok();
}

Result<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                               bool add_special_tokens) const {
  if (!tok::IsValidUtf8(text)) return InvalidArgument("text is not valid UTF-8");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  if (add_special_tokens) ids = post_processor_->prefix;
  for (const tok::Segment& segment : raw_matcher_->Split(text)) {
    if (segment.added_id >= 0) {
      ids.push_back(segment.added_id);
      continue;
    }
    SPC_RETURN_IF_ERROR(EncodePlain(text.substr(segment.begin, segment.end - segment.begin),
                                    segment.begin == 0, ids));
  }
  if (add_special_tokens) {
    ids.insert(ids.end(), post_processor_->suffix.begin(), post_processor_->suffix.end());
  }
  return ids;
}

const std::string* Tokenizer::TokenText(int32_t id) const {
  if (const auto it = added_by_id_.find(id); it != added_by_id_.end()) {
    return &it->second->content;
  }
  return model_->IdToToken(id);
}

Result<std::string> Tokenizer::Decode(std::span<const int32_t> ids,
                                      bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    const std::string* text = TokenText(id);
    if (text == nullptr)
      return InvalidArgument("token id " + std::to_string(id) + " is not in the vocabulary");
    if (skip_special_tokens && IsSpecial(id)) continue;
    tokens.push_back(*text);
  }
  std::string out;
  if (!decoder_) {
    // Without a decoder the reference joins tokens with spaces.
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  SPC_RETURN_IF_ERROR(decoder_->DecodeChain(tokens));
  for (const std::string& token : tokens) out += token;
  return out;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (const auto it = added_by_content_.find(std::string(token)); it != added_by_content_.end()) {
    return it->second;
  }
  return model_->TokenToId(token);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  const std::string* text = TokenText(id);
  if (text == nullptr) return std::nullopt;
  return *text;
}

}  // namespace specontext
