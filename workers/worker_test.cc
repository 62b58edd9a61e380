#include "workers/worker.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/connector_errors.h"

namespace dsar {
namespace {

using ::testing::HasSubstr;

v1::Task TaskFor(const std::string& operation) {
  v1::Task task;
  task.set_task_id("dsr_1/0/0");
  task.set_store("accounts");
  task.set_operation(operation);
  return task;
}

TEST(TaskOperationToRun, ParsesEveryWireName) {
  for (TaskOperation operation : kAllTaskOperations) {
    absl::StatusOr<TaskOperation> parsed =
        TaskOperationToRun(TaskFor(std::string(TaskOperationName(operation))));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, operation);
  }
}

TEST(TaskOperationToRun, UnknownOperationIsAPermanentErrorNamingIt) {
  for (const char* name : {"shred", "", "Erase", "dsar:worker.erase"}) {
    absl::StatusOr<TaskOperation> parsed = TaskOperationToRun(TaskFor(name));
    ASSERT_FALSE(parsed.ok()) << '"' << name << '"';
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    std::string error = ConnectorErrorName(parsed.status());
    EXPECT_EQ(error, kErrorInvalidValue);
    EXPECT_FALSE(IsTransientErrorName(error));
    EXPECT_THAT(std::string(parsed.status().message()),
                HasSubstr(absl::StrCat("\"", name, "\" is unknown")));
    EXPECT_THAT(std::string(parsed.status().message()),
                HasSubstr("export, discover, erase"));
  }
}

}  // namespace
}  // namespace dsar
