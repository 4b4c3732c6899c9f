// The CUDA SpeContext planner against the CPU planner, both driven with the default model and
// its shipped draft through the step shapes serving produces: prefill chunks of several
// sequences in one step, a prompt prefix adopted from the prefix cache (the head catches up from
// the row's context), decode rows of different budgets in one batch and out of budget order, a
// recompute after preemption, a released sequence whose blocks a new one reuses, and a prefix
// shared with a sequence that left, whose published head blocks the new one adopts (also when
// they are published in the step it starts); with the head's hidden input (the engine hands
// both planners the same states after each step) and without it.
//
// Tolerance: the GPU head runs in BF16 (embedding, projection, K cache) and the CPU one in fp32,
// so positions near the B-th weight may swap. Every GPU list must have the CPU list's shape
// (length, ascending, sinks and the token's own position) and carry at least 97% of the
// attention mass the CPU list carries, both measured with fp32 weights computed here from the
// head's own projections.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "engine/cuda/cuda_model_runner.h"
#include "engine/cuda/cuda_specontext_planner.h"
#include "engine/device.h"
#include "engine/model/default_model_path.h"
#include "engine/specontext/specontext_planner.h"

namespace specontext::testing_gpu {
namespace {

// fp32 group-max softmax weights of one decode token over positions [0, S), per KV head,
// normalised to sum to 1 (the quantity the selection ranks). `inputs`: the head's hidden input
// per position ([S][fused width]), or empty for zeros.
std::vector<std::vector<double>> ReferenceWeights(const RetrievalHead& head,
                                                  std::span<const int32_t> tokens,
                                                  std::span<const float> inputs) {
  const int n = static_cast<int>(tokens.size());
  const int kv_heads = head.num_kv_heads(), q_heads = head.num_heads(), d = head.head_dim();
  auto& pool = cpu::ThreadPool::Shared();
  std::vector<float> k(static_cast<size_t>(n) * kv_heads * d), q(static_cast<size_t>(q_heads) * d);
  const size_t width = head.fused_hidden_size();
  EXPECT_TRUE(head.Project(tokens, 0, inputs, nullptr, k.data(), pool).ok());
  EXPECT_TRUE(head.Project(tokens.last(1), n - 1,
                           inputs.empty() ? inputs : inputs.subspan((n - 1) * width, width),
                           q.data(), nullptr, pool)
                  .ok());
  const int group = q_heads / kv_heads;
  std::vector<std::vector<double>> weights(kv_heads, std::vector<double>(n, 0.0));
  for (int h = 0; h < q_heads; ++h) {
    const int kv = h / group;
    std::vector<double> s(n);
    for (int p = 0; p < n; ++p) {
      double dot = 0;
      for (int j = 0; j < d; ++j) {
        dot += double(q[size_t(h) * d + j]) * k[(size_t(p) * kv_heads + kv) * d + j];
      }
      s[p] = dot / std::sqrt(double(d));
    }
    const double m = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (double& v : s) sum += (v = std::exp(v - m));
    for (int p = 0; p < n; ++p) weights[kv][p] = std::max(weights[kv][p], s[p] / sum);
  }
  for (auto& w : weights) {
    double total = 0;
    for (double v : w) total += v;
    for (double& v : w) v /= total;
  }
  return weights;
}

double Mass(const std::vector<double>& weights, const std::vector<int32_t>& list) {
  double mass = 0;
  for (int32_t p : list) mass += weights[p];
  return mass;
}

struct Row {
  uint64_t seq;
  int64_t start;
  int tokens;
  int64_t budget = 0;  // 0: the server's
};

// Parameters: the head reads hidden states; the selection memory's decay (0: none).
class CudaPlannerParity : public ::testing::TestWithParam<std::tuple<bool, double>> {
 protected:
  void SetUp() override {
    if (ProbeDevices().gpus.empty()) GTEST_SKIP() << "no GPU: " << ProbeDevices().why_no_gpu;
    const std::string dir = DefaultModelPath();
    if (!std::filesystem::exists(dir + "/config.json")) {
      GTEST_SKIP() << "the default model is not prepared at " << dir;
    }
    auto model = LoadModel(dir);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value();  // the head borrows its embedding table
    auto runner = cuda::CudaModelRunner::Create(*model_);
    ASSERT_TRUE(runner.ok()) << runner.status().ToString();
    runner_ = std::move(runner).value();
    const char* draft = std::getenv("SPECONTEXT_DRAFT_DIR");  // a bundle run away from the tree
    auto head = RetrievalHead::Load(
        draft != nullptr
            ? draft
            : std::string(SPECONTEXT_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct-eagle3",
        *model_, RetrievalHeadOptions{.load_hidden_path = std::get<0>(GetParam())});
    ASSERT_TRUE(head.ok()) << head.status().ToString();
    head_ = std::move(head).value();
    ASSERT_EQ(head_->fused_hidden_size() > 0, std::get<0>(GetParam()));
    options_.budget = 256;
    options_.sink_tokens = 4;
    options_.recent_window = 1;
    options_.memory_decay = std::get<1>(GetParam());
    auto cpu = SpecontextPlanner::Create(head_, options_);
    ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
    cpu_ = std::move(cpu).value();
    auto gpu = cuda::CudaSpecontextPlanner::Create(*head_, *runner_, options_, 1 << 14);
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    gpu_ = std::move(gpu).value();
  }

  std::vector<int32_t>& Tokens(uint64_t seq) {
    auto& t = tokens_[seq];
    if (t.empty() && shared_.contains(seq)) {
      const auto [source, length] = shared_.at(seq);
      t.assign(Tokens(source).begin(), Tokens(source).begin() + length);
    }
    std::mt19937 rng(static_cast<uint32_t>(seq) * 7919u);
    std::uniform_int_distribution<int32_t> dist(100, 20000);
    while (t.size() < 4096) t.push_back(dist(rng));
    return t;
  }

  // Plans one step on both planners and checks every decode row that ran sparse.
  void Step(const std::vector<Row>& rows) {
    BatchStep batch;
    std::vector<PlanRow> plan;
    for (const Row& r : rows) {
      // A recompute drops the planners' states from there; the one before it is gone too (it
      // was consumed and freed), so the position it starts at reads zeros.
      if (r.start < ends_[r.seq]) observed_[r.seq].erase(r.start - 1);
      // A prefix shared with an earlier sequence: the planners take its K and last state from
      // the blocks that sequence published.
      if (shared_.contains(r.seq) && !ends_.contains(r.seq)) {
        for (int64_t t = 0; t < shared_.at(r.seq).second; ++t) observed_[r.seq].insert(t);
      }
      ends_[r.seq] = r.start + r.tokens;
      const std::vector<int32_t>& t = Tokens(r.seq);
      SequenceStep step;
      step.start_position = static_cast<int32_t>(r.start);
      step.tokens.assign(t.begin() + r.start, t.begin() + r.start + r.tokens);
      batch.sequences.push_back(std::move(step));
      plan.push_back({.seq_id = r.seq,
                      .budget = r.budget,
                      .context = std::span<const int32_t>(t).first(r.start)});
    }
    BatchStep on_gpu = batch;
    EXPECT_EQ(gpu_->HiddenLayers(plan), cpu_->HiddenLayers(plan));
    ASSERT_TRUE(cpu_->Plan(plan, &batch).ok());
    const Status status = gpu_->Plan(plan, &on_gpu);
    ASSERT_TRUE(status.ok()) << status.ToString();
    // After the step: the engine hands both planners the states of the positions it ran.
    const size_t width = head_->fused_hidden_size();
    for (const Row& r : rows) {
      if (width == 0) break;
      std::vector<float> states;
      for (int t = 0; t < r.tokens; ++t) {
        const std::vector<float>& state = State(r.seq, r.start + t);
        states.insert(states.end(), state.begin(), state.end());
        observed_[r.seq].insert(r.start + t);
      }
      ASSERT_TRUE(cpu_->ObserveHidden(r.seq, r.start, states).ok());
      ASSERT_TRUE(gpu_->ObserveHidden(r.seq, r.start, states).ok());
    }
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      const auto& want = batch.sequences[i].sparse_positions;
      const auto& got = on_gpu.sequences[i].sparse_positions;
      SCOPED_TRACE("seq " + std::to_string(r.seq) + " at " + std::to_string(r.start));
      EXPECT_EQ(gpu_->CachedPositions(r.seq), cpu_->CachedPositions(r.seq));
      ASSERT_EQ(got.size(), want.size());
      if (want.empty()) continue;
      ++sparse_rows_;
      const int64_t budget = r.budget > 0 ? r.budget : options_.budget;
      const auto weights = ReferenceWeights(
          *head_, std::span<const int32_t>(Tokens(r.seq)).first(r.start + 1), Inputs(r));
      for (size_t h = 0; h < want.size(); ++h) {
        ASSERT_EQ(got[h].size(), static_cast<size_t>(budget));
        EXPECT_TRUE(std::is_sorted(got[h].begin(), got[h].end()));
        EXPECT_EQ(std::adjacent_find(got[h].begin(), got[h].end()), got[h].end());
        for (int s = 0; s < options_.sink_tokens; ++s) EXPECT_EQ(got[h][s], s);
        EXPECT_EQ(got[h].back(), r.start);
        const double cpu_mass = Mass(weights[h], want[h]), gpu_mass = Mass(weights[h], got[h]);
        EXPECT_GE(gpu_mass, 0.97 * cpu_mass) << "KV head " << h;
        int common = 0;
        for (int32_t p : got[h]) common += std::binary_search(want[h].begin(), want[h].end(), p);
        overlap_sum_ += double(common) / budget;
      }
    }
  }

  // The head's hidden input for positions [0, r.start]: the state of the previous position where
  // the engine reported one before this step, zeros elsewhere (adopted prefixes).
  std::vector<float> Inputs(const Row& r) {
    const size_t width = head_->fused_hidden_size();
    std::vector<float> inputs(width * (r.start + 1), 0.0f);
    for (int64_t t = 1; t <= r.start && width > 0; ++t) {
      if (!observed_[r.seq].contains(t - 1)) continue;
      const std::vector<float>& state = State(r.seq, t - 1);
      std::copy(state.begin(), state.end(), inputs.begin() + t * width);
    }
    return inputs;
  }

  // The fused state the engine reports for (sequence, position): seeded, so a recompute sees
  // the same values.
  const std::vector<float>& State(uint64_t seq, int64_t position) {
    if (auto it = shared_.find(seq); it != shared_.end() && position < it->second.second) {
      return State(it->second.first, position);  // the same tokens give the same states
    }
    std::vector<float>& state = states_[{seq, position}];
    if (state.empty()) {
      std::mt19937 rng(static_cast<uint32_t>(seq * 1000003 + position));
      std::normal_distribution<float> normal(0.0f, 2.0f);
      state.resize(head_->fused_hidden_size());
      for (float& v : state) v = normal(rng);
    }
    return state;
  }

  SpecontextPlannerOptions options_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<cuda::CudaModelRunner> runner_;
  std::shared_ptr<const RetrievalHead> head_;
  std::unique_ptr<SpecontextPlanner> cpu_;
  std::unique_ptr<cuda::CudaSpecontextPlanner> gpu_;
  std::map<uint64_t, std::vector<int32_t>> tokens_;
  std::map<uint64_t, std::set<int64_t>> observed_;
  std::map<uint64_t, int64_t> ends_;
  // Sequences whose first tokens are another's: (that sequence, how many).
  std::map<uint64_t, std::pair<uint64_t, int64_t>> shared_;
  std::map<std::pair<uint64_t, int64_t>, std::vector<float>> states_;
  int sparse_rows_ = 0;
  double overlap_sum_ = 0;
};

TEST_P(CudaPlannerParity, ServingStepShapesSelectLikeTheCpuPlanner) {
  // Prefill chunks of two sequences in one step, then more chunks beside a sequence whose first
  // 700 positions came from the prefix cache.
  Step({{1, 0, 300}, {2, 0, 500}});
  Step({{1, 300, 400}, {3, 700, 90}, {2, 500, 1}});
  // Decode rows of three budgets, out of budget order, beside a prefill chunk.
  for (int i = 0; i < 6; ++i) {
    Step({{3, 790 + i, 1, 512}, {1, 700 + i, 1}, {2, 501 + i, 1, 64}, {4, 200 * i, 200}});
  }
  // A recompute after preemption: sequence 2 restarts at position 300.
  Step({{2, 300, 207}, {1, 706, 1}});
  Step({{2, 507, 1, 128}, {1, 707, 1}});
  // Sequence 1 leaves; sequence 5 adopts a cached prefix of 1000 positions and reuses its blocks.
  cpu_->Release(1);
  gpu_->Release(1);
  observed_.erase(1);
  EXPECT_EQ(gpu_->CachedPositions(1), 0);
  Step({{5, 1000, 1}, {4, 1200, 1, 1024}, {3, 796, 1, 512}});
  Step({{5, 1001, 1}, {4, 1201, 1, 1024}});
  // Sequence 6 shares sequence 1's first 520 tokens and the prefix cache served 512 of them:
  // both planners adopt the 32 blocks sequence 1 published before it left, with the state of
  // position 511, and project only the rest.
  shared_[6] = {1, 520};
  Step({{6, 512, 100}, {4, 1202, 1, 1024}});
  EXPECT_EQ(gpu_->counters().tokens_adopted, 512);
  EXPECT_EQ(cpu_->counters().tokens_adopted, 512);
  for (int i = 0; i < 3; ++i) Step({{6, 612 + i, 1}});
  // Sequence 8's first 320 positions were served from sequence 7's prompt chunk of the step
  // before, whose K 7 projects in the step 8 starts; 8's row comes first. Both planners adopt
  // the 20 blocks 7 publishes in that step.
  shared_[8] = {7, 330};
  Step({{7, 0, 330}});
  Step({{8, 320, 40}, {7, 330, 10}});
  EXPECT_EQ(gpu_->counters().tokens_adopted, 512 + 320);
  EXPECT_EQ(cpu_->counters().tokens_adopted, 512 + 320);
  for (int i = 0; i < 3; ++i) Step({{8, 360 + i, 1}, {7, 340 + i, 1}});
  EXPECT_EQ(gpu_->counters().tokens_unknown_input, cpu_->counters().tokens_unknown_input);
  EXPECT_GT(sparse_rows_, 20);
  const double overlap = overlap_sum_ / (sparse_rows_ * head_->num_kv_heads());
  std::cout << "sparse rows " << sparse_rows_ << ", mean overlap with the CPU lists " << overlap
            << "\n";
  EXPECT_GT(overlap, 0.9);
}

INSTANTIATE_TEST_SUITE_P(HiddenInputAndMemory, CudaPlannerParity,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(0.0, 0.9)));

}  // namespace
}  // namespace specontext::testing_gpu
