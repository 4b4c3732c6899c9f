// SpeContext's request extension fields ("attention", "sparse_budget") and serve options
// (--attention, --sparse-budget, --draft-model, --sparse-sinks, --sparse-window,
// --dense-fallback-mass): accepted values reach the request or config, bad ones name the field.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "server/openai/api_error.h"
#include "server/openai/completion_request.h"
#include "server/serve_config.h"

namespace specontext::server {
namespace {

TEST(AttentionFieldsTest, RequestFieldsReachTheOptions) {
  auto absent = openai::ParseCompletionRequest(R"({"prompt": "x"})");
  ASSERT_TRUE(absent.ok()) << absent.status().ToString();
  EXPECT_EQ(absent->options.attention, AttentionMode::kDefault);
  EXPECT_EQ(absent->options.sparse_budget, 0);

  auto sparse = openai::ParseCompletionRequest(
      R"({"prompt": "x", "attention": "specontext", "sparse_budget": 1024})");
  ASSERT_TRUE(sparse.ok()) << sparse.status().ToString();
  EXPECT_EQ(sparse->options.attention, AttentionMode::kSpecontext);
  EXPECT_EQ(sparse->options.sparse_budget, 1024);

  auto dense = openai::ParseCompletionRequest(R"({"prompt": "x", "attention": "dense"})");
  ASSERT_TRUE(dense.ok());
  EXPECT_EQ(dense->options.attention, AttentionMode::kDense);
}

TEST(AttentionFieldsTest, BadRequestFieldsAreInvalidAndNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"prompt": "x", "attention": "sparse"})", "attention"},
      {R"({"prompt": "x", "attention": 3})", "attention"},
      {R"({"prompt": "x", "sparse_budget": 0})", "sparse_budget"},
      {R"({"prompt": "x", "sparse_budget": -5})", "sparse_budget"},
      {R"({"prompt": "x", "sparse_budget": "big"})", "sparse_budget"},
      {R"({"prompt": "x", "sparse_budget": 1.5})", "sparse_budget"},
      {R"({"prompt": "x", "attention": "dense", "sparse_budget": 64})", "sparse_budget"},
  };
  for (const auto& [body, field] : cases) {
    auto request = openai::ParseCompletionRequest(body);
    ASSERT_FALSE(request.ok()) << body;
    EXPECT_EQ(request.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_EQ(openai::ParamOf(request.status()), field) << body;
  }
}

Result<ServeConfig> LoadFlags(std::vector<std::string> args) {
  CLI::App app;
  ServeConfigLoader loader;
  loader.AddFlags(app);
  std::vector<const char*> argv = {"serve"};
  for (const auto& arg : args) argv.push_back(arg.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return InvalidArgument(e.what());
  }
  return loader.Load([](const std::string&) { return std::nullopt; });
}

TEST(AttentionFieldsTest, ServeOptionsDefaultsAndValues) {
  auto defaults = LoadFlags({});
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(defaults->attention, AttentionMode::kDense);
  EXPECT_EQ(defaults->sparse_budget, 2048);
  EXPECT_TRUE(defaults->draft_model.empty());

  auto set = LoadFlags({"--attention", "specontext", "--draft-model", "/models/eagle3",
                        "--sparse-budget", "1024", "--sparse-sinks", "4", "--sparse-window", "64",
                        "--dense-fallback-mass", "0.8"});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->attention, AttentionMode::kSpecontext);
  EXPECT_EQ(set->draft_model, "/models/eagle3");
  EXPECT_EQ(set->sparse_budget, 1024);
  EXPECT_EQ(set->sparse_sinks, 4);
  EXPECT_EQ(set->sparse_window, 64);
  EXPECT_DOUBLE_EQ(set->dense_fallback_mass, 0.8);
}

TEST(AttentionFieldsTest, AbsurdServeOptionsStopStartup) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--attention", "sparse"}, "attention"},
      {{"--sparse-budget", "0"}, "sparse_budget"},
      {{"--sparse-budget", "1e9"}, "sparse_budget"},
      {{"--sparse-sinks", "-1"}, "sparse_sinks"},
      {{"--dense-fallback-mass", "1.5"}, "dense_fallback_mass"},
      {{"--dense-fallback-mass", "nan"}, "dense_fallback_mass"},
      {{"--attention", "specontext"}, "draft_model"},
      {{"--sparse-budget", "16", "--sparse-sinks", "8", "--sparse-window", "9"}, "sparse_budget"},
  };
  for (const auto& [args, key] : cases) {
    auto config = LoadFlags(args);
    ASSERT_FALSE(config.ok()) << args.back();
    EXPECT_NE(config.status().message().find(key), std::string::npos) << config.status().ToString();
  }
}

}  // namespace
}  // namespace specontext::server
