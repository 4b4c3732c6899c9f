// The engine's one entry point for the scheduler: run one forward step over a batch.
// Implemented by the CPU reference backend and the CUDA backend.
#pragma once

#include <vector>

#include "common/status.h"
#include "engine/batch.h"
#include "engine/model/model_config.h"
#include "kv_store/kv_layout.h"

namespace specontext {

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual const ModelConfig& config() const = 0;
  // The KV block layout this runner reads and writes; the KV store allocates blocks to match.
  virtual KvLayout kv_layout() const = 0;
  virtual Status Step(const BatchStep& batch, StepOutput* out) = 0;
  // Whether Step honours BatchStep::summary (else it returns whole rows whatever is asked).
  virtual bool summarises_logits() const { return false; }
  // The whole logits row `row` of the last Step, after that Step returned summaries (a sampler
  // falls back to it when a summary does not settle the draw). Valid until the next Step.
  virtual Status LogitsRow(int row, std::vector<float>* out) {
    (void)row, (void)out;
    return Unimplemented("this backend returns whole logits rows");
  }
};

}  // namespace specontext
