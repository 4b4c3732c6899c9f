#include "engine/cuda/step_inputs.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "engine/cuda/cuda_check.h"

namespace specontext::cuda {
namespace {

// Byte offsets of the sections, the same in the pinned and the device copy.
struct Sections {
  size_t tokens, positions, token_seq, logit_rows, seq_lens, q_start, q_len, kv_len, inv_freq,
      tables;
};

Sections SectionsFor(int max_tokens, int max_sequences, int half_dim) {
  const size_t rows = sizeof(int32_t) * max_tokens, seqs = sizeof(int32_t) * max_sequences;
  Sections s;
  s.tokens = 0;
  s.positions = s.tokens + rows;
  s.token_seq = s.positions + rows;
  s.logit_rows = s.token_seq + rows;
  s.seq_lens = s.logit_rows + rows;
  s.q_start = s.seq_lens + seqs;
  s.q_len = s.q_start + seqs;
  s.kv_len = s.q_len + seqs;
  s.inv_freq = s.kv_len + seqs;
  s.tables = (s.inv_freq + sizeof(float) * max_sequences * half_dim + 255) / 256 * 256;
  return s;
}

template <typename T>
T* At(std::byte* base, size_t offset) {
  return reinterpret_cast<T*>(base + offset);
}

}  // namespace

Result<StepInputs> StepInputs::Create(const ModelConfig& config, int max_tokens,
                                      int max_sequences) {
  if (max_tokens <= 0 || max_sequences <= 0) {
    return InvalidArgument("CUDA backend: max_tokens and max_sequences must be positive");
  }
  StepInputs inputs;
  inputs.num_layers_ = config.num_layers;
  inputs.half_dim_ = config.head_dim / 2;
  inputs.max_tokens_ = max_tokens;
  inputs.max_sequences_ = max_sequences;
  inputs.table_offset_ = SectionsFor(max_tokens, max_sequences, inputs.half_dim_).tables;
  // Room for a few thousand positions per sequence at first; long contexts grow it once.
  SPC_RETURN_IF_ERROR(inputs.Reserve(static_cast<size_t>(config.num_layers) * 64 * 256));
  return Result<StepInputs>(std::move(inputs));
}

Status StepInputs::Reserve(size_t table_entries) {
  if (table_entries <= table_capacity_ && host_.data() != nullptr) return Status::Ok();
  if (host_.data() == nullptr) {
    SPC_ASSIGN_OR_RETURN(host_, PinnedBuffer::Allocate(table_offset_));
  }
  const size_t bytes = table_offset_ + table_entries * sizeof(void*);
  SPC_ASSIGN_OR_RETURN(DeviceBuffer grown, DeviceBuffer::Allocate(bytes));
  device_buffer_ = std::move(grown);
  table_capacity_ = table_entries;
  ++generation_;
  auto* base = device_buffer_.as<std::byte>();
  const Sections s = SectionsFor(max_tokens_, max_sequences_, half_dim_);
  device_ = {.tokens = At<int32_t>(base, s.tokens),
             .positions = At<int32_t>(base, s.positions),
             .token_seq = At<int32_t>(base, s.token_seq),
             .logit_rows = At<int32_t>(base, s.logit_rows),
             .seq_lens = At<int32_t>(base, s.seq_lens),
             .q_start = At<int32_t>(base, s.q_start),
             .q_len = At<int32_t>(base, s.q_len),
             .kv_len = At<int32_t>(base, s.kv_len),
             .inv_freq = At<float>(base, s.inv_freq),
             .block_tables = At<void*>(base, s.tables)};
  return Status::Ok();
}

Result<StepShape> StepInputs::Pack(const BatchStep& batch, const KvLayout& layout,
                                   const cpu::Rope& rope, bool per_sequence_rope, int graph_batch,
                                   int graph_context, int slot_blocks) {
  const auto& seqs = batch.sequences;
  StepShape shape;
  std::vector<int> order;  // packed position -> caller's sequence
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t s = 0; s < seqs.size(); ++s) {
      if ((seqs[s].tokens.size() == 1) == (pass == 0)) order.push_back(static_cast<int>(s));
    }
  }
  int real_decode = 0, stride = 0;
  for (const SequenceStep& seq : seqs) {
    const int n = static_cast<int>(seq.tokens.size());
    shape.rows += n;
    if (n == 1) {
      ++real_decode;
      shape.max_context = std::max(shape.max_context, seq.start_position + 1);
    } else {
      ++shape.prefill;
      shape.max_q_len = std::max(shape.max_q_len, n);
    }
    shape.returned_rows += seq.all_logits ? n : 1;
    stride = std::max(stride, layout.BlocksFor(static_cast<long>(seq.start_position) + n));
  }
  shape.decode = real_decode;
  shape.logit_rows = shape.returned_rows;
  if (graph_batch > 0) {
    shape.decode = shape.rows = shape.logit_rows = graph_batch;
    shape.max_context = graph_context;
    stride = layout.BlocksFor(graph_context);
  }
  if (slot_blocks > 0) {
    shape.slot_block = stride;
    stride += slot_blocks;
  }
  shape.stride = stride;
  const int num_seqs = shape.decode + shape.prefill;
  if (shape.rows > max_tokens_ || num_seqs > max_sequences_) {
    return InvalidArgument("CUDA backend: step of " + std::to_string(shape.rows) + " tokens and " +
                           std::to_string(num_seqs) + " sequences exceeds the limits (" +
                           std::to_string(max_tokens_) + " tokens, " +
                           std::to_string(max_sequences_) + " sequences)");
  }
  shape.per_sequence_rope = per_sequence_rope;
  SPC_RETURN_IF_ERROR(Reserve(static_cast<size_t>(num_layers_) * num_seqs * stride));

  const Sections sec = SectionsFor(max_tokens_, max_sequences_, half_dim_);
  std::byte* base = host_.as<std::byte>();
  int32_t* tokens = At<int32_t>(base, sec.tokens);
  int32_t* positions = At<int32_t>(base, sec.positions);
  int32_t* token_seq = At<int32_t>(base, sec.token_seq);
  int32_t* logit_rows = At<int32_t>(base, sec.logit_rows);
  int32_t* seq_lens = At<int32_t>(base, sec.seq_lens);
  int32_t* q_start = At<int32_t>(base, sec.q_start);
  int32_t* q_len = At<int32_t>(base, sec.q_len);
  int32_t* kv_len = At<int32_t>(base, sec.kv_len);
  float* inv_freq = At<float>(base, sec.inv_freq);

  std::vector<int>& first_row = shape.first_row;
  first_row.assign(seqs.size(), 0);
  int row = 0;
  // Graph steps are pure decode, so padding never separates decode from prefill rows and a
  // sequence's packed index is its place in `order`.
  for (int packed = 0; packed < static_cast<int>(order.size()); ++packed) {
    const SequenceStep& seq = seqs[order[packed]];
    const int n = static_cast<int>(seq.tokens.size());
    if (n == 1) {
      seq_lens[packed] = seq.start_position + 1;
    } else {
      const int k = packed - shape.decode;
      q_start[k] = row - shape.decode;
      q_len[k] = n;
      kv_len[k] = seq.start_position + n;
    }
    first_row[order[packed]] = row;
    if (per_sequence_rope) shape.seq_rows.push_back(row);
    for (int i = 0; i < n; ++i, ++row) {
      tokens[row] = seq.tokens[i];
      positions[row] = seq.start_position + i;
      token_seq[row] = packed;
    }
    if (shape.per_sequence_rope) {
      const std::vector<float> freq = rope.InvFreq(static_cast<int64_t>(seq.start_position) + n);
      std::copy(freq.begin(), freq.end(), inv_freq + static_cast<size_t>(packed) * half_dim_);
    }
  }
  if (per_sequence_rope) shape.seq_rows.push_back(row);
  for (int pad = real_decode; pad < shape.decode; ++pad) {
    tokens[pad] = 0;
    positions[pad] = -1;
    token_seq[pad] = pad;
    seq_lens[pad] = 0;
  }
  int out = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int n = static_cast<int>(seqs[s].tokens.size());
    for (int i = seqs[s].all_logits ? 0 : n - 1; i < n; ++i) logit_rows[out++] = first_row[s] + i;
  }
  for (int pad = out; pad < shape.logit_rows; ++pad) logit_rows[pad] = pad;
  shape.order = std::move(order);
  return shape;
}

Status StepInputs::Upload(cudaStream_t stream) {
  SPC_CUDA(cudaMemcpyAsync(device_buffer_.data(), host_.data(), table_offset_,
                           cudaMemcpyHostToDevice, stream));
  return Status::Ok();
}

}  // namespace specontext::cuda
