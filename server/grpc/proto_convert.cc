#include "server/grpc/proto_convert.h"

#include <boost/json.hpp>

#include <cmath>
#include <string_view>

#include "engine/chat_template/chat_template.h"

namespace specontext::server::grpc_api {

namespace {

// The OpenAI API's limits, so both front ends accept the same requests.
constexpr uint32_t kMaxTopLogprobs = 20;
constexpr int kMaxStopStrings = 4;

Status CheckRange(std::string_view name, double value, double lo, double hi) {
  if (std::isfinite(value) && value >= lo && value <= hi) return Status::Ok();
  return InvalidArgument("sampling." + std::string(name) + " must be in [" + std::to_string(lo) +
                         ", " + std::to_string(hi) + "], got " + std::to_string(value));
}

Result<std::vector<int32_t>> EncodeChat(const ServingModel& serving, const v1::ChatMessages& chat) {
  if (serving.chat_template() == nullptr) {
    return InvalidArgument("model '" + serving.name() + "' has no chat template");
  }
  if (chat.messages().empty()) return InvalidArgument("chat.messages is empty");
  chat_template::ChatTemplateInputs inputs;
  for (const v1::ChatMessage& message : chat.messages()) {
    if (message.role().empty()) return InvalidArgument("a chat message has no role");
    inputs.messages.push_back(
        boost::json::object{{"role", message.role()}, {"content", message.content()}});
  }
  inputs.add_generation_prompt = chat.add_generation_prompt();
  SPC_ASSIGN_OR_RETURN(
      std::string text,
      chat_template::ApplyChatTemplate(*serving.chat_template(), inputs, serving.special_tokens()));
  // The template writes any BOS itself.
  return serving.tokenizer()->Encode(text, /*add_special_tokens=*/false);
}

Status NeedTokenizer(const ServingModel& serving, std::string_view input) {
  if (serving.tokenizer() != nullptr) return Status::Ok();
  return InvalidArgument("model '" + serving.name() + "' has no tokenizer: " + std::string(input) +
                         " input needs one (send token_ids)");
}

}  // namespace

grpc::StatusCode GrpcCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return grpc::StatusCode::OK;
    case StatusCode::kInvalidArgument:
    case StatusCode::kTooLarge:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
    case StatusCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case StatusCode::kResourceExhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kCancelled:
      return grpc::StatusCode::CANCELLED;
    case StatusCode::kDeadlineExceeded:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case StatusCode::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case StatusCode::kOutOfRange:
      return grpc::StatusCode::OUT_OF_RANGE;
    case StatusCode::kUnimplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case StatusCode::kDataLoss:
      return grpc::StatusCode::DATA_LOSS;
    case StatusCode::kInternal:
      return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(GrpcCodeFor(status.code()), status.message());
}

Status CheckModelName(const ServingModel& serving, const std::string& requested) {
  if (requested.empty() || requested == serving.name()) return Status::Ok();
  return NotFound("model '" + requested + "' is not served here (serving '" + serving.name() +
                  "')");
}

Result<std::vector<int32_t>> PromptTokens(const ServingModel& serving,
                                          const v1::GenerateRequest& request) {
  switch (request.input_case()) {
    case v1::GenerateRequest::kText:
      SPC_RETURN_IF_ERROR(NeedTokenizer(serving, "text"));
      if (request.text().empty()) return InvalidArgument("text is empty");
      return serving.tokenizer()->Encode(request.text(), /*add_special_tokens=*/true);
    case v1::GenerateRequest::kTokenIds: {
      const auto& ids = request.token_ids().ids();
      if (ids.empty()) return InvalidArgument("token_ids is empty");
      const int vocab = serving.config().vocab_size;
      for (int i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= vocab) {
          return InvalidArgument("token_ids[" + std::to_string(i) +
                                 "] = " + std::to_string(ids[i]) +
                                 " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
        }
      }
      return std::vector<int32_t>(ids.begin(), ids.end());
    }
    case v1::GenerateRequest::kChat:
      SPC_RETURN_IF_ERROR(NeedTokenizer(serving, "chat"));
      return EncodeChat(serving, request.chat());
    case v1::GenerateRequest::INPUT_NOT_SET:
      break;
  }
  return InvalidArgument("the request has no input: set text, token_ids or chat");
}

Result<std::vector<int32_t>> TokenizeInput(const ServingModel& serving,
                                           const v1::TokenizeRequest& request) {
  switch (request.input_case()) {
    case v1::TokenizeRequest::kText:
      SPC_RETURN_IF_ERROR(NeedTokenizer(serving, "text"));
      return serving.tokenizer()->Encode(request.text(), request.add_special_tokens());
    case v1::TokenizeRequest::kChat:
      SPC_RETURN_IF_ERROR(NeedTokenizer(serving, "chat"));
      return EncodeChat(serving, request.chat());
    case v1::TokenizeRequest::INPUT_NOT_SET:
      break;
  }
  return InvalidArgument("the request has no input: set text or chat");
}

Result<SamplingParams> ToSamplingParams(const ServingModel& serving,
                                        const v1::SamplingParams& proto, size_t prompt_tokens) {
  const GenerationDefaults& defaults = serving.generation_defaults();
  SamplingParams params;
  // generation_config.json without do_sample means greedy decoding, as transformers does.
  params.temperature = proto.has_temperature()
                           ? proto.temperature()
                           : (defaults.do_sample ? static_cast<float>(defaults.temperature) : 0.0f);
  params.top_p = proto.has_top_p() ? proto.top_p() : static_cast<float>(defaults.top_p);
  params.top_k = proto.has_top_k() ? proto.top_k() : defaults.top_k;
  params.min_p = proto.min_p();
  params.presence_penalty = proto.presence_penalty();
  params.frequency_penalty = proto.frequency_penalty();
  params.repetition_penalty = proto.has_repetition_penalty()
                                  ? proto.repetition_penalty()
                                  : static_cast<float>(defaults.repetition_penalty);
  SPC_RETURN_IF_ERROR(CheckRange("temperature", params.temperature, 0.0, 2.0));
  SPC_RETURN_IF_ERROR(CheckRange("top_p", params.top_p, 1e-9, 1.0));
  // -1 is the vLLM spelling of "off".
  if (params.top_k < -1) return InvalidArgument("sampling.top_k must be >= -1");
  if (params.top_k < 0) params.top_k = 0;
  SPC_RETURN_IF_ERROR(CheckRange("min_p", params.min_p, 0.0, 1.0));
  SPC_RETURN_IF_ERROR(CheckRange("presence_penalty", params.presence_penalty, -2.0, 2.0));
  SPC_RETURN_IF_ERROR(CheckRange("frequency_penalty", params.frequency_penalty, -2.0, 2.0));
  SPC_RETURN_IF_ERROR(CheckRange("repetition_penalty", params.repetition_penalty, 1e-9, 10.0));
  if (proto.has_seed()) params.seed = proto.seed();

  const int64_t room =
      static_cast<int64_t>(serving.max_model_len()) - static_cast<int64_t>(prompt_tokens);
  if (room <= 0) {
    return InvalidArgument("the prompt has " + std::to_string(prompt_tokens) +
                           " tokens; the context holds " + std::to_string(serving.max_model_len()));
  }
  if (proto.max_tokens() > room) {
    return InvalidArgument("sampling.max_tokens " + std::to_string(proto.max_tokens()) +
                           " plus the prompt's " + std::to_string(prompt_tokens) +
                           " tokens exceed the context of " +
                           std::to_string(serving.max_model_len()));
  }
  params.max_tokens =
      proto.max_tokens() == 0 ? static_cast<int>(room) : static_cast<int>(proto.max_tokens());
  if (proto.min_tokens() > static_cast<uint32_t>(params.max_tokens)) {
    return InvalidArgument("sampling.min_tokens must not exceed max_tokens");
  }
  params.min_tokens = static_cast<int>(proto.min_tokens());
  if (proto.stop_size() > kMaxStopStrings) {
    return InvalidArgument("sampling.stop holds at most " + std::to_string(kMaxStopStrings) +
                           " strings");
  }
  for (const std::string& stop : proto.stop()) {
    if (stop.empty()) return InvalidArgument("sampling.stop has an empty string");
  }
  if (proto.stop_size() > 0) SPC_RETURN_IF_ERROR(NeedTokenizer(serving, "sampling.stop"));
  for (int32_t id : proto.stop_token_ids()) {
    if (id < 0 || id >= serving.config().vocab_size) {
      return InvalidArgument("sampling.stop_token_ids has " + std::to_string(id) +
                             ", outside the vocabulary");
    }
  }
  params.stop_token_ids.assign(proto.stop_token_ids().begin(), proto.stop_token_ids().end());
  params.ignore_eos = proto.ignore_eos();
  if (proto.top_logprobs() > kMaxTopLogprobs) {
    return InvalidArgument("sampling.top_logprobs must be at most " +
                           std::to_string(kMaxTopLogprobs));
  }
  params.logprobs = proto.logprobs() || proto.top_logprobs() > 0;
  params.top_logprobs = static_cast<int>(proto.top_logprobs());
  return params;
}

Status ToAttention(const v1::GenerateRequest& request, GenerationRequest* out) {
  const std::string& name = request.attention_mode();
  if (name.empty()) {
    out->attention = AttentionMode::kDefault;
  } else if (const std::optional<AttentionMode> named = AttentionModeNamed(name)) {
    out->attention = *named;
  } else {
    return InvalidArgument("attention_mode must be \"dense\" or \"specontext\", got \"" + name +
                           "\"");
  }
  const bool dense = out->attention == AttentionMode::kDense;
  if (request.sparse_budget() != 0 && dense) {
    return InvalidArgument("sparse_budget only applies to attention_mode \"specontext\"");
  }
  out->sparse_budget = request.sparse_budget();
  if (!request.has_sparse_redo_probability()) return Status::Ok();
  if (dense) {
    return InvalidArgument("sparse_redo_probability only applies to attention_mode \"specontext\"");
  }
  out->sparse_redo_probability = request.sparse_redo_probability();  // the engine checks its range
  return Status::Ok();
}

}  // namespace specontext::server::grpc_api
