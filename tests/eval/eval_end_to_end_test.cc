// The whole eval pipeline (generate, submit to a real engine, score, report) on a tiny
// random-weight model, where accuracy is meaningless but every stage must run.
#include <gtest/gtest.h>

#include <unistd.h>
#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "server/eval_command.h"

namespace specontext::server {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The fixture's weights with a byte-level tokenizer of 257 ids (within its 512-token vocabulary).
fs::path MakeModelDir() {
  const fs::path fixture = SPECONTEXT_SOURCE_DIR "/tests/fixtures/models/llama3-gqa-tied";
  const fs::path dir = fs::temp_directory_path() / ("eval_e2e_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char* name : {"config.json", "generation_config.json", "model.safetensors"}) {
    fs::copy_file(fixture / name, dir / name, fs::copy_options::overwrite_existing);
  }
  fs::copy_file(SPECONTEXT_SOURCE_DIR "/tests/eval/data/byte_tokenizer.json",
                dir / "tokenizer.json", fs::copy_options::overwrite_existing);
  return dir;
}

TEST(EvalEndToEndTest, TinyModelRunsEveryTaskAndReports) {
  const fs::path dir = MakeModelDir();
  EvalOptions options;
  options.model.model = dir.string();
  options.model.backend = Backend::kCpu;
  options.model.kv_host_gib = 0.05;
  // The fixture's RoPE is defined beyond its nominal 128 positions; the text needs more.
  options.model.max_model_len = 1536;
  options.lengths = {1024, 1536};
  options.samples = 1;
  options.json_path = (dir / "report.json").string();
  options.tasks_path = (dir / "tasks.jsonl").string();
  Result<EvalResult> result = RunEval(options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->cells.size(), 11u * 2u);
  for (const eval::CellResult& cell : result->cells) {
    EXPECT_EQ(cell.samples, 1);
    EXPECT_GE(cell.accuracy, 0.0);
    EXPECT_LE(cell.accuracy, 100.0);
  }
  EXPECT_NE(result->table.find("kv_retrieval"), std::string::npos) << result->table;

  const boost::json::value report = boost::json::parse(ReadAll(options.json_path));
  EXPECT_EQ(report.at("cells").as_array().size(), 22u);
  EXPECT_EQ(report.at("samples").as_array().size(), 22u);
  EXPECT_EQ(report.at("model").as_string(), dir.filename().string());

  std::istringstream lines(ReadAll(options.tasks_path));
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    const boost::json::value task = boost::json::parse(line);
    EXPECT_FALSE(task.at("prompt").as_string().empty());
    EXPECT_FALSE(task.at("expected").as_array().empty());
  }
  EXPECT_EQ(count, 22);
  fs::remove_all(dir);
}

TEST(EvalEndToEndTest, RejectsLengthsBeyondTheContextAndUnknownTasks) {
  const fs::path dir = MakeModelDir();
  EvalOptions options;
  options.model.model = dir.string();
  options.model.backend = Backend::kCpu;
  options.model.kv_host_gib = 0.05;
  options.lengths = {1024};  // the fixture's context is 128
  Result<EvalResult> too_long = RunEval(options);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().ToString().find("--lengths"), std::string::npos);

  options.model.max_model_len = 1024;
  options.tasks = {"passkey", "no_such_task"};
  Result<EvalResult> unknown = RunEval(options);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().ToString().find("no_such_task"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace specontext::server
