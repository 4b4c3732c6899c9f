// Builds a RetrievalHead from a checkpoint directory: finds which layout it is, checks every
// kept tensor's shape against the config and the config against the target, and copies only the
// kept weights to fp32.
#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cctype>
#include <cmath>
#include <map>
#include <string_view>

#include "common/json_fields.h"
#include "engine/model/mapped_file.h"
#include "engine/model/safetensors_reader.h"
#include "engine/model/weight_layout.h"
#include "engine/specontext/retrieval_head.h"

namespace specontext {
namespace {

constexpr std::string_view kTargetEmbedding = "model.embed_tokens.weight";

bool ContainsEagle(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name.find("eagle") != std::string::npos;
}

struct HeadConfig {
  ModelConfig model;
  int64_t target_hidden_size = 0;  // EAGLE-3's fc input is 3 × this; 0 when absent
  std::vector<int> aux_layer_ids;  // eagle_config.eagle_aux_hidden_state_layer_ids, if given
};

// YaRN checkpoints may give the magnitude correction as mscale / mscale_all_dim instead of
// attention_factor; the shared config parser reads only the latter.
Status ApplyYarnMscale(const JsonFields& fields, RopeScaling& scaling) {
  if (scaling.type != RopeScaling::Type::kYarn || scaling.attention_factor > 0.0) {
    return Status::Ok();
  }
  const boost::json::value* rope = fields.Find("rope_parameters");
  if (rope == nullptr) rope = fields.Find("rope_scaling");
  if (rope == nullptr || !rope->is_object()) return Status::Ok();
  const JsonFields rope_fields(rope->get_object(), "config.json rope_scaling");
  SPC_ASSIGN_OR_RETURN(const double mscale, rope_fields.Double("mscale", 0.0));
  SPC_ASSIGN_OR_RETURN(const double mscale_all_dim, rope_fields.Double("mscale_all_dim", 0.0));
  if (mscale == 0.0 || mscale_all_dim == 0.0) return Status::Ok();
  const auto get_mscale = [&](double m) {
    return scaling.factor <= 1.0 ? 1.0 : 0.1 * m * std::log(scaling.factor) + 1.0;
  };
  scaling.attention_factor = get_mscale(mscale) / get_mscale(mscale_all_dim);
  if (!(scaling.attention_factor > 0.0) || !std::isfinite(scaling.attention_factor)) {
    return rope_fields.Error("mscale", "gives a non-positive YaRN attention factor");
  }
  return Status::Ok();
}

Result<HeadConfig> ParseHeadConfig(const std::string& dir) {
  const std::string path = dir + "/config.json";
  SPC_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(path));
  SPC_ASSIGN_OR_RETURN(boost::json::object object, ParseJsonObject(text, path));
  // EAGLE-3 drafts are Llama configs under a draft architecture name (LlamaForCausalLMEagle3,
  // Eagle3LlamaForCausalLM, ...): parse them as the Llama layer they are.
  if (auto* list = object.if_contains("architectures"); list != nullptr && list->is_array()) {
    for (boost::json::value& name : list->get_array()) {
      if (name.is_string() && ContainsEagle(std::string(name.get_string()))) {
        name = "LlamaForCausalLM";
      }
    }
  }
  HeadConfig config;
  auto model = ParseModelConfig(boost::json::serialize(object));
  if (!model.ok()) return model.status().WithContext(dir);
  config.model = std::move(model).value();
  const JsonFields fields(object, path);
  SPC_ASSIGN_OR_RETURN(config.target_hidden_size, fields.Int("target_hidden_size", 0));
  SPC_RETURN_IF_ERROR(ApplyYarnMscale(fields, config.model.rope_scaling));
  if (config.target_hidden_size < 0) return fields.Error("target_hidden_size", "must be >= 0");
  if (const boost::json::value* eagle = fields.Find("eagle_config");
      eagle != nullptr && eagle->is_object()) {
    const JsonFields eagle_fields(eagle->get_object(), path + " eagle_config");
    if (eagle_fields.Find("eagle_aux_hidden_state_layer_ids") != nullptr) {
      SPC_ASSIGN_OR_RETURN(config.aux_layer_ids,
                           eagle_fields.IntOrIntList("eagle_aux_hidden_state_layer_ids"));
    }
  }
  return config;
}

// Columns [col0, col0 + cols) of a [rows][width] tensor, as fp32.
std::vector<float> ToFloat(const TensorView& t, int64_t col0, int64_t cols) {
  const int64_t rows = t.shape.size() == 2 ? t.shape[0] : 1;
  const int64_t width = t.shape.back();
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = t.At(r * width + col0 + c);
  }
  return out;
}

bool IsFloat(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

std::string Shape(int a, int b) { return std::to_string(a) + " / " + std::to_string(b); }

Status CheckAgainstTarget(const ModelConfig& head, const ModelConfig& target,
                          const std::string& dir) {
  const std::array<std::tuple<std::string_view, int, int>, 3> fields = {{
      {"num_attention_heads", head.num_heads, target.num_heads},
      {"num_key_value_heads", head.num_kv_heads, target.num_kv_heads},
      {"head_dim", head.head_dim, target.head_dim},
  }};
  for (const auto& [name, mine, theirs] : fields) {
    if (mine != theirs) {
      return InvalidArgument(dir + ": " + std::string(name) + " is " + std::to_string(mine) +
                             " but the target's is " + std::to_string(theirs) +
                             "; a retrieval head needs the target's query heads, KV heads and "
                             "head_dim (heads / KV heads / head_dim: head " +
                             Shape(head.num_heads, head.num_kv_heads) + " / " +
                             std::to_string(head.head_dim) + ", target " +
                             Shape(target.num_heads, target.num_kv_heads) + " / " +
                             std::to_string(target.head_dim) + ")");
    }
  }
  return Status::Ok();
}

}  // namespace

class RetrievalHeadLoader {
 public:
  static Result<std::unique_ptr<RetrievalHead>> Load(const std::string& dir, const Model& target,
                                                     const RetrievalHeadOptions& options) {
    SPC_ASSIGN_OR_RETURN(HeadConfig head_config, ParseHeadConfig(dir));
    ModelConfig config = head_config.model;
    SPC_RETURN_IF_ERROR(CheckAgainstTarget(config, target.config, dir));
    if (options.rope_from_target) {
      config.rope_theta = target.config.rope_theta;
      config.rope_scaling = target.config.rope_scaling;
      config.max_position_embeddings = target.config.max_position_embeddings;
    }
    if (options.yarn_factor > 1.0) {
      RopeScaling yarn;
      yarn.type = RopeScaling::Type::kYarn;
      yarn.factor = options.yarn_factor;
      yarn.original_max_position_embeddings = config.max_position_embeddings;
      config.rope_scaling = yarn;
    } else if (options.yarn_factor != 0.0) {
      return InvalidArgument("retrieval head: yarn_factor must be 0 (off) or > 1, got " +
                             std::to_string(options.yarn_factor));
    }
    auto rope = cpu::Rope::Create(config);
    if (!rope.ok()) return rope.status().WithContext(dir + ": RoPE");

    auto store = std::make_shared<WeightStore>();
    std::map<std::string, std::string> file_of;
    SPC_RETURN_IF_ERROR(LoadSafetensorsDirectory(dir, *store, &file_of));
    const int hidden = config.hidden_size;
    const auto get = [&](const std::string& name,
                         std::vector<int64_t> shape) -> Result<const TensorView*> {
      auto view = store->Get(name, shape);
      if (!view.ok()) return view.status().WithContext(dir);
      if (!IsFloat((*view)->dtype)) {
        return InvalidArgument(dir + ": tensor " + name + " must be F32, F16 or BF16, not " +
                               std::string(DTypeName((*view)->dtype)));
      }
      return view;
    };

    // The layout: which prefix holds the layer, and how wide its q_proj input is.
    std::string prefix;
    for (const char* candidate : {"midlayer.", "layers.0.", "model.layers.0."}) {
      if (store->Find(std::string(candidate) + "self_attn.q_proj.weight") != nullptr) {
        prefix = candidate;
        break;
      }
    }
    if (prefix.empty()) {
      return NotFound(dir +
                      ": no attention layer: expected midlayer.self_attn.q_proj.weight or "
                      "layers.0.self_attn.q_proj.weight (EAGLE-3 draft) or "
                      "model.layers.0.self_attn.q_proj.weight (Llama-family model)");
    }
    const TensorView* q_view = store->Find(prefix + "self_attn.q_proj.weight");
    const int64_t width = q_view->shape.size() == 2 ? q_view->shape[1] : -1;
    if (width != hidden && width != 2 * int64_t{hidden}) {
      return InvalidArgument(dir + ": " + prefix + "self_attn.q_proj.weight has input width " +
                             std::to_string(width) + "; expected hidden_size (" +
                             std::to_string(hidden) +
                             ", a Llama-family layer) or 2 × hidden_size (an EAGLE-3 draft)");
    }
    const bool eagle = width == 2 * int64_t{hidden};

    std::unique_ptr<RetrievalHead> head(new RetrievalHead(std::move(rope).value()));
    head->source_ = eagle ? RetrievalHead::Source::kEagle3 : RetrievalHead::Source::kDlm;
    SPC_ASSIGN_OR_RETURN(const TensorView* norm, get(prefix + "input_layernorm.weight", {hidden}));
    head->input_norm_ = ToFloat(*norm, 0, hidden);
    // A plain model layer reads no hidden state: it loads without the hidden path.
    const bool hidden_path = options.load_hidden_path && eagle;
    for (auto [proj, name, heads] :
         {std::tuple{&head->q_, std::string("q_proj"), config.num_heads},
          std::tuple{&head->k_, std::string("k_proj"), config.num_kv_heads}}) {
      const int rows = heads * config.head_dim;
      SPC_ASSIGN_OR_RETURN(const TensorView* w,
                           get(prefix + "self_attn." + name + ".weight", {rows, width}));
      proj->heads = heads;
      proj->embed_half = ToFloat(*w, 0, hidden);
      if (hidden_path) proj->hidden_half = ToFloat(*w, hidden, hidden);
      if (config.qkv_bias) {
        SPC_ASSIGN_OR_RETURN(const TensorView* b,
                             get(prefix + "self_attn." + name + ".bias", {rows}));
        proj->bias = ToFloat(*b, 0, rows);
      }
      if (config.qk_norm) {
        const std::string norm_name = prefix + "self_attn." + name.substr(0, 1) + "_norm.weight";
        SPC_ASSIGN_OR_RETURN(const TensorView* n, get(norm_name, {config.head_dim}));
        proj->head_norm = ToFloat(*n, 0, config.head_dim);
      }
    }
    if (hidden_path) {
      const int64_t target_hidden = head_config.target_hidden_size > 0
                                        ? head_config.target_hidden_size
                                        : target.config.hidden_size;
      SPC_ASSIGN_OR_RETURN(const TensorView* fc, get("fc.weight", {hidden, 3 * target_hidden}));
      SPC_ASSIGN_OR_RETURN(const TensorView* hn, get(prefix + "hidden_norm.weight", {hidden}));
      head->fc_ = ToFloat(*fc, 0, 3 * target_hidden);
      head->hidden_norm_ = ToFloat(*hn, 0, hidden);
      head->fused_hidden_size_ = static_cast<int>(3 * target_hidden);
      // Indices into the target's hidden states (0 = the embedding, i = the input of layer i):
      // the low / middle / high choice EAGLE-3 trainers default to.
      const int layers = target.config.num_layers;
      head->aux_layer_ids_ =
          head_config.aux_layer_ids.empty()
              ? std::vector<int>{std::min(2, layers), layers / 2, std::max(layers - 3, 0)}
              : head_config.aux_layer_ids;
      if (head->aux_layer_ids_.size() != 3 ||
          std::any_of(head->aux_layer_ids_.begin(), head->aux_layer_ids_.end(),
                      [&](int id) { return id < 0 || id > layers; })) {
        return InvalidArgument(dir +
                               ": eagle_aux_hidden_state_layer_ids needs three layers in [0, " +
                               std::to_string(layers) + "]");
      }
    }

    // The embedding: the checkpoint's own when it has one, else the target's (EAGLE-3 drafts).
    const TensorView* embedding = nullptr;
    for (const char* name : {"model.embed_tokens.weight", "embed_tokens.weight"}) {
      if (embedding == nullptr) embedding = store->Find(name);
    }
    if (embedding != nullptr) {
      head->own_weights_ = store;
    } else if (eagle) {
      embedding = target.weights.Find(std::string(kTargetEmbedding));
      if (embedding == nullptr) {
        return NotFound(dir + ": the draft has no embed_tokens and the target has no " +
                        std::string(kTargetEmbedding));
      }
    } else {
      return NotFound(dir + ": model.embed_tokens.weight is missing");
    }
    if (embedding->shape.size() != 2 || embedding->shape[1] != hidden) {
      return InvalidArgument(dir + ": the embedding table is " + ShapeToString(embedding->shape) +
                             " but the head's hidden_size is " + std::to_string(hidden));
    }
    if (!IsFloat(embedding->dtype)) {
      return InvalidArgument(dir + ": the embedding table must be F32, F16 or BF16, not " +
                             std::string(DTypeName(embedding->dtype)));
    }
    head->embedding_ = *embedding;
    head->config_ = config;
    return head;
  }
};

Result<std::unique_ptr<RetrievalHead>> RetrievalHead::Load(const std::string& dir,
                                                           const Model& target,
                                                           const RetrievalHeadOptions& options) {
  return RetrievalHeadLoader::Load(dir, target, options);
}

}  // namespace specontext
