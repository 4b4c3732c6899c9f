#include "loadtest/loadtest_command.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "engine/tokenizer/tokenizer.h"
#include "loadtest/load_runner.h"
#include "loadtest/metrics.h"
#include "loadtest/report.h"

namespace specontext::loadtest {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

Result<DatasetKind> ParseDataset(const std::string& name) {
  if (name == "random") return DatasetKind::kRandom;
  if (name == "shared-prefix") return DatasetKind::kSharedPrefix;
  if (name == "passkey") return DatasetKind::kPasskey;
  if (name == "document") return DatasetKind::kDocument;
  return InvalidArgument("unknown dataset '" + name +
                         "' (random, shared-prefix, passkey, document)");
}

Result<std::string> ReadDocument(const CommandOptions& options, DatasetKind dataset) {
  if (dataset != DatasetKind::kDocument) {
    if (!options.document.empty()) return InvalidArgument("--document needs --dataset document");
    return std::string();
  }
  if (options.document.empty()) return InvalidArgument("--dataset document needs --document FILE");
  std::ifstream in(options.document, std::ios::binary);
  if (!in) return NotFound("cannot read the document " + options.document);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Result<SloTargets> ParseGoodput(const std::vector<std::string>& items) {
  SloTargets slo;
  for (const std::string& item : items) {
    const size_t colon = item.find(':');
    const std::string number = colon == std::string::npos ? "" : item.substr(colon + 1);
    char* end = nullptr;
    const double value = std::strtod(number.c_str(), &end);
    if (number.empty() || *end != '\0' || !(value > 0)) {
      return InvalidArgument("goodput target '" + item + "' must be NAME:MILLISECONDS");
    }
    const std::string name = item.substr(0, colon);
    if (name == "ttft") {
      slo.ttft_ms = value;
    } else if (name == "tpot") {
      slo.tpot_ms = value;
    } else if (name == "e2el") {
      slo.e2el_ms = value;
    } else {
      return InvalidArgument("goodput target '" + name + "' is not one of ttft, tpot, e2el");
    }
  }
  return slo;
}

Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path) {
  if (path.empty()) return InvalidArgument("--tokenizer is required (a model directory)");
  std::filesystem::path file = path;
  if (std::filesystem::is_directory(file)) file /= "tokenizer.json";
  auto tokenizer = Tokenizer::FromFile(file);
  if (!tokenizer.ok()) return tokenizer.status().WithContext("loading " + file.string());
  return tokenizer;
}

Result<std::string> DiscoverModel(asio::io_context& io, const StreamClient& client) {
  std::optional<Result<std::string>> body;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { body.emplace(co_await client.Get("/v1/models")); },
      asio::detached);
  try {
    io.run();
  } catch (const std::exception& error) {
    return Internal(std::string("querying /v1/models: ") + error.what());
  }
  io.restart();
  if (!body) return Internal("querying /v1/models did not finish");
  SPC_ASSIGN_OR_RETURN(std::string text, std::move(*body));
  boost::system::error_code ec;
  const json::value models = json::parse(text, ec);
  const json::value* id = nullptr;
  if (!ec && models.is_object()) {
    if (const auto* data = models.get_object().if_contains("data");
        data && data->is_array() && !data->get_array().empty() &&
        data->get_array().front().is_object()) {
      id = data->get_array().front().get_object().if_contains("id");
    }
  }
  if (id == nullptr || !id->is_string()) {
    return InvalidArgument("/v1/models lists no model id; pass --model");
  }
  return std::string(id->get_string());
}

json::object ConfigToJson(const CommandOptions& options, const std::string& model) {
  json::array goodput(options.goodput.begin(), options.goodput.end());
  return {{"base_url", options.base_url},
          {"endpoint", options.endpoint},
          {"model", model},
          {"dataset", options.dataset},
          {"document", options.document},
          {"num_requests", options.num_requests},
          {"duration_s", options.duration_s},
          {"request_rate",
           options.request_rate > 0 ? json::value(options.request_rate) : json::value("inf")},
          {"burstiness", options.burstiness},
          {"max_concurrency", options.max_concurrency},
          {"input_len", options.input_len},
          {"output_len", options.output_len},
          {"range_ratio", options.range_ratio},
          {"prefix_len", options.prefix_len},
          {"prefix_groups", options.prefix_groups},
          {"seed", options.seed},
          {"temperature", options.temperature},
          {"ignore_eos", options.ignore_eos},
          {"warmup_requests", options.warmup_requests},
          {"goodput", std::move(goodput)}};
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.good()) return Unavailable("cannot write " + path);
  return Status::Ok();
}

Result<BenchmarkResult> Run(const CommandOptions& options, json::object& config) {
  SPC_ASSIGN_OR_RETURN(const DatasetKind dataset, ParseDataset(options.dataset));
  SPC_ASSIGN_OR_RETURN(std::string document, ReadDocument(options, dataset));
  SPC_ASSIGN_OR_RETURN(const SloTargets slo, ParseGoodput(options.goodput));
  if (options.endpoint != "completions" && options.endpoint != "chat") {
    return InvalidArgument("--endpoint must be completions or chat, got '" + options.endpoint +
                           "'");
  }
  SPC_ASSIGN_OR_RETURN(const ServerAddress address, ParseBaseUrl(options.base_url));
  SPC_ASSIGN_OR_RETURN(auto tokenizer, LoadTokenizer(options.tokenizer));
  SPC_ASSIGN_OR_RETURN(
      PromptSynthesizer prompts,
      PromptSynthesizer::Create(*tokenizer, {.kind = dataset,
                                             .input_len = options.input_len,
                                             .output_len = options.output_len,
                                             .range_ratio = options.range_ratio,
                                             .prefix_len = options.prefix_len,
                                             .prefix_groups = options.prefix_groups,
                                             .seed = options.seed,
                                             .document = std::move(document)}));
  const double rate =
      options.request_rate > 0 ? options.request_rate : std::numeric_limits<double>::infinity();
  SPC_ASSIGN_OR_RETURN(ArrivalProcess arrivals,
                       ArrivalProcess::Create(rate, options.burstiness, options.seed));

  asio::io_context io;
  boost::system::error_code ec;
  auto endpoints = asio::ip::tcp::resolver(io).resolve(address.host, address.port, ec);
  if (ec) return Unavailable("cannot resolve " + address.host + ": " + ec.message());
  const StreamClient client(
      endpoints, address, options.api_key,
      std::chrono::milliseconds(static_cast<int64_t>(options.request_timeout_s * 1000)));
  std::string model = options.model;
  if (model.empty()) {
    SPC_ASSIGN_OR_RETURN(model, DiscoverModel(io, client));
  }
  config = ConfigToJson(options, model);

  const bool chat = options.endpoint == "chat";
  LoadOptions load{.path = chat ? "/v1/chat/completions" : "/v1/completions",
                   .api = chat ? ApiKind::kChatCompletions : ApiKind::kCompletions,
                   .sampling = {.model = model,
                                .ignore_eos = options.ignore_eos,
                                .temperature = options.temperature},
                   .num_requests = options.num_requests,
                   .duration_s = options.duration_s,
                   .max_concurrency = options.max_concurrency,
                   .warmup_requests = options.warmup_requests};
  ProgressBar progress(options.num_requests, options.duration_s,
                       options.progress && ProgressBar::StderrIsTerminal());
  LoadRunner runner(client, prompts, std::move(arrivals), std::move(load), progress);
  SPC_ASSIGN_OR_RETURN(RunOutput output, runner.Run());
  const std::vector<RequestRecord> records(output.records.begin(), output.records.end());
  return ComputeResult(records, output.duration_s, slo);
}

}  // namespace

void AddOptions(CLI::App& app, CommandOptions& options) {
  app.add_option("--base-url", options.base_url, "Server URL")->capture_default_str();
  app.add_option("--endpoint", options.endpoint, "completions or chat")->capture_default_str();
  app.add_option("--model", options.model, "Model name (default: the first of /v1/models)");
  app.add_option("--tokenizer", options.tokenizer,
                 "Model directory (or tokenizer.json) used to size prompts in tokens")
      ->required();
  app.add_option("--api-key", options.api_key, "Bearer token")->envname("SPECONTEXT_API_KEY");
  app.add_option("--num-requests", options.num_requests, "Requests to send (0: use --duration)");
  app.add_option("--duration", options.duration_s, "Seconds to keep sending (0: use count)");
  app.add_option("--request-rate", options.request_rate,
                 "Mean arrivals per second (0: all at once, paced by --max-concurrency)");
  app.add_option("--burstiness", options.burstiness,
                 "Gamma shape of inter-arrival gaps: 1 is Poisson, <1 burstier, >1 steadier")
      ->capture_default_str();
  app.add_option("--max-concurrency", options.max_concurrency, "Requests in flight (0: no cap)");
  app.add_option("--dataset", options.dataset,
                 "random, shared-prefix, passkey (long context) or document (windows of "
                 "--document, continued)")
      ->capture_default_str();
  app.add_option("--document", options.document,
                 "Text file the document dataset cuts its prompts from");
  app.add_option("--input-len", options.input_len,
                 "Prompt tokens (the suffix after the prefix in shared-prefix mode)")
      ->capture_default_str();
  app.add_option("--output-len", options.output_len, "max_tokens")->capture_default_str();
  app.add_option("--range-ratio", options.range_ratio, "Lengths uniform in [len*(1-r), len*(1+r)]")
      ->capture_default_str();
  app.add_option("--prefix-len", options.prefix_len, "Shared prefix tokens");
  app.add_option("--prefix-groups", options.prefix_groups, "Distinct shared prefixes")
      ->capture_default_str();
  app.add_option("--seed", options.seed, "Seed of prompts and arrivals")->capture_default_str();
  app.add_option("--temperature", options.temperature)->capture_default_str();
  app.add_flag("--ignore-eos,!--no-ignore-eos", options.ignore_eos,
               "Generate exactly --output-len tokens (default on)");
  app.add_option("--warmup-requests", options.warmup_requests,
                 "Uncounted requests sent one by one first");
  app.add_option("--goodput", options.goodput, "SLOs in ms, e.g. ttft:500 tpot:50 e2el:2000");
  app.add_option("--request-timeout", options.request_timeout_s, "Seconds per request")
      ->capture_default_str();
  app.add_option("--output-json", options.output_json, "Write the JSON report to this file");
  app.add_flag("--json", options.json_stdout, "Print the JSON report instead of the table");
  app.add_flag("!--no-progress", options.progress, "No progress bar");
}

int RunLoadTest(const CommandOptions& options) {
  json::object config;
  auto result = Run(options, config);
  if (!result.ok()) {
    std::fprintf(stderr, "specontext-loadtest: %s\n", result.status().ToString().c_str());
    return 1;
  }
  const std::string report = json::serialize(ResultToJson(*result, std::move(config)));
  if (!options.output_json.empty()) {
    if (Status written = WriteFile(options.output_json, report + "\n"); !written.ok()) {
      std::fprintf(stderr, "specontext-loadtest: %s\n", written.ToString().c_str());
      return 1;
    }
  }
  const std::string text =
      options.json_stdout ? report + "\n" : FormatTable(*result, "Serving Benchmark Result");
  std::fputs(text.c_str(), stdout);
  return result->completed > 0 ? 0 : 1;
}

}  // namespace specontext::loadtest
