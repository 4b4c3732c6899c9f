#include "tests/specontext/eagle3_fixture.h"

#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace specontext::testing {
namespace fs = std::filesystem;

std::string ModelsDir() { return std::string(SPECONTEXT_SOURCE_DIR) + "/tests/fixtures/models"; }

const std::string& Eagle3FixtureDir(std::string* error) {
  static std::string failure;
  static const std::string dir = [] {
    const std::string source = SPECONTEXT_SOURCE_DIR;
    const std::string python = source + "/.venv/bin/python3";
    if (!fs::exists(python)) {
      failure = python + " is missing: run scripts/install_deps.sh to create the .venv";
      return std::string();
    }
    const fs::path out =
        fs::temp_directory_path() / ("specontext_eagle3_" + std::to_string(::getpid()));
    fs::remove_all(out);
    const fs::path log = out.string() + ".log";
    const std::string command =
        "'" + python + "' '" + source + "/tests/fixtures/make_eagle3_fixture.py' '" + out.string() +
        "' '" + ModelsDir() + "/llama3-gqa-tied' '" + ModelsDir() + "/qwen2-bias-yarn' '" +
        ModelsDir() + "/qwen3-qknorm' > '" + log.string() + "' 2>&1";
    const int status = std::system(command.c_str());
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    fs::remove(log);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      failure = "make_eagle3_fixture.py failed:\n" + text.str();
      return std::string();
    }
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(
          fs::temp_directory_path() / ("specontext_eagle3_" + std::to_string(::getpid())), ec);
    });
    return out.string();
  }();
  if (error != nullptr) *error = failure;
  return dir;
}

std::vector<float> QkReference::Array(const std::string& key) const {
  const boost::json::value root = boost::json::parse(json_text);
  std::vector<float> out;
  const boost::json::value* rows = root.as_object().if_contains(key);
  if (rows == nullptr) return out;
  for (const boost::json::value& row : rows->as_array()) {
    for (const boost::json::value& v : row.as_array())
      out.push_back(static_cast<float>(v.to_number<double>()));
  }
  return out;
}

QkReference ReadReference(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  QkReference ref;
  ref.json_text = text.str();
  const boost::json::value root = boost::json::parse(ref.json_text);
  for (const boost::json::value& t : root.at("tokens").as_array()) {
    ref.tokens.push_back(static_cast<int32_t>(t.as_int64()));
  }
  ref.start_position = static_cast<int32_t>(root.at("start_position").as_int64());
  return ref;
}

}  // namespace specontext::testing
