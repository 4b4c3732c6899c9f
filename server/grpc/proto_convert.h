// Translation between the gRPC API (specontext.v1) and the engine's native types: prompts,
// sampling parameters and error codes. Pure functions; no sockets, no engine calls.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/sampler/sampling_params.h"
#include "server/serving_model.h"
#include "specontext/v1/specontext.pb.h"

namespace specontext::server::grpc_api {

grpc::StatusCode GrpcCodeFor(StatusCode code);
grpc::Status ToGrpcStatus(const Status& status);

// Fails with kNotFound when the request names a model other than the served one.
Status CheckModelName(const ServingModel& serving, const std::string& requested);

// The prompt's token ids: raw text (with the tokenizer's special tokens), pre-tokenized ids
// (checked against the vocabulary) or chat messages rendered by the model's template.
Result<std::vector<int32_t>> PromptTokens(const ServingModel& serving,
                                          const v1::GenerateRequest& request);

// Token ids for Tokenize: text or chat messages.
Result<std::vector<int32_t>> TokenizeInput(const ServingModel& serving,
                                           const v1::TokenizeRequest& request);

// Validated engine parameters. Unset fields take the model's generation_config defaults;
// max_tokens 0 means whatever the context leaves after the prompt.
Result<SamplingParams> ToSamplingParams(const ServingModel& serving,
                                        const v1::SamplingParams& proto, size_t prompt_tokens);

// The request's attention mode, SpeContext budget and re-run threshold, as the HTTP API's
// "attention", "sparse_budget" and "sparse_redo_probability": mode "dense", "specontext" or
// empty (the server's); budget and threshold only with a mode that can be sparse. Whether the
// server can serve "specontext", and the threshold's range, are the engine's checks.
Status ToAttention(const v1::GenerateRequest& request, GenerationRequest* out);

}  // namespace specontext::server::grpc_api
