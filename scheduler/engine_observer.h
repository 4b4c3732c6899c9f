// Hooks the engine thread calls as requests move through it; the server turns them into
// metrics and logs. Called on the engine thread: implementations must be quick and must not
// block.
#pragma once

#include <cstdint>

#include "engine/model_runner.h"
#include "engine/sampler/sampler.h"
#include "engine/specontext/step_planner.h"
#include "scheduler/sequence.h"

namespace specontext {

struct StepStats {
  int running = 0;
  int waiting = 0;
  int prefill_tokens = 0;
  int decode_tokens = 0;
  double step_seconds = 0.0;
  ElasticLoadStats elastic;       // this step's copies into GPU slots (offloaded sparse rows)
  SpecontextCounters specontext;  // this step's retrieval: how its decode rows ran, head time
};

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnStep(const StepStats& /*stats*/) {}
  virtual void OnFirstToken(const Sequence& /*seq*/) {}
  virtual void OnPreempted(const Sequence& /*seq*/) {}
  virtual void OnFinished(const Sequence& /*seq*/, FinishReason /*reason*/) {}
};

}  // namespace specontext
