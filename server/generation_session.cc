#include "server/generation_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <span>
#include <string>

#include "server/api_error_response.h"
#include "server/openai/api_error.h"

namespace specontext::server {

namespace {

// Prompt ids the detokenizer needs to decode the first generated token as it follows the prompt
// (leading spaces); more would only cost copying.
constexpr size_t kDetokenizerContext = 8;

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

}  // namespace

GenerationSession::GenerationSession(SessionContext& context,
                                     std::shared_ptr<HttpExchange> exchange, SessionRequest request)
    : context_(context),
      exchange_(std::move(exchange)),
      request_(std::move(request)),
      sse_(exchange_) {
  context_.in_flight.fetch_add(1);
}

GenerationSession::~GenerationSession() { context_.in_flight.fetch_sub(1); }

Status GenerationSession::Start(SessionContext& context, std::shared_ptr<HttpExchange> exchange,
                                SessionRequest request) {
  auto session = std::make_shared<GenerationSession>(context, exchange, std::move(request));
  SPC_RETURN_IF_ERROR(session->Submit());
  session->StartPumps();
  exchange->OnDisconnect([weak = std::weak_ptr<GenerationSession>(session)] {
    if (auto self = weak.lock()) self->OnDisconnect();
  });
  return Status::Ok();
}

Status GenerationSession::Submit() {
  const openai::GenerationOptions& options = request_.options;
  const Tokenizer* tokenizer = context_.model->tokenizer();
  for (size_t p = 0; p < request_.prompts.size(); ++p) {
    const std::vector<int32_t>& prompt = request_.prompts[p];
    for (int i = 0; i < options.n; ++i) {
      GenerationRequest generation;
      const size_t index = choices_.size();
      generation.id = request_.header.id + "-" + std::to_string(index);
      generation.prompt_tokens = prompt;
      generation.sampling = options.sampling;
      generation.attention = options.attention;
      generation.sparse_budget = options.sparse_budget;
      generation.sparse_redo_probability = options.sparse_redo_probability;
      if (options.sampling.seed.has_value()) {
        generation.sampling.seed = *options.sampling.seed + static_cast<uint64_t>(i);
      }
      Result<std::shared_ptr<RequestStream>> stream =
          context_.model->engine().Submit(std::move(generation));
      if (!stream.ok()) {
        for (Choice& submitted : choices_) submitted.stream->Cancel();
        return stream.status();
      }
      Choice& choice = choices_.emplace_back();
      choice.prompt = p;
      choice.stream = std::move(stream).value();
      if (tokenizer != nullptr) {
        const size_t context = std::min(prompt.size(), kDetokenizerContext);
        choice.detokenizer = std::make_unique<IncrementalDetokenizer>(
            *tokenizer, options.skip_special_tokens,
            std::span<const int32_t>(prompt).last(context));
      }
      choice.output = std::make_unique<openai::ChoiceStream>(
          request_.header,
          openai::ChoiceStreamOptions{.endpoint = request_.endpoint,
                                      .index = static_cast<int>(index),
                                      .stop = options.stop,
                                      .logprobs = options.sampling.logprobs,
                                      .streaming = options.stream,
                                      .usage = options.include_usage ? openai::ChunkUsage::kNull
                                                                     : openai::ChunkUsage::kOmit});
    }
  }
  remaining_ = choices_.size();
  return Status::Ok();
}

void GenerationSession::StartPumps() {
  // Held so that no event is handled before every choice knows its pump.
  std::lock_guard<std::mutex> lock(mutex_);
  if (request_.options.stream) sse_.Start();
  for (size_t index = 0; index < choices_.size(); ++index) {
    choices_[index].pump = StreamPump::Start(
        context_.executor, choices_[index].stream, exchange_,
        [self = shared_from_this(), index](TokenEvent& event) { self->OnEvent(index, event); });
  }
}

void GenerationSession::OnEvent(size_t index, TokenEvent& event) {
  std::lock_guard<std::mutex> lock(mutex_);
  Choice& choice = choices_[index];
  if (answered_ || choice.done) return;
  if (!event.tokens.empty()) {
    const SteadyClock::time_point now = SteadyClock::now();
    if (choice.completion_tokens > 0) {
      context_.metrics->ObserveInterTokenLatency(
          std::chrono::duration<double>(now - choice.last_tokens).count());
    }
    choice.last_tokens = now;
  }
  if (!AddTokens(choice, event) || event.finish == FinishReason::kNone) return;
  choice.cached_tokens = event.usage.cached_tokens;
  if (event.finish == FinishReason::kError) {
    Fail(event.error);
    return;
  }
  if (choice.detokenizer != nullptr) {
    Result<std::string> rest = choice.detokenizer->Flush();
    if (!rest.ok()) {
      Fail(rest.status());
      return;
    }
    Send(choice.output->Append(*rest));
  }
  Send(choice.output->Finish(FinishReasonName(event.finish)));
  EndChoice(choice);
}

bool GenerationSession::AddTokens(Choice& choice, const TokenEvent& event) {
  for (const SampledToken& token : event.tokens) {
    choice.completion_tokens++;
    std::string piece;
    if (choice.detokenizer != nullptr) {
      Result<std::string> decoded = choice.detokenizer->Add(token.token);
      if (!decoded.ok()) {
        Fail(decoded.status());
        return false;
      }
      piece = std::move(decoded).value();
    }
    std::vector<openai::TokenLogprobs> logprobs;
    if (request_.options.sampling.logprobs) logprobs.push_back(Logprobs(token));
    Send(choice.output->Append(piece, std::move(logprobs)));
    if (choice.output->finished()) {
      // A stop string matched: the engine need not generate what nobody will read.
      if (auto pump = choice.pump.lock()) pump->Stop(FinishReason::kStop);
      EndChoice(choice);
      return false;
    }
  }
  return true;
}

openai::TokenLogprobs GenerationSession::Logprobs(const SampledToken& token) const {
  const Tokenizer* tokenizer = context_.model->tokenizer();
  const auto text = [tokenizer](int32_t id) -> std::string {
    if (tokenizer == nullptr) return "";
    Result<std::string> decoded = tokenizer->Decode(std::span<const int32_t>(&id, 1), false);
    return decoded.ok() ? std::move(decoded).value() : std::string();
  };
  openai::TokenLogprobs out{.text = text(token.token), .logprob = token.logprob};
  out.top.reserve(token.top.size());
  for (const TokenLogprob& alternative : token.top) {
    out.top.push_back({.text = text(alternative.token), .logprob = alternative.logprob});
  }
  return out;
}

void GenerationSession::EndChoice(Choice& choice) {
  choice.done = true;
  if (--remaining_ == 0) Complete();
}

void GenerationSession::Send(const std::vector<std::string>& chunks) {
  for (const std::string& chunk : chunks) sse_.Send(chunk);
}

void GenerationSession::Complete() {
  answered_ = true;
  const Usage usage = TotalUsage();
  const bool chat = request_.endpoint == openai::Endpoint::kChat;
  if (request_.options.stream) {
    if (request_.options.include_usage) {
      sse_.Send(openai::UsageChunkJson(request_.header,
                                       chat ? "chat.completion.chunk" : "text_completion", usage));
    }
    sse_.Done();
    return;
  }
  std::vector<openai::ChoiceOutput> outputs;
  outputs.reserve(choices_.size());
  for (const Choice& choice : choices_) outputs.push_back(choice.output->output());
  std::string body = chat ? openai::ChatCompletionJson(request_.header, outputs, usage)
                          : openai::CompletionJson(request_.header, outputs, usage);
  exchange_->Respond(
      HttpServer::JsonResponse(exchange_->request(), http::status::ok, std::move(body)));
}

void GenerationSession::Fail(const Status& status) {
  answered_ = true;
  StopAll();
  spdlog::warn("request {} failed: {}", request_.header.id, status.ToString());
  if (request_.options.stream) {
    // The status line is already sent: the error travels as an event, as OpenAI's API does.
    sse_.Send(openai::ErrorJson(status));
    sse_.Done();
    return;
  }
  exchange_->Respond(ApiErrorResponse(exchange_->request(), status));
}

void GenerationSession::OnDisconnect() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (answered_) return;
  answered_ = true;
  StopAll();
  context_.metrics->Cancelled();
  spdlog::info("request {}: client disconnected, cancelled", request_.header.id);
}

void GenerationSession::StopAll() {
  for (Choice& choice : choices_) {
    if (choice.done) continue;
    choice.done = true;
    if (auto pump = choice.pump.lock()) {
      pump->Stop();
    } else {
      choice.stream->Cancel();
    }
  }
}

Usage GenerationSession::TotalUsage() const {
  Usage usage;
  const size_t n = static_cast<size_t>(request_.options.n);
  for (size_t index = 0; index < choices_.size(); ++index) {
    const Choice& choice = choices_[index];
    usage.completion_tokens += choice.completion_tokens;
    // A prompt counts once however many choices it has.
    if (index % n != 0) continue;
    usage.prompt_tokens += static_cast<int>(request_.prompts[choice.prompt].size());
    usage.cached_tokens += choice.cached_tokens;
  }
  return usage;
}

}  // namespace specontext::server
