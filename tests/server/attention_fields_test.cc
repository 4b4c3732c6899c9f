// SpeContext's request extension fields ("attention", "sparse_budget"): accepted values reach
// the request options, bad ones name the field. The serve options are in serve_config_test.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/openai/api_error.h"
#include "server/openai/completion_request.h"

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
  EXPECT_FALSE(sparse->options.sparse_redo_probability.has_value());

  auto redo = openai::ParseCompletionRequest(R"({"prompt": "x", "sparse_redo_probability": 0.9})");
  ASSERT_TRUE(redo.ok()) << redo.status().ToString();
  ASSERT_TRUE(redo->options.sparse_redo_probability.has_value());
  EXPECT_NEAR(*redo->options.sparse_redo_probability, 0.9, 1e-6);

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
      {R"({"prompt": "x", "sparse_redo_probability": 1.5})", "sparse_redo_probability"},
      {R"({"prompt": "x", "sparse_redo_probability": -0.1})", "sparse_redo_probability"},
      {R"({"prompt": "x", "sparse_redo_probability": "high"})", "sparse_redo_probability"},
      {R"({"prompt": "x", "attention": "dense", "sparse_redo_probability": 0.5})",
       "sparse_redo_probability"},
  };
  for (const auto& [body, field] : cases) {
    auto request = openai::ParseCompletionRequest(body);
    ASSERT_FALSE(request.ok()) << body;
    EXPECT_EQ(request.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_EQ(openai::ParamOf(request.status()), field) << body;
  }
}

}  // namespace
}  // namespace specontext::server
