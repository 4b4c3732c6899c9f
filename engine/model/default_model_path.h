// Where scripts/prepare_default_model.sh puts the default model.
#pragma once

#include <string>

namespace specontext {

// The prepared directory: $SPECONTEXT_CACHE, else $XDG_CACHE_HOME/specontext, else
// ~/.cache/specontext, then models/SmolLM2-135M-Instruct.
std::string DefaultModelPath();

}  // namespace specontext
