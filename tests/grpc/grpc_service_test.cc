// The gRPC API end to end: a real GrpcService on loopback over a real ServingModel, driven by
// the C++ client SDK.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "engine/attention_probe.h"
#include "sdk/cpp/specontext_client.h"
#include "server/grpc_service.h"
#include "server/serving_model.h"
#include "tests/grpc/raw_call.h"

namespace specontext::server {
namespace {

using client::Client;
using client::ClientOptions;

constexpr char kApiKey[] = "test-key-1";

class GrpcServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = DefaultModelPath();
    if (!std::filesystem::exists(std::filesystem::path(path) / "config.json")) return;
    ServingModelOptions options;
    options.model = path;
    options.backend = Backend::kCpu;
    options.max_model_len = 1024;
    options.kv_host_gib = 0.25;
    auto serving = ServingModel::Create(options);
    ASSERT_TRUE(serving.ok()) << serving.status().ToString();
    serving_ = std::move(*serving).release();
    auto server = StartGrpcServer(*serving_, "127.0.0.1", 0, {});
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server).release();
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
    delete server_;
    delete serving_;
    server_ = nullptr;
    serving_ = nullptr;
  }

  void SetUp() override {
    if (serving_ == nullptr) {
      GTEST_SKIP() << "the default model is not prepared at " << DefaultModelPath()
                   << " (scripts/prepare_default_model.sh)";
    }
  }

  std::string Target() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  static v1::GenerateRequest Greedy(v1::GenerateRequest request) {
    request.mutable_sampling()->set_temperature(0.0f);
    return request;
  }

  // A request that keeps generating until cancelled.
  static v1::GenerateRequest Endless() {
    v1::GenerateRequest request = Greedy(client::TextRequest("Count to one hundred:", 500));
    request.mutable_sampling()->set_ignore_eos(true);
    return request;
  }

  // Waits until no Generate call is in flight, then checks that the engine freed every KV block.
  void ExpectKvReleased() const {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (server_->active_generate_calls() > 0 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(server_->active_generate_calls(), 0);
    // A call ends only after the engine acknowledged the cancellation; give the now idle
    // engine thread a moment before touching its store.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    serving_->kv_store().DropUnusedPrefixes();
    EXPECT_EQ(serving_->kv_store().Usage(Tier::kHost).used_blocks, 0);
  }

  static ServingModel* serving_;
  static GrpcServer* server_;
};

ServingModel* GrpcServiceTest::serving_ = nullptr;
GrpcServer* GrpcServiceTest::server_ = nullptr;

TEST_F(GrpcServiceTest, StreamedChunksConcatenateToTheFullText) {
  Client client(Target());
  auto result = client.Generate(Greedy(client::TextRequest("The capital of France is", 8)));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_FALSE(result->text.empty());
  EXPECT_EQ(result->usage.completion_tokens(), result->token_ids.size());
  EXPECT_GT(result->usage.prompt_tokens(), 0u);
  EXPECT_TRUE(result->finish_reason == "length" || result->finish_reason == "stop");
  EXPECT_FALSE(result->request_id.empty());
  auto decoded = serving_->tokenizer()->Decode(result->token_ids, /*skip_special_tokens=*/true);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, result->text);

  auto stream = client.StreamGenerate(Greedy(client::TextRequest("The capital of France is", 8)));
  std::string text;
  std::vector<int32_t> ids;
  int chunks = 0;
  v1::Chunk chunk;
  while (stream->Next(&chunk)) {
    chunks++;
    text += chunk.text();
    ids.insert(ids.end(), chunk.token_ids().begin(), chunk.token_ids().end());
  }
  ASSERT_TRUE(stream->status().ok()) << stream->status().ToString();
  EXPECT_GT(chunks, 1);
  EXPECT_EQ(text, result->text);
  EXPECT_EQ(ids, result->token_ids);
  EXPECT_EQ(stream->complete().finish_reason(), result->finish_reason);
}

TEST_F(GrpcServiceTest, TokenIdAndChatPromptsWithLogprobs) {
  auto prompt = serving_->tokenizer()->Encode("Hello, my name is", true);
  ASSERT_TRUE(prompt.ok());
  Client client(Target());
  v1::GenerateRequest request = Greedy(client::TokenRequest(*prompt, 4));
  request.mutable_sampling()->set_top_logprobs(2);
  auto result = client.Generate(request);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->logprobs.size(), result->token_ids.size());
  for (size_t i = 0; i < result->logprobs.size(); ++i) {
    EXPECT_EQ(result->logprobs[i].token_id(), result->token_ids[i]);
    EXPECT_LE(result->logprobs[i].logprob(), 0.0f);
  }
  EXPECT_EQ(result->usage.prompt_tokens(), prompt->size());

  auto chat = client.Generate(Greedy(client::ChatRequest({{"user", "Say hi"}}, 4)));
  ASSERT_TRUE(chat.ok()) << chat.status().ToString();
  EXPECT_FALSE(chat->token_ids.empty());
}

TEST_F(GrpcServiceTest, StopStringEndsTheTextBeforeIt) {
  Client client(Target());
  auto full = client.Generate(Greedy(client::TextRequest("One, two, three,", 12)));
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  ASSERT_GE(full->text.size(), 4u);
  const std::string stop = full->text.substr(2, 2);
  v1::GenerateRequest request = Greedy(client::TextRequest("One, two, three,", 12));
  request.mutable_sampling()->add_stop(stop);
  auto stopped = client.Generate(request);
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_EQ(stopped->finish_reason, "stop");
  EXPECT_EQ(stopped->text, full->text.substr(0, full->text.find(stop)));
  ExpectKvReleased();
}

TEST_F(GrpcServiceTest, TokenizeAndListModels) {
  Client client(Target());
  v1::TokenizeRequest request;
  request.set_text("Hello world, tokenizers!");
  request.set_add_special_tokens(true);
  auto response = client.Tokenize(request);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  auto expected = serving_->tokenizer()->Encode("Hello world, tokenizers!", true);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(std::vector<int32_t>(response->token_ids().begin(), response->token_ids().end()),
            *expected);
  EXPECT_EQ(response->count(), expected->size());
  EXPECT_EQ(response->max_model_len(), 1024u);

  auto models = client.ListModels();
  ASSERT_TRUE(models.ok()) << models.status().ToString();
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ((*models)[0].id(), serving_->name());
  EXPECT_EQ((*models)[0].max_model_len(), 1024u);
  EXPECT_EQ((*models)[0].architecture(), serving_->config().architecture_name);
}

TEST_F(GrpcServiceTest, BadRequestsAreRejectedWithTheirCodes) {
  Client client(Target());
  auto expect_code = [&](const v1::GenerateRequest& request, StatusCode code) {
    auto result = client.Generate(request);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), code) << result.status().ToString();
  };
  expect_code(v1::GenerateRequest(), StatusCode::kInvalidArgument);
  expect_code(client::TokenRequest({1, 999999}, 4), StatusCode::kInvalidArgument);
  v1::GenerateRequest hot = client::TextRequest("hi", 4);
  hot.mutable_sampling()->set_temperature(5.0f);
  expect_code(hot, StatusCode::kInvalidArgument);
  expect_code(client::TextRequest("hi", 100000), StatusCode::kInvalidArgument);
  v1::GenerateRequest other_model = client::TextRequest("hi", 4);
  other_model.set_model("no-such-model");
  expect_code(other_model, StatusCode::kNotFound);
  v1::GenerateRequest bad_mode = client::TextRequest("hi", 4);
  bad_mode.set_attention_mode("sparse");
  expect_code(bad_mode, StatusCode::kInvalidArgument);
  v1::GenerateRequest dense_budget = client::TextRequest("hi", 4);
  dense_budget.set_attention_mode("dense");
  dense_budget.set_sparse_budget(64);
  expect_code(dense_budget, StatusCode::kInvalidArgument);
  v1::GenerateRequest dense_redo = client::TextRequest("hi", 4);
  dense_redo.set_attention_mode("dense");
  dense_redo.set_sparse_redo_probability(0.5);
  expect_code(dense_redo, StatusCode::kInvalidArgument);
  v1::GenerateRequest wide_redo = client::TextRequest("hi", 4);
  wide_redo.set_sparse_redo_probability(1.5);
  expect_code(wide_redo, StatusCode::kInvalidArgument);
  // This server has no draft model, so it cannot serve SpeContext.
  v1::GenerateRequest no_planner = client::TextRequest("hi", 4);
  no_planner.set_attention_mode("specontext");
  expect_code(no_planner, StatusCode::kInvalidArgument);

  v1::TokenizeRequest empty;
  auto tokens = client.Tokenize(empty);
  ASSERT_FALSE(tokens.ok());
  EXPECT_EQ(tokens.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(GrpcServiceTest, ApiKeysAreRequiredWhenConfigured) {
  auto secured = StartGrpcServer(*serving_, "127.0.0.1", 0, {"other-key", kApiKey});
  ASSERT_TRUE(secured.ok()) << secured.status().ToString();
  const std::string target = "127.0.0.1:" + std::to_string((*secured)->port());

  auto anonymous = Client(target).ListModels();
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.status().code(), StatusCode::kUnauthenticated);
  auto wrong = Client(target, {.api_key = "test-key-2"}).Generate(client::TextRequest("hi", 2));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated);
  auto right = Client(target, {.api_key = kApiKey}).ListModels();
  EXPECT_TRUE(right.ok()) << right.status().ToString();
  (*secured)->Shutdown(std::chrono::system_clock::now());
}

TEST_F(GrpcServiceTest, DeadlineExceededEndsTheRequest) {
  Client client(Target(), {.deadline = std::chrono::milliseconds(300)});
  auto result = client.Generate(Endless());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded) << result.status().ToString();
  ExpectKvReleased();
}

TEST_F(GrpcServiceTest, ClientCancellationFreesTheKv) {
  Client client(Target());
  auto stream = client.StreamGenerate(Endless());
  v1::Chunk chunk;
  ASSERT_TRUE(stream->Next(&chunk)) << stream->status().ToString();
  EXPECT_EQ(server_->active_generate_calls(), 1);
  stream->Cancel();
  while (stream->Next(&chunk)) {
  }
  EXPECT_EQ(stream->status().code(), StatusCode::kCancelled) << stream->status().ToString();
  ExpectKvReleased();
}

TEST_F(GrpcServiceTest, UnavailableServerIsRetriedThenReported) {
  // Nothing listens on port 1 of loopback.
  Client client("127.0.0.1:1",
                {.max_retries = 2, .initial_backoff = std::chrono::milliseconds(10)});
  const auto start = std::chrono::steady_clock::now();
  auto models = client.ListModels();
  ASSERT_FALSE(models.ok());
  EXPECT_EQ(models.status().code(), StatusCode::kUnavailable);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(30));
  auto result = client.Generate(client::TextRequest("hi", 2));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
}

TEST_F(GrpcServiceTest, HealthServesAndReflectionListsTheService) {
  auto channel = grpc::CreateChannel(Target(), grpc::InsecureChannelCredentials());
  // HealthCheckRequest{service: "specontext.v1.Specontext"} and the SERVING answer (status = 1).
  const std::string service = "specontext.v1.Specontext";
  const std::string request = std::string("\x0a", 1) + static_cast<char>(service.size()) + service;
  auto health = testing::RawUnaryCall(channel, "/grpc.health.v1.Health/Check", request);
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(*health, std::string("\x08\x01", 2));
  auto unknown = testing::RawUnaryCall(channel, "/grpc.health.v1.Health/Check",
                                       std::string("\x0a\x04", 2) + "nope");
  EXPECT_FALSE(unknown.ok());

  // ServerReflectionRequest{list_services: ""} (field 7).
  auto listing = testing::RawStreamCallOnce(
      channel, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      std::string("\x3a\x00", 2));
  ASSERT_TRUE(listing.ok()) << listing.status().ToString();
  EXPECT_NE(listing->find(service), std::string::npos);
  EXPECT_NE(listing->find("grpc.health.v1.Health"), std::string::npos);
}

// Counts sparse decode attention: rows x layers, and the largest list a KV head attended to.
class SparseStepCounter : public AttentionProbe {
 public:
  void Observe(const SparseAttentionSample& sample) override {
    samples_.fetch_add(1);
    for (const std::vector<int32_t>& list : sample.attended) {
      size_t seen = widest_.load();
      while (list.size() > seen && !widest_.compare_exchange_weak(seen, list.size())) {
      }
    }
  }
  int samples() const { return samples_.load(); }
  size_t widest() const { return widest_.load(); }

 private:
  std::atomic<int> samples_{0};
  std::atomic<size_t> widest_{0};
};

// attention_mode, sparse_budget and sparse_redo_probability per request, on a server with the
// shipped retrieval head whose own mode is dense: only the request that asks for SpeContext
// attends sparsely, within its budget; one that re-runs every sparse step gives dense's tokens.
TEST(GrpcSpecontextTest, RequestsChooseTheirAttention) {
  const std::string path = DefaultModelPath();
  if (!std::filesystem::exists(std::filesystem::path(path) / "config.json")) {
    GTEST_SKIP() << "the default model is not prepared at " << path;
  }
  SparseStepCounter counter;
  ServingModelOptions options;
  options.model = path;
  options.backend = Backend::kCpu;
  options.max_model_len = 512;
  options.kv_host_gib = 0.1;
  options.draft_model = std::string(SPECONTEXT_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct-eagle3";
  options.specontext.server_mode = AttentionMode::kDense;
  options.probe = &counter;
  auto serving = ServingModel::Create(options);
  ASSERT_TRUE(serving.ok()) << serving.status().ToString();
  auto server = StartGrpcServer(**serving, "127.0.0.1", 0, {});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Client client("127.0.0.1:" + std::to_string((*server)->port()));
  auto request = [](const std::string& mode, uint32_t budget) {
    v1::GenerateRequest r = client::TextRequest(
        "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with "
        "a single step. All that glitters is not gold. Actions speak louder than words.",
        6);
    r.mutable_sampling()->set_temperature(0.0f);
    r.mutable_sampling()->set_ignore_eos(true);
    r.set_attention_mode(mode);
    r.set_sparse_budget(budget);
    return r;
  };

  std::vector<int32_t> dense_tokens;
  for (const std::string mode : {"", "dense"}) {
    auto dense = client.Generate(request(mode, 0));
    ASSERT_TRUE(dense.ok()) << dense.status().ToString();
    EXPECT_EQ(dense->token_ids.size(), 6u);
    dense_tokens = dense->token_ids;
  }
  EXPECT_EQ(counter.samples(), 0) << "dense requests attended sparsely";

  auto sparse = client.Generate(request("specontext", 16));
  ASSERT_TRUE(sparse.ok()) << sparse.status().ToString();
  EXPECT_EQ(sparse->token_ids.size(), 6u);
  EXPECT_GT(counter.samples(), 0) << "the specontext request never attended sparsely";
  EXPECT_LE(counter.widest(), 16u);

  v1::GenerateRequest always = request("specontext", 16);
  always.set_sparse_redo_probability(1.0);
  auto redone = client.Generate(always);
  ASSERT_TRUE(redone.ok()) << redone.status().ToString();
  EXPECT_EQ(redone->token_ids, dense_tokens);
  (*server)->Shutdown(std::chrono::system_clock::now());
}

// A random-weight preset has no tokenizer: token ids in, token ids out, text input refused.
TEST(GrpcPresetTest, TokenOnlyModelServesTokenIds) {
  ServingModelOptions options;
  options.model = "preset:tiny-llama";
  options.backend = Backend::kCpu;
  options.max_model_len = 256;
  options.kv_host_gib = 0.05;
  auto serving = ServingModel::Create(options);
  ASSERT_TRUE(serving.ok()) << serving.status().ToString();
  auto server = StartGrpcServer(**serving, "127.0.0.1", 0, {});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Client client("127.0.0.1:" + std::to_string((*server)->port()));

  v1::GenerateRequest request = client::TokenRequest({1, 2, 3, 4}, 5);
  request.mutable_sampling()->set_ignore_eos(true);
  request.mutable_sampling()->set_logprobs(true);
  auto result = client.Generate(request);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->token_ids.size(), 5u);
  EXPECT_EQ(result->logprobs.size(), 5u);
  EXPECT_TRUE(result->text.empty());
  EXPECT_EQ(result->finish_reason, "length");
  EXPECT_EQ(result->usage.prompt_tokens(), 4u);

  auto text = client.Generate(client::TextRequest("hello", 2));
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), StatusCode::kInvalidArgument);
  v1::TokenizeRequest tokenize;
  tokenize.set_text("hello");
  auto tokens = client.Tokenize(tokenize);
  ASSERT_FALSE(tokens.ok());
  EXPECT_EQ(tokens.status().code(), StatusCode::kInvalidArgument);
  (*server)->Shutdown(std::chrono::system_clock::now());
}

}  // namespace
}  // namespace specontext::server
