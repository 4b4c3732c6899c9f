#include "engine/model/default_model_path.h"

#include <cstdlib>

namespace specontext {

std::string DefaultModelPath() {
  std::string cache;
  if (const char* env = std::getenv("SPECONTEXT_CACHE"); env != nullptr && *env != '\0') {
    cache = env;
  } else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    cache = std::string(xdg) + "/specontext";
  } else {
    const char* home = std::getenv("HOME");
    cache = std::string(home != nullptr ? home : ".") + "/.cache/specontext";
  }
  return cache + "/models/SmolLM2-135M-Instruct";
}

}  // namespace specontext
