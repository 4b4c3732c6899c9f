#include "scheduler/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace specontext {

namespace {

// Lower priority value runs first; among equals, the earlier arrival.
bool RunsBefore(const Sequence& a, const Sequence& b) {
  if (a.request.priority != b.request.priority) return a.request.priority < b.request.priority;
  return a.arrival < b.arrival;
}

}  // namespace

Status Scheduler::Add(std::unique_ptr<Sequence> seq) {
  if (static_cast<int>(waiting_.size()) >= options_.max_waiting) {
    return ResourceExhausted("the waiting queue is full (" + std::to_string(options_.max_waiting) +
                             " requests)");
  }
  InsertWaiting(std::move(seq), /*front=*/false);
  return Status::Ok();
}

void Scheduler::InsertWaiting(std::unique_ptr<Sequence> seq, bool front) {
  // A preempted sequence goes ahead of every waiting one of its priority; a new one behind.
  auto pos = std::find_if(waiting_.begin(), waiting_.end(), [&](const auto& other) {
    return front ? other->request.priority >= seq->request.priority
                 : other->request.priority > seq->request.priority;
  });
  waiting_.insert(pos, std::move(seq));
}

bool Scheduler::Preempt(const Sequence* keep, const std::vector<ScheduledWork>& scheduled) {
  auto is_scheduled = [&](const Sequence* seq) {
    return std::any_of(scheduled.begin(), scheduled.end(),
                       [&](const ScheduledWork& w) { return w.seq == seq; });
  };
  Sequence* victim = nullptr;
  for (bool allow_unprogressed : {false, true}) {
    for (const auto& seq : running_) {
      if (seq.get() == keep || is_scheduled(seq.get())) continue;
      if (!allow_unprogressed && !seq->progressed_since_resume) continue;
      if (victim == nullptr || RunsBefore(*victim, *seq)) victim = seq.get();
    }
    if (victim != nullptr) break;
  }
  if (victim == nullptr) return false;
  MoveToWaiting(victim);
  return true;
}

void Scheduler::MoveToWaiting(Sequence* seq) {
  spdlog::info("request {} preempted (time {}): KV released, {} tokens to recompute",
               seq->request.id, seq->preemptions + 1, seq->tokens.size());
  preempted_.push_back(seq);
  auto owned = Remove(seq);
  owned->num_cached = 0;
  owned->preemptions++;
  owned->progressed_since_resume = false;
  preemptions_++;
  InsertWaiting(std::move(owned), /*front=*/true);
}

std::unique_ptr<Sequence> Scheduler::Remove(Sequence* seq) {
  auto it = std::find_if(running_.begin(), running_.end(),
                         [&](const auto& owned) { return owned.get() == seq; });
  if (it != running_.end()) {
    kv_->Release(seq->seq_id);
    auto owned = std::move(*it);
    running_.erase(it);
    return owned;
  }
  auto wit = std::find_if(waiting_.begin(), waiting_.end(),
                          [&](const auto& owned) { return owned.get() == seq; });
  if (wit == waiting_.end()) return nullptr;
  auto owned = std::move(*wit);
  waiting_.erase(wit);
  return owned;
}

bool Scheduler::Contains(const Sequence* seq) const {
  return std::any_of(running_.begin(), running_.end(),
                     [&](const auto& owned) { return owned.get() == seq; });
}

std::vector<ScheduledWork> Scheduler::Schedule() {
  std::vector<ScheduledWork> work;
  int budget = options_.max_step_tokens;
  std::sort(running_.begin(), running_.end(),
            [](const auto& a, const auto& b) { return RunsBefore(*a, *b); });

  // 1. Decodes: every running sequence whose prompt is done gets its one token, preempting
  // the least important others (never one already in this step) when KV is short.
  std::vector<Sequence*> decoding;
  for (const auto& seq : running_) {
    if (seq->pending() == 1) decoding.push_back(seq.get());
  }
  for (Sequence* seq : decoding) {
    if (!Contains(seq)) continue;  // preempted for a more important sequence
    const int total = static_cast<int>(seq->tokens.size());
    bool reserved = kv_->Reserve(seq->seq_id, total).ok();
    while (!reserved && Preempt(seq, work)) reserved = kv_->Reserve(seq->seq_id, total).ok();
    if (reserved) {
      work.push_back({seq, 1, true});
      budget--;
    } else if (running_.size() == 1) {
      rejected_.push_back(Remove(seq));  // alone and still too large: it fails, nothing else
    } else {
      MoveToWaiting(seq);  // more important sequences hold the KV; retry later
    }
  }

  // 2. Prefill chunks of running sequences, then newly admitted ones, within the budget.
  auto schedule_prefill = [&](Sequence* seq) {
    const int chunk = std::min(seq->pending(), budget);
    if (chunk <= 0) return false;
    const int total = seq->num_cached + chunk;
    if (!kv_->Reserve(seq->seq_id, total).ok()) return false;
    work.push_back({seq, chunk, total == static_cast<int>(seq->tokens.size())});
    budget -= chunk;
    return true;
  };
  for (const auto& seq : running_) {
    if (seq->pending() > 1 && budget > 0) schedule_prefill(seq.get());
  }
  while (!waiting_.empty() && budget > 0 &&
         static_cast<int>(running_.size()) < options_.max_running) {
    Sequence* seq = waiting_.front().get();
    // Admission adopts any cached prefix; a resumed sequence may find its own blocks there.
    Result<int> cached =
        kv_->Admit(seq->seq_id, seq->tokens, seq->prompt_len + seq->request.sampling.max_tokens,
                   seq->sparse_budget, seq->request.id);
    if (!cached.ok() && cached.status().code() == StatusCode::kOutOfRange) {
      rejected_.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
      continue;
    }
    if (!cached.ok()) break;
    seq->num_cached = *cached;
    if (seq->preemptions == 0) seq->cached_tokens = *cached;
    if (!schedule_prefill(seq)) {
      kv_->Release(seq->seq_id);
      seq->num_cached = 0;
      // Nothing else holds KV, so waiting cannot help: the request fails alone.
      if (running_.empty()) {
        rejected_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
        continue;
      }
      break;
    }
    if (seq->first_scheduled == SteadyClock::time_point{})
      seq->first_scheduled = SteadyClock::now();
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  return work;
}

}  // namespace specontext
