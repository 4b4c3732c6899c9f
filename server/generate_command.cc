#include "server/generate_command.h"

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "engine/tokenizer/incremental_detokenizer.h"
#include "server/attention_cli.h"
#include "server/serving_model.h"

namespace specontext::server {

namespace {

struct GenerateOptions {
  ServingModelOptions model;
  std::string prompt;
  std::string prompt_file;  // read into `prompt` when given
  std::string system;
  bool raw = false;  // skip the chat template
  int max_tokens = 128;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;
  int64_t seed = -1;
  std::string backend = "auto";
  std::string attention = "dense";
};

Result<std::vector<int32_t>> BuildPrompt(const ServingModel& serving,
                                         const GenerateOptions& options) {
  const Tokenizer* tokenizer = serving.tokenizer();
  if (tokenizer == nullptr) {
    return InvalidArgument("model '" + serving.name() +
                           "' has no tokenizer (a random-weight preset): generate needs text");
  }
  if (options.raw || serving.chat_template() == nullptr) {
    return tokenizer->Encode(options.prompt, /*add_special_tokens=*/true);
  }
  chat_template::ChatTemplateInputs inputs;
  if (!options.system.empty()) {
    inputs.messages.push_back(boost::json::object{{"role", "system"}, {"content", options.system}});
  }
  inputs.messages.push_back(boost::json::object{{"role", "user"}, {"content", options.prompt}});
  inputs.add_generation_prompt = true;
  SPC_ASSIGN_OR_RETURN(
      std::string text,
      chat_template::ApplyChatTemplate(*serving.chat_template(), inputs, serving.special_tokens()));
  // The template already wrote any BOS, as transformers' apply_chat_template(tokenize=True).
  return tokenizer->Encode(text, /*add_special_tokens=*/false);
}

Result<std::string> ReadPromptFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("--prompt-file: cannot open '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return DataLoss("--prompt-file: cannot read '" + path + "'");
  return text.str();
}

Status RunGenerate(GenerateOptions options) {
  if (!options.prompt_file.empty()) {
    SPC_ASSIGN_OR_RETURN(options.prompt, ReadPromptFile(options.prompt_file));
  }
  if (options.model.model.empty()) options.model.model = DefaultModelPath();
  ApplyBackendOption(options.backend, &options.model);
  SPC_RETURN_IF_ERROR(ApplyAttentionOption(options.attention, &options.model));
  SPC_ASSIGN_OR_RETURN(auto serving, ServingModel::Create(options.model));
  SPC_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, BuildPrompt(*serving, options));

  GenerationRequest request;
  request.id = "generate";
  request.prompt_tokens = prompt;
  request.sampling.max_tokens = options.max_tokens;
  request.sampling.temperature = options.temperature;
  request.sampling.top_p = options.top_p;
  request.sampling.top_k = options.top_k;
  if (options.seed >= 0) request.sampling.seed = static_cast<uint64_t>(options.seed);
  SPC_ASSIGN_OR_RETURN(auto stream, serving->engine().Submit(std::move(request)));

  IncrementalDetokenizer detokenizer(*serving->tokenizer(), /*skip_special_tokens=*/true, prompt);
  const auto start = SteadyClock::now();
  int generated = 0;
  while (true) {
    std::optional<TokenEvent> event = stream->Next(std::chrono::seconds(1));
    if (!event) continue;
    for (const SampledToken& token : event->tokens) {
      SPC_ASSIGN_OR_RETURN(std::string piece, detokenizer.Add(token.token));
      fmt::print("{}", piece);
      std::fflush(stdout);
      generated++;
    }
    if (event->finish == FinishReason::kNone) continue;
    SPC_ASSIGN_OR_RETURN(std::string rest, detokenizer.Flush());
    fmt::print("{}\n", rest);
    if (event->finish == FinishReason::kError) return event->error;
    const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    spdlog::info("{} prompt tokens, {} generated in {:.2f} s ({:.1f} tokens/s), finish: {}",
                 prompt.size(), generated, seconds, generated / std::max(seconds, 1e-9),
                 event->finish == FinishReason::kStop ? "stop" : "length");
    return Status::Ok();
  }
}

}  // namespace

void AddGenerateCommand(CLI::App& app) {
  auto options = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "Generate a completion for one prompt, streamed");
  cmd->add_option("--model", options->model.model,
                  "Hugging Face model directory or preset:NAME (default: the prepared "
                  "SmolLM2-135M-Instruct)");
  auto* source = cmd->add_option_group("prompt source", "Exactly one of:");
  source->add_option("--prompt", options->prompt, "The prompt (a user message for chat models)");
  source->add_option("--prompt-file", options->prompt_file,
                     "Read the prompt from this file (e.g. a long document and a question)");
  source->require_option(1);
  cmd->add_option("--system", options->system, "A system message (chat models)");
  cmd->add_flag("--raw", options->raw, "Use the prompt as is, without the chat template");
  cmd->add_option("--max-tokens", options->max_tokens, "Tokens to generate at most")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--temperature", options->temperature, "0 is greedy")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  cmd->add_option("--top-p", options->top_p)->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--top-k", options->top_k)->check(CLI::Range(0, 1 << 30))->capture_default_str();
  cmd->add_option("--seed", options->seed, "Sampling seed (-1: random)");
  AddEngineOptions(cmd, &options->backend, &options->model);
  AddAttentionOptions(cmd, &options->attention, &options->model);
  cmd->callback([options] {
    spdlog::set_level(spdlog::level::warn);
    if (Status st = RunGenerate(*options); !st.ok()) {
      fmt::print(stderr, "error: {}\n", st.ToString());
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace specontext::server
