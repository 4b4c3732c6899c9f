// The default model (SmolLM2-135M-Instruct) on the eval's easiest task; skipped when the model
// is not prepared.
#include <gtest/gtest.h>

#include <filesystem>

#include "server/eval_command.h"

namespace specontext::server {
namespace {

namespace fs = std::filesystem;

// The default model finds a pass key at 1K tokens (docs/eval.md has the full table).
TEST(EvalDefaultModelTest, PasskeyAt1K) {
  if (!fs::exists(DefaultModelPath() + "/model.safetensors")) {
    GTEST_SKIP() << "default model not prepared at " << DefaultModelPath()
                 << " (run scripts/prepare_default_model.sh)";
  }
  EvalOptions options;
  options.model.backend = Backend::kCpu;
  options.model.kv_host_gib = 0.25;
  options.tasks = {"passkey"};
  options.lengths = {1024};
  options.samples = 3;
  Result<EvalResult> result = RunEval(options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->cells.size(), 1u);
  EXPECT_GE(result->cells[0].accuracy, 200.0 / 3 - 1e-9) << result->table;
}

}  // namespace
}  // namespace specontext::server
