#include "engine/model/safetensors_reader.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "common/json_fields.h"
#include "engine/model/safetensors_dtype.h"

namespace specontext {
namespace {

// The format's own limit; a larger header means a corrupt or hostile file.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

Result<std::vector<int64_t>> ParseShape(const boost::json::value* value, const std::string& where) {
  if (value == nullptr || !value->is_array()) return DataLoss(where + ": \"shape\" must be a list");
  std::vector<int64_t> shape;
  for (const boost::json::value& dim : value->get_array()) {
    if (!dim.is_int64() || dim.get_int64() < 0) {
      if (!dim.is_uint64()) return DataLoss(where + ": shape has a non-integer or negative dim");
      return DataLoss(where + ": shape dimension is too large");
    }
    shape.push_back(dim.get_int64());
  }
  return shape;
}

Result<std::pair<uint64_t, uint64_t>> ParseOffsets(const boost::json::value* value,
                                                   const std::string& where) {
  if (value == nullptr || !value->is_array() || value->get_array().size() != 2) {
    return DataLoss(where + ": \"data_offsets\" must be [begin, end]");
  }
  uint64_t bounds[2];
  for (int i = 0; i < 2; ++i) {
    const boost::json::value& item = value->get_array()[i];
    if (item.is_int64() && item.get_int64() >= 0) {
      bounds[i] = static_cast<uint64_t>(item.get_int64());
    } else if (item.is_uint64()) {
      bounds[i] = item.get_uint64();
    } else {
      return DataLoss(where + ": data_offsets must be non-negative integers");
    }
  }
  if (bounds[0] > bounds[1]) return DataLoss(where + ": data_offsets begin exceeds end");
  return std::make_pair(bounds[0], bounds[1]);
}

// numel · element size, or nullopt on overflow.
std::optional<uint64_t> ByteSize(const std::vector<int64_t>& shape, DType dtype) {
  uint64_t bytes = DTypeSize(dtype);
  for (int64_t dim : shape) {
    const uint64_t d = static_cast<uint64_t>(dim);
    if (d != 0 && bytes > std::numeric_limits<uint64_t>::max() / d) return std::nullopt;
    bytes *= d;
  }
  return bytes;
}

Result<std::map<std::string, std::string>> ParseMetadata(const boost::json::value& value,
                                                         const std::string& path) {
  if (!value.is_object()) return DataLoss(path + ": __metadata__ must be an object");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.get_object()) {
    if (!item.is_string()) return DataLoss(path + ": __metadata__ values must be strings");
    metadata.emplace(std::string(key), std::string(item.get_string()));
  }
  return metadata;
}

}  // namespace

Result<SafetensorsFile> OpenSafetensors(const std::string& path) {
  SafetensorsFile out;
  SPC_ASSIGN_OR_RETURN(out.file, MappedFile::Open(path));
  const std::span<const std::byte> bytes = out.file->bytes();
  if (bytes.size() < 8) return DataLoss(path + ": truncated (no 8-byte header length)");
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | static_cast<uint8_t>(bytes[i]);
  if (header_bytes > bytes.size() - 8 || header_bytes > kMaxHeaderBytes) {
    return DataLoss(path + ": header length " + std::to_string(header_bytes) +
                    " exceeds the file (" + std::to_string(bytes.size()) + " bytes)");
  }
  const std::string_view header(reinterpret_cast<const char*>(bytes.data() + 8), header_bytes);
  auto object = ParseJsonObject(header, path + " header");
  if (!object.ok()) return DataLoss(object.status().message());
  const std::byte* data = bytes.data() + 8 + header_bytes;
  const uint64_t data_bytes = bytes.size() - 8 - header_bytes;

  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  for (const auto& [key, value] : *object) {
    const std::string name(key);
    if (name == "__metadata__") {
      SPC_ASSIGN_OR_RETURN(out.metadata, ParseMetadata(value, path));
      continue;
    }
    const std::string where = path + ": tensor " + name;
    if (!value.is_object()) return DataLoss(where + ": entry must be an object");
    const boost::json::object& entry = value.get_object();
    const boost::json::value* dtype_name = entry.if_contains("dtype");
    if (dtype_name == nullptr || !dtype_name->is_string()) {
      return DataLoss(where + ": \"dtype\" must be a string");
    }
    SPC_ASSIGN_OR_RETURN(DType dtype, ParseSafetensorsDType(dtype_name->get_string(), where));
    SPC_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ParseShape(entry.if_contains("shape"), where));
    SPC_ASSIGN_OR_RETURN(auto offsets, ParseOffsets(entry.if_contains("data_offsets"), where));
    const std::optional<uint64_t> expected = ByteSize(shape, dtype);
    if (!expected || *expected != offsets.second - offsets.first) {
      return DataLoss(where + ": data_offsets span " +
                      std::to_string(offsets.second - offsets.first) + " bytes but " +
                      std::string(DTypeName(dtype)) + " shape needs " +
                      (expected ? std::to_string(*expected) : std::string("too many")));
    }
    if (offsets.second > data_bytes) {
      return DataLoss(where + ": data_offsets end " + std::to_string(offsets.second) +
                      " lies beyond the data section (" + std::to_string(data_bytes) +
                      " bytes; file truncated?)");
    }
    out.tensors.emplace_back(name, TensorView{dtype, std::move(shape), data + offsets.first});
    ranges.push_back({offsets.first, offsets.second, nullptr});
  }
  for (size_t i = 0; i < ranges.size(); ++i) ranges[i].name = &out.tensors[i].first;
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end) {
      return DataLoss(path + ": tensors " + *ranges[i - 1].name + " and " + *ranges[i].name +
                      " overlap");
    }
  }
  return out;
}

namespace {

Result<std::map<std::string, std::string>> ReadShardIndex(const std::string& index_path) {
  SPC_ASSIGN_OR_RETURN(std::string text, ReadTextFile(index_path));
  SPC_ASSIGN_OR_RETURN(boost::json::object object, ParseJsonObject(text, index_path));
  const boost::json::value* map = object.if_contains("weight_map");
  if (map == nullptr || !map->is_object()) {
    return InvalidArgument(index_path + ": \"weight_map\" must be an object");
  }
  std::map<std::string, std::string> shard_of;
  for (const auto& [name, file] : map->get_object()) {
    if (!file.is_string())
      return InvalidArgument(index_path + ": weight_map values must be strings");
    const std::string shard(file.get_string());
    // A shard must sit beside the index: no paths out of the model directory.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
      return InvalidArgument(index_path + ": bad shard file name \"" + shard + "\"");
    }
    shard_of.emplace(std::string(name), shard);
  }
  return shard_of;
}

Status AddFile(const std::string& path, WeightStore& store,
               std::map<std::string, std::string>* file_of) {
  SPC_ASSIGN_OR_RETURN(SafetensorsFile file, OpenSafetensors(path));
  for (auto& [name, view] : file.tensors) {
    if (file_of != nullptr) (*file_of)[name] = path;
    SPC_RETURN_IF_ERROR(store.Add(name, std::move(view)).WithContext(path));
  }
  store.AddBacking(std::move(file.file));
  return Status::Ok();
}

}  // namespace

Status LoadSafetensorsDirectory(const std::string& dir, WeightStore& store,
                                std::map<std::string, std::string>* file_of) {
  const std::filesystem::path root(dir);
  const std::string index_path = (root / "model.safetensors.index.json").string();
  std::error_code ec;
  if (!std::filesystem::exists(index_path, ec)) {
    const std::string single = (root / "model.safetensors").string();
    if (!std::filesystem::exists(single, ec)) {
      return NotFound(dir + ": neither model.safetensors nor model.safetensors.index.json");
    }
    return AddFile(single, store, file_of);
  }
  SPC_ASSIGN_OR_RETURN(auto shard_of, ReadShardIndex(index_path));
  std::set<std::string> shards;
  for (const auto& [name, shard] : shard_of) shards.insert(shard);
  std::map<std::string, std::string> loaded_from;
  for (const std::string& shard : shards) {
    SPC_RETURN_IF_ERROR(AddFile((root / shard).string(), store, &loaded_from)
                            .WithContext(index_path + " names shard " + shard));
  }
  for (const auto& [name, shard] : shard_of) {
    auto it = loaded_from.find(name);
    if (it == loaded_from.end() || std::filesystem::path(it->second).filename() != shard) {
      return DataLoss(index_path + ": tensor " + name + " is not in its shard " + shard);
    }
  }
  if (file_of != nullptr) file_of->merge(loaded_from);
  return Status::Ok();
}

}  // namespace specontext
