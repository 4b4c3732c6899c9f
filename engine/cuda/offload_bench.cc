#include "engine/cuda/offload_bench.h"

#include <algorithm>
#include <random>

#include "engine/cuda/bench_steps.h"

namespace specontext::cuda {
namespace {

constexpr int kSinks = 4;

// Replaces `count` positions of an ascending list (never the sinks or the token's own, last
// position) by positions it does not hold yet, below the own position; keeps it ascending.
void Reselect(std::vector<int32_t>& list, int count, std::mt19937& rng) {
  const int32_t own = list.back();
  const int first = std::min<int>(kSinks, static_cast<int>(list.size()) - 1);
  const int movable = static_cast<int>(list.size()) - 1 - first;
  if (movable <= 0 || own - kSinks <= movable) return;
  std::vector<int32_t> kept(list.begin() + first, list.end() - 1);
  std::shuffle(kept.begin(), kept.end(), rng);
  kept.resize(std::max(0, movable - count));
  std::sort(kept.begin(), kept.end());
  std::vector<int32_t> added;
  std::uniform_int_distribution<int32_t> draw(kSinks, own - 1);
  while (static_cast<int>(kept.size() + added.size()) < movable) {
    const int32_t p = draw(rng);
    if (!std::binary_search(kept.begin(), kept.end(), p) &&
        std::find(added.begin(), added.end(), p) == added.end()) {
      added.push_back(p);
    }
  }
  kept.insert(kept.end(), added.begin(), added.end());
  std::sort(kept.begin(), kept.end());
  list.resize(first);
  list.insert(list.end(), kept.begin(), kept.end());
  list.push_back(own);
}

struct Timed {
  double ms = 0;
  ElasticLoadStats stats;  // over the timed steps
};

// Median step time; each step first replaces `reselect` of every list.
Result<Timed> TimeReselecting(CudaModelRunner& runner, BatchStep& batch, double reselect, int steps,
                              std::mt19937& rng) {
  constexpr int kWarmup = 3;
  ElasticLoadStats start;
  SPC_ASSIGN_OR_RETURN(std::vector<double> ms, TimeSteps(runner, batch, kWarmup, steps, [&](int i) {
                         if (i == kWarmup) start = runner.elastic_stats();
                         for (SequenceStep& step : batch.sequences) {
                           for (auto& list : step.sparse_positions) {
                             Reselect(list, static_cast<int>(reselect * double(list.size())), rng);
                           }
                         }
                       }));
  return Timed{.ms = Median(ms), .stats = runner.elastic_stats() - start};
}

}  // namespace

double SparseLayerPositions(int layers, int budget, int context, int dense_layers) {
  const int dense = std::clamp(dense_layers, 0, layers);
  return double(layers - dense) * budget + double(dense) * context;
}

Result<OffloadPoint> BenchOffloaded(CudaModelRunner& runner, int batch, int context,
                                    const OffloadOptions& o) {
  const ModelConfig& c = runner.config();
  const KvLayout layout = runner.kv_layout();
  const int layers = c.num_layers, g = std::clamp(o.gpu_layers, 0, layers);
  SPC_ASSIGN_OR_RETURN(KvPool pool, MakeKvPool(layout, c.vocab_size, batch, context, 1, context - 1,
                                               g, runner.stream()));
  OffloadPoint p{.gpu_layers = g, .host_kv_bytes = static_cast<double>(pool.host.bytes())};
  const double layer_token = layout.TokenBytes() / layers;  // K and V of one position, one layer
  const double hbm = o.copy_bytes_per_s, link = o.host_to_device_bytes_per_s;
  p.dense_roofline_ms = std::max((o.step_weights + double(batch) * context * g * layer_token) / hbm,
                                 double(batch) * context * (layers - g) * layer_token / link) *
                        1e3;
  SPC_ASSIGN_OR_RETURN(std::vector<double> dense, TimeSteps(runner, pool.batch, 3, o.steps));
  p.dense_ms = Median(dense);
  if (o.budget <= 0 || context <= o.budget) return p;

  for (SequenceStep& step : pool.batch.sequences) {
    SetSparsePositions(o.budget, layout.num_kv_heads, &step);
  }
  pool.batch.dense_layers = o.dense_layers;
  SPC_ASSIGN_OR_RETURN(std::vector<double> in_place, TimeSteps(runner, pool.batch, 3, o.steps));
  p.sparse_in_place_ms = Median(in_place);

  for (SequenceStep& step : pool.batch.sequences) runner.ReleaseSequence(step.seq_id);
  std::vector<uint8_t> host_layers(layers, 0);
  std::fill(host_layers.begin() + g, host_layers.end(), 1);
  for (SequenceStep& step : pool.batch.sequences) step.host_layers = host_layers;
  std::mt19937 rng(17);
  SPC_ASSIGN_OR_RETURN(Timed fixed, TimeReselecting(runner, pool.batch, 0.0, o.steps, rng));
  p.elastic_static_ms = fixed.ms;
  SPC_ASSIGN_OR_RETURN(Timed moving, TimeReselecting(runner, pool.batch, o.reselect, o.steps, rng));
  p.elastic_ms = moving.ms;
  const double listed =
      static_cast<double>(moving.stats.positions_loaded + moving.stats.positions_reused);
  p.loaded_fraction = listed > 0 ? moving.stats.positions_loaded / listed : 0;
  p.copied_bytes_per_step = static_cast<double>(moving.stats.bytes_copied) / o.steps;
  const int dense_layers = std::min(o.dense_layers, layers);
  p.reload_bytes_per_step =
      double(batch) * (o.budget - 1) * (layers - std::max(g, dense_layers)) * layer_token;
  // Dense layers below g read HBM; those above it read the host blocks over the link.
  const double hbm_positions = SparseLayerPositions(layers, o.budget, context, dense_layers) -
                               double(std::max(0, dense_layers - g)) * context;
  const double link_bytes = p.copied_bytes_per_step +
                            double(batch) * std::max(0, dense_layers - g) * context * layer_token;
  p.elastic_roofline_ms =
      std::max((o.step_weights + double(batch) * hbm_positions * layer_token) / hbm,
               link_bytes / link) *
      1e3;
  for (SequenceStep& step : pool.batch.sequences) runner.ReleaseSequence(step.seq_id);
  return p;
}

}  // namespace specontext::cuda
