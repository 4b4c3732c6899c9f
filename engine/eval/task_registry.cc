#include "engine/eval/task_registry.h"

#include <array>
#include <functional>

#include "engine/eval/task_families.h"

namespace specontext::eval {

namespace {

using Family = std::function<TaskBuilder(EvalRng&)>;

struct Entry {
  TaskInfo info;
  Family family;
};

Family Niah(NiahKind kind) {
  return [kind](EvalRng& rng) { return NiahTask(kind, rng); };
}

const std::vector<Entry>& Registry() {
  static const std::vector<Entry> registry = {
      {{"niah_single", "RULER: one 7-digit value hidden under a key"}, Niah(NiahKind::kSingle)},
      {{"niah_multikey", "RULER: four keys hidden, one asked"}, Niah(NiahKind::kMultiKey)},
      {{"niah_multivalue", "RULER: four values of one key, all asked"},
       Niah(NiahKind::kMultiValue)},
      {{"niah_multiquery", "RULER: four keys hidden, all asked"}, Niah(NiahKind::kMultiQuery)},
      {{"niah_uuid", "RULER: one UUID value hidden under a key"}, Niah(NiahKind::kUuid)},
      {{"variable_tracking", "RULER: the five names of one assignment chain"},
       VariableTrackingTask},
      {{"common_words", "RULER CWE: the ten most common words of a numbered list"},
       CommonWordsTask},
      {{"frequent_words", "RULER FWE: the three most frequent words of a coded text"},
       FrequentWordsTask},
      {{"passkey", "InfiniteBench: a 5-digit pass key in filler"}, PasskeyTask},
      {{"number_string", "InfiniteBench: a 10-digit number in filler"}, NumberStringTask},
      {{"kv_retrieval", "InfiniteBench: one value among UUID pairs of a JSON object"},
       KvRetrievalTask},
  };
  return registry;
}

// FNV-1a, so a task's samples depend on its name and not on its position in the registry.
uint64_t HashName(std::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}

}  // namespace

std::span<const TaskInfo> AllTasks() {
  static const std::vector<TaskInfo> infos = [] {
    std::vector<TaskInfo> out;
    for (const Entry& entry : Registry()) out.push_back(entry.info);
    return out;
  }();
  return infos;
}

Result<EvalTask> GenerateTask(const PromptFormat& format, std::string_view task, int length,
                              int index, uint64_t seed) {
  const Entry* entry = nullptr;
  for (const Entry& candidate : Registry()) {
    if (candidate.info.name == task) entry = &candidate;
  }
  if (entry == nullptr) return InvalidArgument("unknown eval task '" + std::string(task) + "'");
  EvalTask out;
  out.task = std::string(task);
  out.length = length;
  out.index = index;
  out.seed = Mix64(Mix64(seed ^ HashName(task)) + static_cast<uint64_t>(length) * 0x10001ull +
                   static_cast<uint64_t>(index));
  EvalRng rng(out.seed);
  const TaskBuilder build = entry->family(rng);
  SPC_ASSIGN_OR_RETURN(TaskText probe, build(0));
  auto sized = SizeToTokens(format, length - probe.max_tokens, build);
  if (!sized.ok()) {
    return sized.status().WithContext("task " + out.task + " at length " + std::to_string(length));
  }
  out.text = std::move(sized->text);
  out.prompt_text = std::move(sized->prompt.text);
  out.prompt_tokens = std::move(sized->prompt.tokens);
  return out;
}

Result<std::vector<EvalTask>> GenerateTasks(const PromptFormat& format,
                                            std::span<const std::string> tasks,
                                            std::span<const int> lengths, int samples,
                                            uint64_t seed) {
  std::vector<EvalTask> out;
  for (const std::string& task : tasks) {
    for (int length : lengths) {
      for (int index = 0; index < samples; ++index) {
        SPC_ASSIGN_OR_RETURN(EvalTask generated, GenerateTask(format, task, length, index, seed));
        out.push_back(std::move(generated));
      }
    }
  }
  return out;
}

}  // namespace specontext::eval
