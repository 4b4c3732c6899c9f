#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "engine/eval/eval_report.h"
#include "engine/eval/scoring.h"

namespace specontext::eval {
namespace {

TEST(EvalScoringTest, FirstWordSkipsPunctuationAndStopsAtIt) {
  EXPECT_EQ(FirstWord(" 71432. Remember it."), "71432");
  EXPECT_EQ(FirstWord(": \"3f2a-77\", done"), "3f2a-77");
  EXPECT_EQ(FirstWord("  \n"), "");
}

TEST(EvalScoringTest, FirstWordRuleIsExactMatch) {
  EXPECT_EQ(Score(ScoreRule::kFirstWord, {"71432"}, " 71432."), 1.0);
  EXPECT_EQ(Score(ScoreRule::kFirstWord, {"71432"}, " 714321."), 0.0);
  EXPECT_EQ(Score(ScoreRule::kFirstWord, {"71432"}, " 7143"), 0.0);
  // Only the first word counts: a model listing numbers does not get credit.
  EXPECT_EQ(Score(ScoreRule::kFirstWord, {"71432"}, " 12345 or 71432"), 0.0);
  EXPECT_EQ(Score(ScoreRule::kFirstWord, {"ABC-de"}, " abc-DE"), 1.0);
  EXPECT_EQ(Score(ScoreRule::kFirstWord, {}, "anything"), 0.0);
}

TEST(EvalScoringTest, AllOfRuleCountsWholeWordsCaseInsensitively) {
  const std::vector<std::string> expected = {"1234567", "7654321", "dobaki", "QWERT"};
  EXPECT_EQ(Score(ScoreRule::kAllOf, expected, "1234567, 7654321, Dobaki and qwert."), 1.0);
  EXPECT_EQ(Score(ScoreRule::kAllOf, expected, "1234567 and 7654321"), 0.5);
  // Part of a longer word is not a match.
  EXPECT_EQ(Score(ScoreRule::kAllOf, expected, "12345678 dobakis xQWERT"), 0.0);
  EXPECT_EQ(Score(ScoreRule::kAllOf, expected, ""), 0.0);
}

TEST(EvalScoringTest, ContainsWordRespectsBoundaries) {
  EXPECT_TRUE(ContainsWord("is 12345.", "12345"));
  EXPECT_TRUE(ContainsWord("12345", "12345"));
  EXPECT_FALSE(ContainsWord("123456", "12345"));
  EXPECT_FALSE(ContainsWord("a-12345", "12345"));
  EXPECT_FALSE(ContainsWord("1234", "12345"));
  EXPECT_FALSE(ContainsWord("anything", ""));
}

TEST(EvalScoringTest, TaskJsonLineCarriesWhatAnOutsideRunnerNeeds) {
  EvalTask task;
  task.task = "niah_uuid";
  task.length = 4096;
  task.index = 3;
  task.seed = 99;
  task.text = {"user text", "The UUID is", {"a-b"}, ScoreRule::kAllOf, 48, false};
  task.prompt_text = "<prompt>";
  task.prompt_tokens = {1, 2, 3};
  const boost::json::object line = boost::json::parse(TaskJsonLine(task)).as_object();
  EXPECT_EQ(line.at("task").as_string(), "niah_uuid");
  EXPECT_EQ(line.at("prompt").as_string(), "<prompt>");
  EXPECT_EQ(line.at("prompt_tokens").to_number<int>(), 3);
  EXPECT_EQ(line.at("rule").as_string(), "all_of");
  EXPECT_EQ(line.at("max_tokens").to_number<int>(), 48);
  EXPECT_FALSE(line.at("single_line").as_bool());
  EXPECT_EQ(line.at("expected").as_array().at(0).as_string(), "a-b");
}

TEST(EvalScoringTest, AggregatesCellsAndFormatsTheTable) {
  std::vector<EvalTask> tasks(4);
  std::vector<TaskOutcome> outcomes(4);
  const std::pair<const char*, int> keys[] = {
      {"passkey", 1024}, {"passkey", 1024}, {"passkey", 2048}, {"niah_single", 1024}};
  const double scores[] = {1.0, 0.0, 1.0, 0.5};
  for (int i = 0; i < 4; ++i) {
    tasks[i].task = keys[i].first;
    tasks[i].length = keys[i].second;
    outcomes[i].score = scores[i];
  }
  const std::vector<CellResult> cells = Aggregate(tasks, outcomes);
  ASSERT_EQ(cells.size(), 3u);
  EXPECT_EQ(cells[0].task, "passkey");
  EXPECT_EQ(cells[0].samples, 2);
  EXPECT_DOUBLE_EQ(cells[0].accuracy, 50.0);
  EXPECT_DOUBLE_EQ(cells[1].accuracy, 100.0);
  EXPECT_DOUBLE_EQ(cells[2].accuracy, 50.0);
  const std::string table = FormatTable(cells);
  EXPECT_NE(table.find("task           1024    2048"), std::string::npos) << table;
  EXPECT_NE(table.find("passkey        50.0   100.0"), std::string::npos) << table;
  EXPECT_NE(table.find("niah_single    50.0       -"), std::string::npos) << table;
  EXPECT_NE(table.find("mean           50.0   100.0"), std::string::npos) << table;
}

}  // namespace
}  // namespace specontext::eval
