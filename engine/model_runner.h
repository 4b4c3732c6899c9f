// The engine's one entry point for the scheduler: run one forward step over a batch.
// Implemented by the CPU reference backend and the CUDA backend.
#pragma once

#include <vector>

#include "common/status.h"
#include "engine/batch.h"
#include "engine/model/model_config.h"
#include "kv_store/kv_layout.h"

namespace specontext {

// Elastic loading (SpeContext rows attending to offloaded layers through GPU slot copies).
struct ElasticLoadStats {
  int64_t steps = 0;             // steps with at least one elastic row
  int64_t row_layers = 0;        // (row, layer) pairs attended through slots
  int64_t positions_reused = 0;  // per (row, KV head): still in their slots
  int64_t positions_loaded = 0;  // per (row, KV head): copied in (shared by the row's layers)
  // Of positions_loaded, those of a sequence's first elastic step (nothing in its slots yet):
  // the rest measure how much a selection changes from one step to the next.
  int64_t positions_first_loaded = 0;
  int64_t whole_layer_loads = 0;  // (row, layer) pairs that copied their whole selection
  int64_t bytes_copied = 0;       // host to device, K and V, every layer
  // Rows whose slots did not fit the GPU (or the runner's slot limit): they attended their host
  // layers in place over PCIe that step instead.
  int64_t rows_in_place = 0;
};

// What changed between two readings of the counters.
inline ElasticLoadStats operator-(const ElasticLoadStats& a, const ElasticLoadStats& b) {
  return {.steps = a.steps - b.steps,
          .row_layers = a.row_layers - b.row_layers,
          .positions_reused = a.positions_reused - b.positions_reused,
          .positions_loaded = a.positions_loaded - b.positions_loaded,
          .positions_first_loaded = a.positions_first_loaded - b.positions_first_loaded,
          .whole_layer_loads = a.whole_layer_loads - b.whole_layer_loads,
          .bytes_copied = a.bytes_copied - b.bytes_copied,
          .rows_in_place = a.rows_in_place - b.rows_in_place};
}

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual const ModelConfig& config() const = 0;
  // The KV block layout this runner reads and writes; the KV store allocates blocks to match.
  virtual KvLayout kv_layout() const = 0;
  virtual Status Step(const BatchStep& batch, StepOutput* out) = 0;
  // The sequence finished or was preempted: drop whatever the backend keeps for its seq_id.
  virtual void ReleaseSequence(uint64_t seq_id) { (void)seq_id; }
  // Counters since creation; zeros for a backend without elastic loading.
  virtual ElasticLoadStats elastic_stats() const { return {}; }
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
