// Test support: the tiny models under tests/fixtures/models, and EAGLE-3 checkpoints written
// once per test binary by tests/fixtures/make_eagle3_fixture.py with the repository's .venv.
#pragma once

#include <string>
#include <vector>

namespace specontext::testing {

std::string ModelsDir();
// The directory the script wrote, or "" (with `error` set) when it could not run.
const std::string& Eagle3FixtureDir(std::string* error);

struct QkReference {
  std::vector<int32_t> tokens;
  int32_t start_position = 0;
  // Flattened [tokens][width] arrays by key ("q", "k", "fused", "q_hidden", ...).
  std::vector<float> Array(const std::string& key) const;
  std::string json_text;
};

QkReference ReadReference(const std::string& path);

}  // namespace specontext::testing
