// The SpeContext options the one-shot commands (generate, eval) share: which attention runs,
// the retrieval head's checkpoint, the budget and the sinks, parsed into ServingModelOptions.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "common/status.h"
#include "server/serving_model.h"

namespace specontext::server {

// Adds --attention (into *attention), --draft-model, --sparse-budget and --sparse-sinks.
void AddAttentionOptions(CLI::App* cmd, std::string* attention, ServingModelOptions* model);

// Sets the planner's mode from `attention` ("dense" or "specontext"); specontext needs a draft.
Status ApplyAttentionOption(const std::string& attention, ServingModelOptions* model);

}  // namespace specontext::server
