#include "common/log.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace dsar {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kTime = 1700000000123456;  // 2023-11-14T22:13:20.123456Z

TEST(LogTest, TextKeepsTheProgramPrefixAndLevel) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, "dsard", kTime, LogLevel::kInfo,
                          "stopped", {}),
            "dsard: stopped\n");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, "dsard", kTime, LogLevel::kWarning,
                          "low disk", ForRequest("r1")),
            "dsard: WARNING: low disk\n");
}

TEST(LogTest, JsonIsOneObjectPerLineWithIds) {
  std::string line =
      FormatLogLine(LogFormat::kJson, "dsar-worker", kTime, LogLevel::kError,
                    "task failed\nbadly \"quoted\"", ForTask("r1", "r1/0/2"));
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["time"], "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(parsed["level"], "ERROR");
  EXPECT_EQ(parsed["program"], "dsar-worker");
  EXPECT_EQ(parsed["message"], "task failed\nbadly \"quoted\"");
  EXPECT_EQ(parsed["request_id"], "r1");
  EXPECT_EQ(parsed["task_id"], "r1/0/2");
}

TEST(LogTest, JsonLeavesOutIdsItDoesNotHaveAndSurvivesBadUtf8) {
  std::string line = FormatLogLine(LogFormat::kJson, "dsard", kTime,
                                   LogLevel::kInfo, "bad \xff byte", {});
  nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_FALSE(parsed.contains("request_id"));
  EXPECT_FALSE(parsed.contains("task_id"));
  EXPECT_THAT(parsed["message"].get<std::string>(), HasSubstr("bad "));
}

TEST(LogTest, ParseLogFormat) {
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml").ok());
}

}  // namespace
}  // namespace dsar
