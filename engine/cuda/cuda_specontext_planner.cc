#include "engine/cuda/cuda_specontext_planner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

#include "engine/cuda/bias_kernels.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/elementwise_kernels.h"
#include "engine/cuda/rope_kv_kernels.h"
#include "engine/cuda/selection_kernels.h"
#include "engine/specontext/plan_policy.h"

namespace specontext::cuda {
namespace {

constexpr DType kAct = DType::kBF16;
constexpr int kBlockTokens = 16;
constexpr int64_t kTailChunkBlocks = 1024;

Result<DeviceBuffer> UploadBf16(std::span<const float> values) {
  std::vector<uint16_t> bits(values.size());
  std::transform(values.begin(), values.end(), bits.begin(), FloatToBf16);
  SPC_ASSIGN_OR_RETURN(DeviceBuffer buffer, DeviceBuffer::Allocate(bits.size() * 2));
  SPC_CUDA(cudaMemcpy(buffer.data(), bits.data(), bits.size() * 2, cudaMemcpyHostToDevice));
  return buffer;
}

Result<DeviceBuffer> UploadTableBf16(const TensorView& table) {
  std::vector<float> values(static_cast<size_t>(table.numel()));
  for (int64_t i = 0; i < table.numel(); ++i) values[i] = table.At(i);
  return UploadBf16(values);
}

size_t Align(size_t bytes) { return (bytes + 255) / 256 * 256; }

// Byte offsets of one step's staging area; the inputs part is uploaded, the outputs part
// downloaded.
struct StagingLayout {
  size_t tokens, positions, token_seq, lengths, memory, remembered, tables, fused, inputs_end;
  size_t counts, mass, indices, end;
};

// fused_width is 0 for a pass without hidden inputs.
StagingLayout LayoutFor(int tokens, int seqs, int max_blocks, int selecting, int kv_heads,
                        int64_t max_budget, int fused_width) {
  StagingLayout l;
  l.tokens = 0;
  l.positions = l.tokens + Align(sizeof(int32_t) * tokens);
  l.token_seq = l.positions + Align(sizeof(int32_t) * tokens);
  l.lengths = l.token_seq + Align(sizeof(int32_t) * tokens);
  l.memory = l.lengths + Align(sizeof(int32_t) * std::max(selecting, 1));
  l.remembered = l.memory + Align(sizeof(float*) * std::max(selecting, 1));
  l.tables = l.remembered + Align(sizeof(int32_t) * std::max(selecting, 1));
  l.fused = l.tables + Align(sizeof(void*) * seqs * max_blocks);
  l.inputs_end = l.fused + Align(size_t{2} * tokens * fused_width);
  const size_t slots = static_cast<size_t>(selecting) * kv_heads;
  l.counts = l.inputs_end;
  l.mass = l.counts + Align(sizeof(int32_t) * slots);
  l.indices = l.mass + Align(sizeof(float) * slots);
  l.end = l.indices + Align(sizeof(int32_t) * slots * max_budget);
  return l;
}

}  // namespace

CudaSpecontextPlanner::~CudaSpecontextPlanner() {
  if (staging_ != nullptr) cudaFreeHost(staging_);
  for (std::byte* chunk : tail_chunks_) {
    if (chunk != nullptr) cudaFreeHost(chunk);
  }
}

Result<std::unique_ptr<CudaSpecontextPlanner>> CudaSpecontextPlanner::Create(
    const RetrievalHead& head, const CudaModelRunner& runner,
    const SpecontextPlannerOptions& options, int64_t cache_positions) {
  SPC_RETURN_IF_ERROR(ValidatePlannerOptions(options));
  SPC_ASSIGN_OR_RETURN(HeadKPool cache,
                       HeadKPool::Create(head.num_kv_heads(), head.head_dim(), kBlockTokens, kAct,
                                         cache_positions, runner.stream()));
  std::unique_ptr<CudaSpecontextPlanner> planner(
      new CudaSpecontextPlanner(options, std::move(cache)));
  SPC_RETURN_IF_ERROR(planner->Init(head, runner).WithContext("CUDA specontext planner"));
  return planner;
}

Status CudaSpecontextPlanner::Init(const RetrievalHead& head, const CudaModelRunner& runner) {
  runner_ = &runner;
  const ModelConfig& target = runner.config();
  if (head.num_heads() != target.num_heads || head.num_kv_heads() != target.num_kv_heads ||
      head.head_dim() != target.head_dim) {
    return InvalidArgument("the retrieval head's attention shape differs from the target's");
  }
  if (head.config().rope_scaling.type == RopeScaling::Type::kDynamic) {
    return Unimplemented("a retrieval head with dynamic NTK RoPE");
  }
  const RetrievalHeadWeights w = head.weights();
  stream_ = runner.stream();
  SPC_ASSIGN_OR_RETURN(linear_, Linear::Create(stream_));
  q_heads_ = head.num_heads();
  kv_heads_ = head.num_kv_heads();
  head_dim_ = head.head_dim();
  hidden_ = static_cast<int>(w.input_norm.size());
  rms_eps_ = static_cast<float>(head.config().rms_norm_eps);
  if (w.own_embedding) {
    SPC_ASSIGN_OR_RETURN(weights_.embedding, UploadTableBf16(*w.embedding));
    embedding_ = weights_.embedding.data();
  } else {
    embedding_ = runner.embedding();
  }
  vocab_ = static_cast<int>(w.embedding->shape[0]);
  SPC_ASSIGN_OR_RETURN(weights_.input_norm, UploadBf16(w.input_norm));
  std::vector<float> qk(w.q_embed.begin(), w.q_embed.end());
  qk.insert(qk.end(), w.k_embed.begin(), w.k_embed.end());
  SPC_ASSIGN_OR_RETURN(weights_.qk, UploadBf16(qk));
  if (!w.q_bias.empty()) {
    std::vector<float> bias(w.q_bias.begin(), w.q_bias.end());
    bias.insert(bias.end(), w.k_bias.begin(), w.k_bias.end());
    SPC_ASSIGN_OR_RETURN(weights_.qk_bias, UploadBf16(bias));
  }
  qk_norm_ = !w.q_norm.empty();
  if (qk_norm_) {
    SPC_ASSIGN_OR_RETURN(weights_.q_norm, UploadBf16(w.q_norm));
    SPC_ASSIGN_OR_RETURN(weights_.k_norm, UploadBf16(w.k_norm));
  }
  if (!w.fc.empty()) {
    fused_width_ = head.fused_hidden_size();
    aux_layer_ids_ = head.aux_layer_ids();
    SPC_ASSIGN_OR_RETURN(weights_.fc, UploadBf16(w.fc));
    SPC_ASSIGN_OR_RETURN(weights_.hidden_norm, UploadBf16(w.hidden_norm));
    // Row r of q_proj / k_proj over [embedding ; hidden]: its embedding half, then its hidden one.
    std::vector<float> full;
    for (const auto& [embed, hidden_half] :
         {std::pair{w.q_embed, w.q_hidden}, std::pair{w.k_embed, w.k_hidden}}) {
      for (size_t r = 0; r < embed.size() / hidden_; ++r) {
        full.insert(full.end(), embed.begin() + r * hidden_, embed.begin() + (r + 1) * hidden_);
        full.insert(full.end(), hidden_half.begin() + r * hidden_,
                    hidden_half.begin() + (r + 1) * hidden_);
      }
    }
    SPC_ASSIGN_OR_RETURN(weights_.qk_full, UploadBf16(full));
  }
  const std::vector<float> inv_freq = head.rope().InvFreq(1);
  SPC_ASSIGN_OR_RETURN(weights_.inv_freq, DeviceBuffer::Allocate(inv_freq.size() * sizeof(float)));
  SPC_CUDA(cudaMemcpy(weights_.inv_freq.data(), inv_freq.data(), inv_freq.size() * sizeof(float),
                      cudaMemcpyHostToDevice));
  rope_scale_ = head.rope().attention_factor();
  return Status::Ok();
}

bool CudaSpecontextPlanner::RedoDense(double probability, double threshold) {
  return RedoDenseRow(probability, threshold, &counters_);
}

int64_t CudaSpecontextPlanner::SparseBudget(AttentionMode mode, int64_t budget) const {
  return SparseBudgetOf(mode, budget, options_);
}

void CudaSpecontextPlanner::Release(uint64_t seq_id) {
  cache_.Release(seq_id);
  fused_.erase(seq_id);
  memory_.erase(seq_id);
  prefix_.erase(seq_id);
}

Status CudaSpecontextPlanner::ObserveHidden(uint64_t seq_id, int64_t start_position,
                                            std::span<const float> states) {
  auto it = fused_.find(seq_id);
  if (it == fused_.end() || fused_width_ == 0) return Status::Ok();
  if (states.empty() || states.size() % fused_width_ != 0) {
    return InvalidArgument("specontext planner: " + std::to_string(states.size()) +
                           " hidden values for sequence " + std::to_string(seq_id) +
                           " are not whole rows of " + std::to_string(fused_width_));
  }
  std::vector<uint16_t> bf16(states.size());
  std::transform(states.begin(), states.end(), bf16.begin(), FloatToBf16);
  // From pageable memory the copy has left `bf16` when the call returns.
  return it->second.Observe(start_position, bf16.data(),
                            static_cast<int64_t>(states.size() / fused_width_),
                            cudaMemcpyHostToDevice, stream_);
}

Status CudaSpecontextPlanner::ObserveStep(const BatchStep& batch) {
  if (fused_width_ == 0) return Status::Ok();
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    auto it = fused_.find(batch.sequences[s].seq_id);
    if (it == fused_.end()) continue;
    const uint16_t* states = runner_->CapturedHidden(s);
    if (states == nullptr) {
      return Internal("specontext planner: the step kept no hidden states for sequence " +
                      std::to_string(batch.sequences[s].seq_id));
    }
    SPC_RETURN_IF_ERROR(it->second.Observe(batch.sequences[s].start_position, states,
                                           static_cast<int64_t>(batch.sequences[s].tokens.size()),
                                           cudaMemcpyDeviceToDevice, stream_));
  }
  return Status::Ok();
}

Status CudaSpecontextPlanner::EnsureCapacity(DeviceBuffer& buffer, size_t bytes) {
  if (bytes <= buffer.bytes()) return Status::Ok();
  SPC_CUDA(cudaStreamSynchronize(stream_));  // the old buffer may still be read
  buffer = DeviceBuffer();
  SPC_ASSIGN_OR_RETURN(buffer, DeviceBuffer::Allocate(bytes + bytes / 2));
  return Status::Ok();
}

void CudaSpecontextPlanner::Work::Add(int row, uint64_t seq, std::span<const int32_t> t,
                                      int64_t start, int blocks,
                                      const DeviceFusedHistory* history) {
  hidden.push_back(history);
  rows.push_back(row);
  seq_ids.push_back(seq);
  tokens.push_back(t);
  starts.push_back(start);
  total_tokens += static_cast<int>(t.size());
  max_blocks = std::max(max_blocks, blocks);
}

Status CudaSpecontextPlanner::Plan(std::span<const PlanRow> rows, BatchStep* batch) {
  if (batch == nullptr || rows.size() != batch->sequences.size()) {
    return InvalidArgument("specontext planner: one plan row per batch sequence is required");
  }
  const auto start = std::chrono::steady_clock::now();
  batch->dense_layers = options_.dense_layers;
  batch->hidden_on_device = fused_width_ > 0;
  // Prepare sizes the head caches before their positions are projected: a failure later in the
  // step must not leave them claiming positions that hold no K.
  std::vector<int64_t> projected(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    projected[i] =
        std::min<int64_t>(cache_.Length(rows[i].seq_id), batch->sequences[i].start_position);
  }
  Work catch_up;
  Result<Work> work = Prepare(rows, *batch, &catch_up);
  Status status = work.status();
  if (status.ok() && catch_up.total_tokens > 0) status = Project(catch_up);
  if (status.ok() && work->selecting > 0 && options_.memory_decay > 0.0) {
    status = PrepareMemory(*work);
  }
  if (status.ok() && work->total_tokens > 0) status = Project(*work);
  if (status.ok() && work->selecting > 0) status = Select(*work, *batch);
  if (status.ok()) status = PublishBlocks(rows);
  if (!status.ok()) {
    for (size_t i = 0; i < rows.size(); ++i) {
      if (cache_.Length(rows[i].seq_id) > projected[i]) {
        // Shrinking cannot fail. The hidden states these positions read are kept (no drops
        // below), so a re-plan projects them again.
        (void)cache_.Resize(rows[i].seq_id, projected[i]);
      }
    }
  }
  // The passes have queued their reads of the states: what they consumed can go. After a
  // failure the states stay, for the engine's re-plan of each row alone.
  if (!status.ok()) drops_.clear();
  for (const auto& [seq, first] : drops_) {
    if (auto it = fused_.find(seq); it != fused_.end()) {
      if (Status dropped = it->second.DropBefore(first, stream_); status.ok()) status = dropped;
    }
  }
  drops_.clear();
  counters_.retrieval_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return status;
}

Result<CudaSpecontextPlanner::Work> CudaSpecontextPlanner::Prepare(std::span<const PlanRow> rows,
                                                                   BatchStep& batch,
                                                                   Work* catch_up) {
  DecodeRows decode;
  std::vector<std::pair<size_t, RowPolicy>> adopting;
  for (size_t i = 0; i < rows.size(); ++i) {
    SequenceStep& step = batch.sequences[i];
    step.sparse_positions.clear();
    SPC_ASSIGN_OR_RETURN(const RowPolicy policy, ResolvePlanRow(rows[i], options_));
    if (!policy.sparse || step.tokens.empty()) continue;
    if (!fused_.contains(rows[i].seq_id) && step.start_position >= kBlockTokens) {
      adopting.emplace_back(i, policy);
      continue;
    }
    SPC_RETURN_IF_ERROR(PrepareRow(rows[i], static_cast<int>(i), policy, step, catch_up, &decode));
  }
  if (!adopting.empty()) {
    // A new sequence whose prompt prefix the prefix cache served looks for the head's blocks of
    // that prefix, which the sequence that computed it publishes when it projects them: often
    // in this very step (its prefill chunk ran last step). Those rows go first, so the new one
    // finds their K instead of projecting the prefix from unknown hidden inputs.
    if (catch_up->total_tokens > 0) {
      SPC_RETURN_IF_ERROR(Project(*catch_up));
      counters_.tokens_projected += catch_up->total_tokens;
      *catch_up = Work();
    }
    SPC_RETURN_IF_ERROR(PublishBlocks(rows));
    for (const auto& [i, policy] : adopting) {
      SPC_RETURN_IF_ERROR(
          PrepareRow(rows[i], static_cast<int>(i), policy, batch.sequences[i], catch_up, &decode));
    }
  }
  // Selecting rows grouped by budget, so each budget is one launch.
  std::stable_sort(
      decode.selecting.begin(), decode.selecting.end(),
      [](const DecodeRows::Entry& a, const DecodeRows::Entry& b) { return a.budget < b.budget; });
  Work work;
  work.selecting = static_cast<int>(decode.selecting.size());
  work.max_length = decode.max_length;
  for (const auto* part : {&decode.selecting, &decode.short_rows}) {
    for (const DecodeRows::Entry& e : *part) {
      const SequenceStep& step = batch.sequences[e.row];
      work.Add(e.row, e.seq, step.tokens, step.start_position,
               static_cast<int>(cache_.Blocks(e.seq).size()),
               KnownHistory(fused_.at(e.seq), step.start_position, 1));
      drops_.emplace_back(e.seq, step.start_position);
    }
  }
  for (const DecodeRows::Entry& e : decode.selecting) work.budgets.push_back(e.budget);
  counters_.tokens_projected += work.total_tokens + catch_up->total_tokens;
  return work;
}

Status CudaSpecontextPlanner::PrepareRow(const PlanRow& row, int index, const RowPolicy& policy,
                                         SequenceStep& step, Work* catch_up, DecodeRows* decode) {
  const uint64_t seq = row.seq_id;
  const std::string what = "specontext planner: sequence " + std::to_string(seq);
  DeviceFusedHistory& fused = fused_.try_emplace(seq, std::max(fused_width_, 1)).first->second;
  Prefix& prefix = prefix_[seq];
  if (step.start_position < cache_.Length(seq)) {
    fused.Truncate(step.start_position);
    if (auto m = memory_.find(seq); m != memory_.end()) {
      m->second.remembered = std::min<int64_t>(m->second.remembered, step.start_position);
    }
    const int64_t kept_blocks = step.start_position / kBlockTokens;
    prefix.published = std::min(prefix.published, kept_blocks);
    prefix.keys.resize(std::min<size_t>(prefix.keys.size(), kept_blocks));
    if (prefix.exact_end >= step.start_position) prefix.exact_end = INT64_MAX;
  }
  if (cache_.Length(seq) == 0) {
    SPC_RETURN_IF_ERROR(AdoptPrefix(row, step.start_position, fused, prefix));
  }
  const int64_t held = std::min<int64_t>(cache_.Length(seq), step.start_position);
  SPC_ASSIGN_OR_RETURN(const std::span<const int32_t> missing,
                       MissingContext(row, step.start_position, held, what));
  // A prefill chunk's own positions wait for their hidden inputs: the next step projects them.
  const bool decode_row = step.tokens.size() == 1 && !row.prompt_chunk;
  // K projected without its true hidden input is never published.
  if (fused_width_ > 0) {
    const int64_t unknown = fused.UnknownInputs(held, static_cast<int64_t>(missing.size()));
    const int64_t own = decode_row ? fused.UnknownInputs(step.start_position, 1) : 0;
    if (unknown > 0) prefix.exact_end = std::min(prefix.exact_end, held);
    if (own > 0) prefix.exact_end = std::min<int64_t>(prefix.exact_end, step.start_position);
    counters_.tokens_unknown_input += unknown + own;
  }
  const int64_t length = step.start_position + (decode_row ? 1 : 0);
  SPC_RETURN_IF_ERROR(cache_.Resize(seq, length).WithContext(what));
  const int blocks = static_cast<int>(cache_.Blocks(seq).size());
  if (!missing.empty()) {
    catch_up->Add(index, seq, missing, held, blocks,
                  KnownHistory(fused, held, static_cast<int64_t>(missing.size())));
  }
  if (!decode_row) {
    drops_.emplace_back(seq, step.start_position - 1);
    return Status::Ok();
  }
  const DecodeRows::Entry entry{index, seq, policy.budget};
  ++counters_.decode_steps;
  if (length <= policy.budget) {
    ++counters_.short_steps;
    decode->short_rows.push_back(entry);
    return Status::Ok();
  }
  decode->selecting.push_back(entry);
  decode->max_length = std::max(decode->max_length, static_cast<int>(length));
  return Status::Ok();
}

Status CudaSpecontextPlanner::EnsureStaging(size_t bytes) {
  if (bytes <= staging_bytes_) return Status::Ok();
  SPC_CUDA(cudaStreamSynchronize(stream_));
  if (staging_ != nullptr) cudaFreeHost(staging_);
  staging_ = nullptr;
  staging_bytes_ = 0;
  SPC_CUDA(
      cudaHostAlloc(reinterpret_cast<void**>(&staging_), bytes + bytes / 2, cudaHostAllocDefault));
  staging_bytes_ = bytes + bytes / 2;
  return Status::Ok();
}

Status CudaSpecontextPlanner::Project(const Work& work) {
  const int64_t max_budget =
      work.budgets.empty() ? 0 : *std::max_element(work.budgets.begin(), work.budgets.end());
  const int seqs = static_cast<int>(work.rows.size());
  const int fused_width = PassFusedWidth(work);
  const StagingLayout l = LayoutFor(work.total_tokens, seqs, work.max_blocks, work.selecting,
                                    kv_heads_, max_budget, fused_width);
  SPC_RETURN_IF_ERROR(EnsureStaging(l.end));
  SPC_RETURN_IF_ERROR(EnsureCapacity(inputs_, l.end));
  // A step can project twice (prefix-cache catch-up, then its own tokens) through the one pinned
  // staging buffer: the earlier upload from it must have run before the host rewrites it.
  SPC_CUDA(cudaStreamSynchronize(stream_));
  auto* tokens = reinterpret_cast<int32_t*>(staging_ + l.tokens);
  auto* positions = reinterpret_cast<int32_t*>(staging_ + l.positions);
  auto* token_seq = reinterpret_cast<int32_t*>(staging_ + l.token_seq);
  auto* lengths = reinterpret_cast<int32_t*>(staging_ + l.lengths);
  auto* tables = reinterpret_cast<void**>(staging_ + l.tables);
  int row = 0;
  for (int s = 0; s < seqs; ++s) {
    const std::span<const int32_t> seq_tokens = work.tokens[s];
    for (size_t i = 0; i < seq_tokens.size(); ++i, ++row) {
      tokens[row] = seq_tokens[i];
      positions[row] = static_cast<int32_t>(work.starts[s] + static_cast<int64_t>(i));
      token_seq[row] = s;
    }
    if (s < work.selecting) lengths[s] = static_cast<int32_t>(work.starts[s] + 1);
    if (s < static_cast<int>(work.memory.size())) {
      reinterpret_cast<float**>(staging_ + l.memory)[s] = work.memory[s];
      reinterpret_cast<int32_t*>(staging_ + l.remembered)[s] = work.remembered[s];
    }
    const std::vector<void*>& blocks = cache_.Blocks(work.seq_ids[s]);
    void** dst = tables + static_cast<size_t>(s) * work.max_blocks;
    std::fill(std::copy(blocks.begin(), blocks.end(), dst), dst + work.max_blocks, nullptr);
  }
  // The fused rows come from the histories, already on the device.
  SPC_CUDA(cudaMemcpyAsync(inputs_.data(), staging_, l.fused, cudaMemcpyHostToDevice, stream_));
  auto* base = inputs_.as<std::byte>();
  if (fused_width > 0) {
    auto* fused = reinterpret_cast<uint16_t*>(base + l.fused);
    for (int s = 0, first_row = 0; s < seqs; ++s) {
      const int64_t count = static_cast<int64_t>(work.tokens[s].size());
      uint16_t* dst = fused + static_cast<size_t>(first_row) * fused_width;
      if (work.hidden[s] != nullptr) {
        SPC_RETURN_IF_ERROR(work.hidden[s]->WriteInputs(work.starts[s], count, dst, stream_));
      } else {
        SPC_CUDA(cudaMemsetAsync(dst, 0, size_t{2} * count * fused_width, stream_));
      }
      first_row += static_cast<int>(count);
    }
  }

  const int width = (q_heads_ + kv_heads_) * head_dim_;
  const size_t t = static_cast<size_t>(work.total_tokens);
  SPC_RETURN_IF_ERROR(EnsureCapacity(gathered_, t * hidden_ * 2));
  SPC_RETURN_IF_ERROR(EnsureCapacity(normed_, t * hidden_ * 2));
  SPC_RETURN_IF_ERROR(EnsureCapacity(qk_out_, t * width * 2));
  const auto* d_tokens = reinterpret_cast<const int32_t*>(base + l.tokens);
  SPC_RETURN_IF_ERROR(EmbeddingGather(kAct, d_tokens, work.total_tokens, embedding_, vocab_,
                                      hidden_, gathered_.data(), stream_));
  SPC_RETURN_IF_ERROR(AddRmsNorm(kAct, gathered_.data(), nullptr, weights_.input_norm.data(),
                                 normed_.data(), work.total_tokens, hidden_, rms_eps_, stream_));
  if (fused_width > 0) {
    SPC_RETURN_IF_ERROR(HiddenInput(work, base + l.fused));
    SPC_RETURN_IF_ERROR(linear_->Forward(kAct, head_in_.data(), weights_.qk_full.data(),
                                         qk_out_.data(), work.total_tokens, width, 2 * hidden_));
  } else {
    SPC_RETURN_IF_ERROR(linear_->Forward(kAct, normed_.data(), weights_.qk.data(), qk_out_.data(),
                                         work.total_tokens, width, hidden_));
  }
  if (weights_.qk_bias.bytes() > 0) {
    SPC_RETURN_IF_ERROR(
        AddBias(kAct, qk_out_.data(), weights_.qk_bias.data(), work.total_tokens, width, stream_));
  }
  auto* qk = qk_out_.as<uint16_t>();
  const RopeKvArgs rope{.q = qk,
                        .k = qk + q_heads_ * head_dim_,
                        .v = nullptr,
                        .q_stride = width,
                        .k_stride = width,
                        .v_stride = width,
                        .num_tokens = work.total_tokens,
                        .num_q_heads = q_heads_,
                        .positions = reinterpret_cast<const int32_t*>(base + l.positions),
                        .token_seq = reinterpret_cast<const int32_t*>(base + l.token_seq),
                        .inv_freq = weights_.inv_freq.as<float>(),
                        .rope_scale = rope_scale_,
                        .q_norm_weight = qk_norm_ ? weights_.q_norm.data() : nullptr,
                        .k_norm_weight = qk_norm_ ? weights_.k_norm.data() : nullptr,
                        .norm_eps = rms_eps_};
  return RopeAndWriteKv(
      rope, HeadView(reinterpret_cast<void* const*>(base + l.tables), work.max_blocks), stream_);
}

int CudaSpecontextPlanner::PassFusedWidth(const Work& work) const {
  const bool any = std::any_of(work.hidden.begin(), work.hidden.end(),
                               [](const DeviceFusedHistory* h) { return h != nullptr; });
  return any ? fused_width_ : 0;
}

Status CudaSpecontextPlanner::HiddenInput(const Work& work, const std::byte* fused) {
  const size_t t = static_cast<size_t>(work.total_tokens), row_bytes = size_t{2} * hidden_;
  SPC_RETURN_IF_ERROR(EnsureCapacity(fc_out_, t * row_bytes));
  SPC_RETURN_IF_ERROR(EnsureCapacity(head_in_, 2 * t * row_bytes));
  SPC_RETURN_IF_ERROR(linear_->Forward(kAct, fused, weights_.fc.data(), fc_out_.data(),
                                       work.total_tokens, hidden_, fused_width_));
  // hidden_norm(fc(h)) into the second half of each input row, after the normalised embedding.
  SPC_RETURN_IF_ERROR(AddRmsNorm(kAct, fc_out_.data(), nullptr, weights_.hidden_norm.data(),
                                 gathered_.data(), work.total_tokens, hidden_, rms_eps_, stream_));
  SPC_CUDA(cudaMemcpy2DAsync(head_in_.data(), 2 * row_bytes, normed_.data(), row_bytes, row_bytes,
                             t, cudaMemcpyDeviceToDevice, stream_));
  SPC_CUDA(cudaMemcpy2DAsync(head_in_.as<std::byte>() + row_bytes, 2 * row_bytes, gathered_.data(),
                             row_bytes, row_bytes, t, cudaMemcpyDeviceToDevice, stream_));
  return Status::Ok();
}

PagedKv CudaSpecontextPlanner::HeadView(void* const* tables, int max_blocks) const {
  return {.block_table = tables,
          .max_blocks = max_blocks,
          .num_kv_heads = kv_heads_,
          .head_dim = head_dim_,
          .block_tokens = cache_.block_tokens(),
          .dtype = kAct};
}

Status CudaSpecontextPlanner::PrepareMemory(Work& work) {
  const size_t row_bytes = sizeof(float) * kv_heads_;
  for (int s = 0; s < work.selecting; ++s) {
    Memory& memory = memory_[work.seq_ids[s]];
    const size_t need = static_cast<size_t>(work.starts[s] + 1) * row_bytes;
    if (memory.weights.bytes() < need) {
      SPC_ASSIGN_OR_RETURN(DeviceBuffer grown, DeviceBuffer::Allocate(need + need / 2));
      if (memory.remembered > 0) {
        SPC_CUDA(cudaMemcpyAsync(grown.data(), memory.weights.data(),
                                 static_cast<size_t>(memory.remembered) * row_bytes,
                                 cudaMemcpyDeviceToDevice, stream_));
        SPC_CUDA(cudaStreamSynchronize(stream_));  // the copy reads the old buffer
      }
      memory.weights = std::move(grown);
    }
    work.memory.push_back(memory.weights.as<float>());
    work.remembered.push_back(static_cast<int32_t>(memory.remembered));
  }
  return Status::Ok();
}

Status CudaSpecontextPlanner::AdoptPrefix(const PlanRow& row, int64_t start,
                                          DeviceFusedHistory& fused, Prefix& prefix) {
  prefix = Prefix();
  if (start < kBlockTokens || static_cast<int64_t>(row.context.size()) < start) {
    return Status::Ok();  // nothing to adopt, or MissingContext reports the short context
  }
  const std::span<const int32_t> tokens = row.context.first(start);
  std::vector<uint64_t> keys = PrefixBlockKeys(tokens, kBlockTokens);
  const int64_t adopted = cache_.Adopt(row.seq_id, keys, tokens);
  if (adopted == 0) return Status::Ok();
  const int64_t blocks = adopted / kBlockTokens;
  // Steps the target ran past the adopted part (earlier prefill chunks) left their states.
  if (fused_width_ > 0 && !fused.Has(adopted - 1)) {
    SPC_ASSIGN_OR_RETURN(uint16_t * tail,
                         TailRow(cache_.BlockIndex(cache_.Blocks(row.seq_id)[blocks - 1])));
    SPC_RETURN_IF_ERROR(fused.Observe(adopted - 1, tail, 1, cudaMemcpyHostToDevice, stream_));
  }
  keys.resize(blocks);
  prefix.keys = std::move(keys);
  prefix.published = blocks;
  counters_.tokens_adopted += adopted;
  return Status::Ok();
}

Status CudaSpecontextPlanner::PublishBlocks(std::span<const PlanRow> rows) {
  for (const PlanRow& row : rows) {
    auto p = prefix_.find(row.seq_id);
    auto f = fused_.find(row.seq_id);
    if (p == prefix_.end() || f == fused_.end()) continue;
    Prefix& prefix = p->second;
    const int64_t end = std::min(
        {cache_.Length(row.seq_id), prefix.exact_end, static_cast<int64_t>(row.context.size())});
    const int64_t blocks = end / kBlockTokens;
    if (blocks <= prefix.published) continue;
    prefix.keys = PrefixBlockKeys(row.context.first(blocks * kBlockTokens), kBlockTokens,
                                  std::move(prefix.keys));
    for (; prefix.published < blocks; ++prefix.published) {
      const int64_t b = prefix.published, last = (b + 1) * kBlockTokens - 1;
      // A decode step's own state arrives after the step: its block waits for the next one.
      if (fused_width_ > 0 && !f->second.Has(last)) break;
      const int64_t index = cache_.BlockIndex(cache_.Blocks(row.seq_id)[b]);
      uint16_t* tail = nullptr;
      if (fused_width_ > 0) {
        SPC_ASSIGN_OR_RETURN(tail, TailRow(index));
      }
      if (cache_.Publish(row.seq_id, b, prefix.keys[b],
                         row.context.subspan(b * kBlockTokens, kBlockTokens)) &&
          tail != nullptr) {
        SPC_RETURN_IF_ERROR(f->second.CopyState(last, tail, cudaMemcpyDeviceToHost, stream_));
      }
    }
  }
  return Status::Ok();
}

Result<uint16_t*> CudaSpecontextPlanner::TailRow(int64_t block) {
  const size_t chunk = static_cast<size_t>(block / kTailChunkBlocks);
  const size_t row_bytes = size_t{2} * fused_width_;
  if (chunk >= tail_chunks_.size()) tail_chunks_.resize(chunk + 1, nullptr);
  if (tail_chunks_[chunk] == nullptr) {
    SPC_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&tail_chunks_[chunk]),
                           kTailChunkBlocks * row_bytes, cudaHostAllocDefault));
  }
  return reinterpret_cast<uint16_t*>(tail_chunks_[chunk] + (block % kTailChunkBlocks) * row_bytes);
}

Status CudaSpecontextPlanner::Select(const Work& work, BatchStep& batch) {
  const int64_t max_budget = *std::max_element(work.budgets.begin(), work.budgets.end());
  const int seqs = static_cast<int>(work.rows.size());
  const StagingLayout l = LayoutFor(work.total_tokens, seqs, work.max_blocks, work.selecting,
                                    kv_heads_, max_budget, PassFusedWidth(work));
  const int width = (q_heads_ + kv_heads_) * head_dim_;
  const size_t ws_bytes =
      SelectionWorkspaceBytes(work.selecting, q_heads_, kv_heads_, work.max_length);
  SPC_RETURN_IF_ERROR(EnsureCapacity(select_ws_, ws_bytes));
  auto* base = inputs_.as<std::byte>();
  auto* tables = reinterpret_cast<void* const*>(base + l.tables);
  auto* lengths = reinterpret_cast<const int32_t*>(base + l.lengths);
  const bool remember = !work.memory.empty();
  auto* memory = remember ? reinterpret_cast<float* const*>(base + l.memory) : nullptr;
  auto* remembered = remember ? reinterpret_cast<const int32_t*>(base + l.remembered) : nullptr;
  auto* counts = reinterpret_cast<int32_t*>(base + l.counts);
  auto* mass = reinterpret_cast<float*>(base + l.mass);
  auto* indices = reinterpret_cast<int32_t*>(base + l.indices);
  const auto* qk = qk_out_.as<uint16_t>();
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  for (int g0 = 0; g0 < work.selecting;) {
    int g1 = g0;
    while (g1 < work.selecting && work.budgets[g1] == work.budgets[g0]) ++g1;
    const int budget = static_cast<int>(work.budgets[g0]);
    const int sinks = static_cast<int>(std::min<int64_t>(options_.sink_tokens, budget));
    const int window = static_cast<int>(std::min<int64_t>(options_.recent_window, budget - sinks));
    const size_t slot0 = static_cast<size_t>(g0) * kv_heads_;
    const SelectionArgs args{.q = qk + static_cast<size_t>(g0) * width,
                             .q_stride = width,
                             .rows = g1 - g0,
                             .num_q_heads = q_heads_,
                             .scale = scale,
                             .lengths = lengths + g0,
                             .max_length = work.max_length,
                             .budget = budget,
                             .sinks = sinks,
                             .window = window,
                             .indices = indices + slot0 * max_budget,
                             .counts = counts + slot0,
                             .mass = mass + slot0,
                             .memory_decay = static_cast<float>(options_.memory_decay),
                             .memory = memory != nullptr ? memory + g0 : nullptr,
                             .remembered = memory != nullptr ? remembered + g0 : nullptr};
    SPC_RETURN_IF_ERROR(SelectPositions(
        args, HeadView(tables + static_cast<size_t>(g0) * work.max_blocks, work.max_blocks),
        select_ws_.data(), select_ws_.bytes(), stream_));
    g0 = g1;
  }
  SPC_CUDA(cudaMemcpyAsync(staging_ + l.counts, base + l.counts, l.end - l.counts,
                           cudaMemcpyDeviceToHost, stream_));
  SPC_CUDA(cudaStreamSynchronize(stream_));

  // The memory now holds this step's ranking for every selecting row's positions.
  for (int s = 0; remember && s < work.selecting; ++s) {
    memory_[work.seq_ids[s]].remembered = work.starts[s] + 1;
  }
  const auto* h_counts = reinterpret_cast<const int32_t*>(staging_ + l.counts);
  const auto* h_mass = reinterpret_cast<const float*>(staging_ + l.mass);
  const auto* h_indices = reinterpret_cast<const int32_t*>(staging_ + l.indices);
  for (int s = 0; s < work.selecting; ++s) {
    const size_t slot0 = static_cast<size_t>(s) * kv_heads_;
    // Groups of one budget are packed at their own stride inside the max-budget region.
    int g0 = s;
    while (g0 > 0 && work.budgets[g0 - 1] == work.budgets[s]) --g0;
    const int64_t budget = work.budgets[s];
    const int32_t* group_base = h_indices + static_cast<size_t>(g0) * kv_heads_ * max_budget;
    double mean_mass = 0;
    for (int h = 0; h < kv_heads_; ++h) mean_mass += h_mass[slot0 + h];
    mean_mass /= kv_heads_;
    counters_.selected_mass_sum += mean_mass;
    if (mean_mass < options_.fallback_mass_threshold) {
      ++counters_.fallback_steps;
      continue;
    }
    ++counters_.sparse_steps;
    SequenceStep& step = batch.sequences[work.rows[s]];
    step.sparse_positions.resize(kv_heads_);
    for (int h = 0; h < kv_heads_; ++h) {
      const int32_t* list = group_base + ((s - g0) * kv_heads_ + h) * budget;
      step.sparse_positions[h].assign(list, list + h_counts[slot0 + h]);
      counters_.positions_selected += h_counts[slot0 + h];
    }
  }
  return Status::Ok();
}

}  // namespace specontext::cuda
