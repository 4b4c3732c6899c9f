// The options the one-shot commands (generate, eval, throughput) share, parsed into
// ServingModelOptions: the backend and KV tiers, and for SpeContext which attention runs, the
// retrieval head's checkpoint, the budget and the sinks.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "common/status.h"
#include "server/serving_model.h"

namespace specontext::server {

// Adds --backend (into *backend), --max-model-len, --kv-gpu-gib, --kv-gpu-fraction and
// --kv-host-gib.
void AddEngineOptions(CLI::App* cmd, std::string* backend, ServingModelOptions* model);

// Sets the model's backend from `backend` ("auto", "cpu" or "cuda").
void ApplyBackendOption(const std::string& backend, ServingModelOptions* model);

// Adds --attention (into *attention), --draft-model, --sparse-budget and --sparse-sinks.
void AddAttentionOptions(CLI::App* cmd, std::string* attention, ServingModelOptions* model);

// Sets the planner's mode from `attention` ("dense" or "specontext"); specontext needs a draft.
Status ApplyAttentionOption(const std::string& attention, ServingModelOptions* model);

}  // namespace specontext::server
