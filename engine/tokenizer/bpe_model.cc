#include "engine/tokenizer/bpe_model.h"

#include <cstdio>
#include <mutex>
#include <queue>
#include <utility>

#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/utf8.h"

namespace specontext::tok {
namespace {

// Words longer than this are rare and would crowd the cache; the reference uses the same bound.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 1 << 16;

struct Candidate {
  int32_t rank;
  int32_t pos;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::FromJson(const boost::json::object& model) {
  auto bpe = std::unique_ptr<BpeModel>(new BpeModel());
  SPC_ASSIGN_OR_RETURN(const boost::json::object* vocab, JsonFields(model).Object("vocab"));
  SPC_RETURN_IF_ERROR(bpe->LoadVocab(*vocab));
  SPC_ASSIGN_OR_RETURN(const boost::json::array* merges, JsonFields(model).Array("merges"));
  SPC_RETURN_IF_ERROR(bpe->LoadMerges(*merges));

  if (const boost::json::value* dropout = model.if_contains("dropout");
      dropout != nullptr && !dropout->is_null()) {
    const bool zero = (dropout->is_double() && dropout->get_double() == 0.0) ||
                      (dropout->is_int64() && dropout->get_int64() == 0);
    if (!zero) return Unimplemented("BPE dropout is not supported (inference is deterministic)");
  }
  SPC_ASSIGN_OR_RETURN(std::string unk, JsonFields(model).String("unk_token", ""));
  if (!unk.empty()) {
    const auto it = bpe->vocab_.find(unk);
    if (it == bpe->vocab_.end()) {
      return InvalidArgument("unk_token '" + unk + "' is not in the vocabulary");
    }
    bpe->unk_id_ = it->second;
  }
  SPC_ASSIGN_OR_RETURN(bpe->continuing_subword_prefix_,
                       JsonFields(model).String("continuing_subword_prefix", ""));
  SPC_ASSIGN_OR_RETURN(bpe->end_of_word_suffix_,
                       JsonFields(model).String("end_of_word_suffix", ""));
  SPC_ASSIGN_OR_RETURN(bpe->fuse_unk_, JsonFields(model).Bool("fuse_unk", false));
  SPC_ASSIGN_OR_RETURN(bpe->byte_fallback_, JsonFields(model).Bool("byte_fallback", false));
  SPC_ASSIGN_OR_RETURN(bpe->ignore_merges_, JsonFields(model).Bool("ignore_merges", false));
  bpe->byte_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    if (auto id = bpe->TokenToId(name)) bpe->byte_ids_[b] = *id;
  }
  return bpe;
}

Status BpeModel::LoadVocab(const boost::json::object& vocab) {
  vocab_.reserve(vocab.size());
  for (const auto& [key, value] : vocab) {
    if (!value.is_int64() || value.get_int64() < 0 || value.get_int64() > INT32_MAX) {
      return InvalidArgument("vocab entry '" + std::string(key) + "' must be a non-negative id");
    }
    const auto id = static_cast<int32_t>(value.get_int64());
    vocab_.emplace(std::string(key), id);
    if (static_cast<size_t>(id) >= id_to_token_.size()) {
      // Ids far beyond the entry count would make the reverse table huge: reject them.
      if (static_cast<size_t>(id) > 4 * vocab.size() + 1024) {
        return InvalidArgument("vocab id " + std::to_string(id) + " is implausibly large");
      }
      id_to_token_.resize(id + 1);
      id_present_.resize(id + 1, false);
    }
    id_to_token_[id] = std::string(key);
    id_present_[id] = true;
  }
  return Status::Ok();
}

Status BpeModel::LoadMerges(const boost::json::array& merges) {
  merges_.reserve(merges.size());
  int32_t rank = 0;
  for (const boost::json::value& entry : merges) {
    std::string_view left, right;
    if (entry.is_string()) {
      const std::string_view line = entry.get_string();
      const size_t space = line.find(' ');
      if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
        return InvalidArgument("merge " + std::to_string(rank) + " '" + std::string(line) +
                               "' is not two tokens separated by one space");
      }
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (entry.is_array() && entry.get_array().size() == 2 &&
               entry.get_array()[0].is_string() && entry.get_array()[1].is_string()) {
      left = entry.get_array()[0].get_string();
      right = entry.get_array()[1].get_string();
    } else {
      return InvalidArgument("merge " + std::to_string(rank) +
                             " must be \"a b\" or [\"a\", \"b\"]");
    }
    const auto left_id = TokenToId(left);
    const auto right_id = TokenToId(right);
    std::string merged(left);
    merged += right.substr(std::min(right.size(), continuing_subword_prefix_.size()));
    const auto merged_id = TokenToId(merged);
    if (!left_id || !right_id || !merged_id) {
      return InvalidArgument("merge " + std::to_string(rank) + " '" + std::string(left) + " " +
                             std::string(right) + "' uses a token missing from the vocabulary");
    }
    // A repeated pair keeps its last rank, as the reference's map insertion does.
    merges_.insert_or_assign(PairKey(*left_id, *right_id), Merge{rank, *merged_id});
    ++rank;
  }
  return Status::Ok();
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !id_present_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::InitialSymbols(std::string_view word, std::vector<int32_t>& ids) const {
  // Unknown characters collapse into one pending unk (with fuse_unk) that is emitted when the
  // next known character arrives, matching the reference's order of outputs.
  int32_t pending_unk = -1;
  std::string symbol;
  for (size_t pos = 0; pos < word.size();) {
    const size_t begin = pos;
    pos += CodePointLength(word, pos);
    symbol.clear();
    if (begin > 0) symbol += continuing_subword_prefix_;
    symbol += word.substr(begin, pos - begin);
    if (pos == word.size()) symbol += end_of_word_suffix_;
    if (const auto id = TokenToId(symbol)) {
      if (pending_unk >= 0) ids.push_back(pending_unk);
      pending_unk = -1;
      ids.push_back(*id);
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes = true;
      for (const char c : symbol) all_bytes = all_bytes && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all_bytes) {
        for (const char c : symbol) ids.push_back(byte_ids_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (!unk_id_) continue;
    if (pending_unk >= 0 && !fuse_unk_) ids.push_back(pending_unk);
    pending_unk = *unk_id_;
  }
  if (pending_unk >= 0) ids.push_back(pending_unk);
}

void BpeModel::ApplyMerges(std::vector<int32_t>& ids) const {
  const auto n = static_cast<int32_t>(ids.size());
  if (n < 2) return;
  std::vector<int32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto push_pair = [&](int32_t left) {
    if (left < 0 || next[left] < 0) return;
    const auto it = merges_.find(PairKey(ids[left], ids[next[left]]));
    if (it != merges_.end()) queue.push({it->second.rank, left});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const int32_t left = top.pos;
    if (!alive[left] || next[left] < 0) continue;
    const int32_t right = next[left];
    const auto it = merges_.find(PairKey(ids[left], ids[right]));
    // Stale entries: the pair at this position changed since it was queued.
    if (it == merges_.end() || it->second.rank != top.rank) continue;
    ids[left] = it->second.new_id;
    alive[right] = false;
    next[left] = next[right];
    if (next[left] >= 0) prev[next[left]] = left;
    push_pair(prev[left]);
    push_pair(left);
  }
  size_t out = 0;
  for (int32_t i = 0; i >= 0 && i < n; i = next[i]) ids[out++] = ids[i];
  ids.resize(out);
}

void BpeModel::CacheStore(std::string_view word, const std::vector<int32_t>& ids) const {
  std::unique_lock lock(cache_mutex_, std::try_to_lock);
  // Contended: skip caching rather than stall an encoding thread.
  if (!lock.owns_lock()) return;
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_.try_emplace(std::string(word), ids);
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto id = TokenToId(word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    if (const auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  ids.reserve(word.size());
  InitialSymbols(word, ids);
  ApplyMerges(ids);
  if (cacheable) CacheStore(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace specontext::tok
