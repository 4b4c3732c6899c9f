#include "engine/model/model_config.h"

#include <cmath>
#include <limits>

#include "common/json_fields.h"

namespace specontext {
namespace {

constexpr std::string_view kConfigJson = "config.json";

struct ArchitectureName {
  std::string_view name;
  std::string_view model_type;
  Architecture architecture;
};

constexpr ArchitectureName kArchitectures[] = {
    {"LlamaForCausalLM", "llama", Architecture::kLlama},
    {"Qwen2ForCausalLM", "qwen2", Architecture::kQwen2},
    {"Qwen3ForCausalLM", "qwen3", Architecture::kQwen3},
    {"MistralForCausalLM", "mistral", Architecture::kMistral},
};

Result<Architecture> ParseArchitecture(const JsonFields& fields, std::string& name) {
  const boost::json::value* list = fields.Find("architectures");
  if (list != nullptr) {
    if (!list->is_array() || list->get_array().empty() || !list->get_array()[0].is_string()) {
      return fields.Error("architectures", "must be a non-empty list of strings");
    }
    name = std::string(list->get_array()[0].get_string());
    for (const ArchitectureName& known : kArchitectures) {
      if (known.name == name) return known.architecture;
    }
  } else {
    SPC_ASSIGN_OR_RETURN(name, fields.String("model_type", "(none)"));
    for (const ArchitectureName& known : kArchitectures) {
      if (known.model_type == name) {
        name = std::string(known.name);
        return known.architecture;
      }
    }
  }
  return InvalidArgument(std::string(kConfigJson) + ": unsupported architecture \"" + name +
                         "\"; supported: " + std::string(SupportedArchitecturesList()));
}

Result<DType> ParseTorchDType(const JsonFields& fields) {
  // transformers 5 writes "dtype"; older versions write "torch_dtype".
  SPC_ASSIGN_OR_RETURN(std::string torch_dtype, fields.String("torch_dtype", "bfloat16"));
  SPC_ASSIGN_OR_RETURN(const std::string name, fields.String("dtype", torch_dtype));
  if (name == "bfloat16") return DType::kBF16;
  if (name == "float16") return DType::kF16;
  if (name == "float32") return DType::kF32;
  return fields.Error("torch_dtype", "must be bfloat16, float16 or float32, not \"" + name + "\"");
}

Result<RopeScaling> ParseRopeScaling(const JsonFields& rope, int max_position_embeddings) {
  RopeScaling scaling;
  SPC_ASSIGN_OR_RETURN(const std::string legacy_type, rope.String("type", "default"));
  SPC_ASSIGN_OR_RETURN(const std::string type, rope.String("rope_type", legacy_type));
  if (type == "default") return scaling;
  if (type == "linear") {
    scaling.type = RopeScaling::Type::kLinear;
  } else if (type == "dynamic") {
    scaling.type = RopeScaling::Type::kDynamic;
  } else if (type == "llama3") {
    scaling.type = RopeScaling::Type::kLlama3;
  } else if (type == "yarn") {
    scaling.type = RopeScaling::Type::kYarn;
  } else {
    return rope.Error("rope_type", "\"" + type +
                                       "\" is not supported; supported: default, linear, "
                                       "dynamic, llama3, yarn");
  }
  SPC_ASSIGN_OR_RETURN(std::optional<double> factor, rope.OptionalDouble("factor"));
  if (!factor) return rope.Error("factor", "is missing");
  if (!(*factor >= 1.0) || !std::isfinite(*factor)) return rope.Error("factor", "must be >= 1");
  scaling.factor = *factor;
  SPC_ASSIGN_OR_RETURN(int64_t original,
                       rope.Int("original_max_position_embeddings", max_position_embeddings));
  if (original <= 0 || original > std::numeric_limits<int>::max()) {
    return rope.Error("original_max_position_embeddings", "must be positive");
  }
  scaling.original_max_position_embeddings = static_cast<int>(original);
  if (scaling.type == RopeScaling::Type::kLlama3) {
    if (rope.Find("original_max_position_embeddings") == nullptr) {
      return rope.Error("original_max_position_embeddings", "is required by llama3 scaling");
    }
    SPC_ASSIGN_OR_RETURN(scaling.low_freq_factor, rope.Double("low_freq_factor", 1.0));
    SPC_ASSIGN_OR_RETURN(scaling.high_freq_factor, rope.Double("high_freq_factor", 4.0));
    if (!(scaling.low_freq_factor > 0) || !(scaling.high_freq_factor > scaling.low_freq_factor)) {
      return rope.Error("high_freq_factor", "must exceed low_freq_factor > 0");
    }
  }
  if (scaling.type == RopeScaling::Type::kYarn) {
    SPC_ASSIGN_OR_RETURN(scaling.beta_fast, rope.Double("beta_fast", 32.0));
    SPC_ASSIGN_OR_RETURN(scaling.beta_slow, rope.Double("beta_slow", 1.0));
    SPC_ASSIGN_OR_RETURN(scaling.attention_factor, rope.Double("attention_factor", 0.0));
    if (!(scaling.attention_factor >= 0)) return rope.Error("attention_factor", "must be >= 0");
  }
  return scaling;
}

int ToInt(int64_t value) {
  if (value < 0 || value > std::numeric_limits<int>::max()) return -1;
  return static_cast<int>(value);
}

Status RefuseIfTrue(const JsonFields& fields, std::string_view key, std::string_view why) {
  SPC_ASSIGN_OR_RETURN(bool value, fields.Bool(key, false));
  if (value) return fields.Error(key, why);
  return Status::Ok();
}

}  // namespace

std::string_view SupportedArchitecturesList() {
  return "LlamaForCausalLM (Llama 2, 3, 3.1, 3.2), Qwen2ForCausalLM (Qwen2, Qwen2.5), "
         "Qwen3ForCausalLM, MistralForCausalLM";
}

Result<ModelConfig> ParseModelConfig(std::string_view json_text) {
  SPC_ASSIGN_OR_RETURN(boost::json::object object, ParseJsonObject(json_text, kConfigJson));
  const JsonFields fields(object, std::string(kConfigJson));
  ModelConfig config;
  SPC_ASSIGN_OR_RETURN(config.architecture, ParseArchitecture(fields, config.architecture_name));

  auto read_int = [&](std::string_view key, int& out) -> Status {
    SPC_ASSIGN_OR_RETURN(int64_t value, fields.RequiredInt(key));
    out = ToInt(value);
    if (out <= 0) return fields.Error(key, "must be a positive integer");
    return Status::Ok();
  };
  SPC_RETURN_IF_ERROR(read_int("vocab_size", config.vocab_size));
  SPC_RETURN_IF_ERROR(read_int("hidden_size", config.hidden_size));
  SPC_RETURN_IF_ERROR(read_int("intermediate_size", config.intermediate_size));
  SPC_RETURN_IF_ERROR(read_int("num_hidden_layers", config.num_layers));
  SPC_RETURN_IF_ERROR(read_int("num_attention_heads", config.num_heads));
  SPC_RETURN_IF_ERROR(read_int("max_position_embeddings", config.max_position_embeddings));
  config.num_kv_heads = config.num_heads;
  if (fields.Find("num_key_value_heads") != nullptr) {
    SPC_RETURN_IF_ERROR(read_int("num_key_value_heads", config.num_kv_heads));
  }
  config.head_dim = config.hidden_size / config.num_heads;
  if (fields.Find("head_dim") != nullptr)
    SPC_RETURN_IF_ERROR(read_int("head_dim", config.head_dim));

  SPC_ASSIGN_OR_RETURN(const std::string act, fields.String("hidden_act", "silu"));
  if (act != "silu") return fields.Error("hidden_act", "must be \"silu\", not \"" + act + "\"");
  SPC_RETURN_IF_ERROR(RefuseIfTrue(fields, "mlp_bias", "is not supported (no MLP biases)"));
  if (config.architecture != Architecture::kQwen2) {
    SPC_RETURN_IF_ERROR(RefuseIfTrue(fields, "attention_bias", "is not supported"));
  }
  config.qkv_bias = config.architecture == Architecture::kQwen2;
  config.qk_norm = config.architecture == Architecture::kQwen3;

  SPC_ASSIGN_OR_RETURN(config.rms_norm_eps, fields.Double("rms_norm_eps", 1e-6));
  SPC_ASSIGN_OR_RETURN(config.tie_word_embeddings, fields.Bool("tie_word_embeddings", false));
  SPC_ASSIGN_OR_RETURN(config.dtype, ParseTorchDType(fields));

  // transformers 5 moved rope_theta into "rope_parameters"; older files keep it top level.
  const boost::json::value* rope = fields.Find("rope_parameters");
  if (rope == nullptr) rope = fields.Find("rope_scaling");
  SPC_ASSIGN_OR_RETURN(config.rope_theta, fields.Double("rope_theta", 10000.0));
  if (rope != nullptr) {
    if (!rope->is_object()) return fields.Error("rope_scaling", "must be an object or null");
    const JsonFields rope_fields(rope->get_object(), std::string(kConfigJson) + " rope_scaling");
    SPC_ASSIGN_OR_RETURN(config.rope_theta, rope_fields.Double("rope_theta", config.rope_theta));
    SPC_ASSIGN_OR_RETURN(config.rope_scaling,
                         ParseRopeScaling(rope_fields, config.max_position_embeddings));
  }

  // Qwen2 configs carry a window that applies only when use_sliding_window is true.
  SPC_ASSIGN_OR_RETURN(bool use_window, fields.Bool("use_sliding_window",
                                                    config.architecture == Architecture::kMistral));
  SPC_ASSIGN_OR_RETURN(int64_t window, fields.Int("sliding_window", 0));
  if (use_window && window > 0 && window < config.max_position_embeddings) {
    if (config.architecture != Architecture::kMistral) {
      return fields.Error("use_sliding_window", "is supported for Mistral only");
    }
    config.sliding_window = static_cast<int>(window);
  }

  SPC_ASSIGN_OR_RETURN(int64_t bos, fields.Int("bos_token_id", -1));
  config.bos_token_id = ToInt(bos);
  SPC_ASSIGN_OR_RETURN(config.eos_token_ids, fields.IntOrIntList("eos_token_id"));
  SPC_RETURN_IF_ERROR(config.Validate());
  return config;
}

Status ModelConfig::Validate() const {
  auto fail = [](std::string message) { return InvalidArgument("model config: " + message); };
  if (vocab_size <= 0 || hidden_size <= 0 || intermediate_size <= 0 || num_layers <= 0 ||
      num_heads <= 0 || num_kv_heads <= 0 || head_dim <= 0 || max_position_embeddings <= 0) {
    return fail("every size must be positive");
  }
  if (num_heads % num_kv_heads != 0) {
    return fail("num_attention_heads (" + std::to_string(num_heads) +
                ") must be a multiple of num_key_value_heads (" + std::to_string(num_kv_heads) +
                ")");
  }
  if (head_dim % 2 != 0) return fail("head_dim must be even for rotary embeddings");
  if (!(rope_theta > 0) || !std::isfinite(rope_theta)) return fail("rope_theta must be positive");
  if (!(rms_norm_eps > 0) || !(rms_norm_eps < 1)) return fail("rms_norm_eps must be in (0, 1)");
  if (bos_token_id >= vocab_size) return fail("bos_token_id is outside the vocabulary");
  for (int id : eos_token_ids) {
    if (id >= vocab_size)
      return fail("eos_token_id " + std::to_string(id) + " is outside the vocabulary");
  }
  return Status::Ok();
}

int64_t ModelConfig::ParameterCount() const {
  const int64_t hidden = hidden_size;
  const int64_t embed = int64_t{vocab_size} * hidden;
  int64_t layer = hidden * q_size() + 2 * hidden * kv_size() + int64_t{q_size()} * hidden +
                  3 * hidden * intermediate_size + 2 * hidden;
  if (qkv_bias) layer += q_size() + 2 * kv_size();
  if (qk_norm) layer += 2 * head_dim;
  return embed * (tie_word_embeddings ? 1 : 2) + layer * num_layers + hidden;
}

Result<GenerationDefaults> ParseGenerationConfig(std::string_view json_text) {
  constexpr std::string_view kWhat = "generation_config.json";
  SPC_ASSIGN_OR_RETURN(boost::json::object object, ParseJsonObject(json_text, kWhat));
  const JsonFields fields(object, std::string(kWhat));
  GenerationDefaults defaults;
  SPC_ASSIGN_OR_RETURN(defaults.temperature, fields.Double("temperature", 1.0));
  SPC_ASSIGN_OR_RETURN(defaults.top_p, fields.Double("top_p", 1.0));
  SPC_ASSIGN_OR_RETURN(int64_t top_k, fields.Int("top_k", 0));
  SPC_ASSIGN_OR_RETURN(defaults.repetition_penalty, fields.Double("repetition_penalty", 1.0));
  SPC_ASSIGN_OR_RETURN(defaults.do_sample, fields.Bool("do_sample", false));
  SPC_ASSIGN_OR_RETURN(defaults.eos_token_ids, fields.IntOrIntList("eos_token_id"));
  if (!(defaults.temperature >= 0)) return fields.Error("temperature", "must be >= 0");
  if (!(defaults.top_p > 0 && defaults.top_p <= 1))
    return fields.Error("top_p", "must be in (0, 1]");
  if (top_k < 0 || top_k > std::numeric_limits<int>::max())
    return fields.Error("top_k", "must be >= 0");
  if (!(defaults.repetition_penalty > 0)) return fields.Error("repetition_penalty", "must be > 0");
  defaults.top_k = static_cast<int>(top_k);
  return defaults;
}

}  // namespace specontext
