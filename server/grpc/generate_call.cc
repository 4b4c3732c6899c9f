#include "server/grpc/generate_call.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>

#include "server/grpc/proto_convert.h"

namespace specontext::server::grpc_api {

namespace {

// How often a waiting call looks at its cancellation flag: the delay between a client going
// away and the engine learning of it.
constexpr std::chrono::milliseconds kPollInterval{20};
// Bounds the wait for the engine to acknowledge a cancellation (one engine step).
constexpr std::chrono::seconds kCancelAckTimeout{10};

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    default:
      return "abort";
  }
}

std::string NewRequestId() {
  static std::atomic<uint64_t> next{1};
  return "grpc-" + std::to_string(next.fetch_add(1));
}

}  // namespace

grpc::Status GenerateCall::Run(const v1::GenerateRequest& request) {
  if (Status st = Start(request); !st.ok()) return Fail(st);
  return Relay();
}

Status GenerateCall::Start(const v1::GenerateRequest& request) {
  SPC_RETURN_IF_ERROR(CheckModelName(serving_, request.model()));
  GenerationRequest engine_request;
  SPC_RETURN_IF_ERROR(ToAttention(request, &engine_request));
  SPC_ASSIGN_OR_RETURN(prompt_, PromptTokens(serving_, request));
  SPC_ASSIGN_OR_RETURN(SamplingParams sampling,
                       ToSamplingParams(serving_, request.sampling(), prompt_.size()));
  skip_special_tokens_ =
      !request.sampling().has_skip_special_tokens() || request.sampling().skip_special_tokens();
  with_logprobs_ = sampling.logprobs;
  if (serving_.tokenizer() != nullptr) {
    detokenizer_.emplace(*serving_.tokenizer(), skip_special_tokens_, prompt_);
  }
  stops_.emplace(
      std::vector<std::string>(request.sampling().stop().begin(), request.sampling().stop().end()));

  request_id_ = request.request_id().empty() ? NewRequestId() : request.request_id();
  engine_request.id = request_id_;
  engine_request.prompt_tokens = prompt_;
  engine_request.sampling = std::move(sampling);
  engine_request.priority = request.priority();
  SPC_ASSIGN_OR_RETURN(stream_, serving_.engine().Submit(std::move(engine_request)));
  return Status::Ok();
}

grpc::Status GenerateCall::Relay() {
  while (true) {
    if (context_.IsCancelled()) {
      CancelEngineRequest();
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call");
    }
    std::optional<TokenEvent> event = stream_->Next(kPollInterval);
    if (!event) continue;

    if (event->finish != FinishReason::kNone) engine_finished_ = true;

    v1::GenerateResponse response;
    v1::Chunk* chunk = response.mutable_chunk();
    Result<bool> more = AddTokens(*event, chunk);
    if (!more.ok()) {
      CancelEngineRequest();
      return Fail(more.status());
    }
    if (*more && event->finish != FinishReason::kNone && event->finish != FinishReason::kError) {
      // Whatever the detokenizer and the stop matcher still hold belongs to the last chunk.
      if (detokenizer_) {
        Result<std::string> rest = detokenizer_->Flush();
        if (!rest.ok()) return Fail(rest.status());
        AddText(*rest, chunk);
      }
      if (!stops_->stopped()) chunk->mutable_text()->append(stops_->Flush());
    }
    if ((chunk->token_ids_size() > 0 || !chunk->text().empty()) && !writer_.Write(response)) {
      CancelEngineRequest();
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
    if (stops_->stopped()) {
      CancelEngineRequest(FinishReason::kStop);
      Usage usage;
      usage.prompt_tokens = static_cast<int>(prompt_.size());
      usage.completion_tokens = completion_tokens_;
      return Complete("stop", usage);
    }
    if (event->finish == FinishReason::kError) return Fail(event->error);
    if (event->finish != FinishReason::kNone) {
      return Complete(FinishReasonName(event->finish), event->usage);
    }
  }
}

Result<bool> GenerateCall::AddTokens(const TokenEvent& event, v1::Chunk* chunk) {
  for (const SampledToken& token : event.tokens) {
    chunk->add_token_ids(token.token);
    completion_tokens_++;
    if (with_logprobs_) {
      v1::TokenLogprob* logprob = chunk->add_logprobs();
      logprob->set_token_id(token.token);
      logprob->set_logprob(token.logprob);
      SPC_ASSIGN_OR_RETURN(*logprob->mutable_token(), TokenText(token.token));
      v1::TokenLogprobAlternatives* alternatives = chunk->add_top_logprobs();
      for (const TokenLogprob& top : token.top) {
        v1::TokenLogprob* alternative = alternatives->add_alternatives();
        alternative->set_token_id(top.token);
        alternative->set_logprob(top.logprob);
        SPC_ASSIGN_OR_RETURN(*alternative->mutable_token(), TokenText(top.token));
      }
    }
    if (!detokenizer_) continue;
    SPC_ASSIGN_OR_RETURN(std::string piece, detokenizer_->Add(token.token));
    AddText(piece, chunk);
    if (stops_->stopped()) return false;
  }
  return true;
}

void GenerateCall::AddText(std::string_view piece, v1::Chunk* chunk) {
  if (piece.empty() || stops_->stopped()) return;
  chunk->mutable_text()->append(stops_->Feed(piece).text);
}

Result<std::string> GenerateCall::TokenText(int32_t id) const {
  if (serving_.tokenizer() == nullptr) return std::string();
  const int32_t ids[] = {id};
  return serving_.tokenizer()->Decode(ids, /*skip_special_tokens=*/false);
}

grpc::Status GenerateCall::Fail(const Status& status) {
  const grpc::Status grpc_status = ToGrpcStatus(status);
  v1::GenerateResponse response;
  response.mutable_error()->set_code(static_cast<int32_t>(grpc_status.error_code()));
  response.mutable_error()->set_message(status.message());
  writer_.Write(response);
  return grpc_status;
}

grpc::Status GenerateCall::Complete(std::string_view finish_reason, const Usage& usage) {
  v1::GenerateResponse response;
  v1::Complete* complete = response.mutable_complete();
  complete->set_finish_reason(std::string(finish_reason));
  complete->set_request_id(request_id_);
  complete->mutable_usage()->set_prompt_tokens(static_cast<uint32_t>(usage.prompt_tokens));
  complete->mutable_usage()->set_completion_tokens(static_cast<uint32_t>(usage.completion_tokens));
  complete->mutable_usage()->set_cached_tokens(static_cast<uint32_t>(usage.cached_tokens));
  if (!writer_.Write(response)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
  }
  return grpc::Status::OK;
}

void GenerateCall::CancelEngineRequest(FinishReason reason) {
  if (engine_finished_) return;
  stream_->Cancel(reason);
  const auto give_up = SteadyClock::now() + kCancelAckTimeout;
  while (SteadyClock::now() < give_up) {
    std::optional<TokenEvent> event = stream_->Next(kPollInterval);
    if (event && event->finish != FinishReason::kNone) return;
  }
  spdlog::warn("request {}: the engine did not acknowledge the cancellation within {} s",
               request_id_, kCancelAckTimeout.count());
}

}  // namespace specontext::server::grpc_api
