#include "model/task_operation.h"

#include "gtest/gtest.h"

namespace dsar {
namespace {

TEST(TaskOperation, WireNamesAreTheOnesWorkersHaveAlwaysReceived) {
  // v1::Task.operation carries these strings; changing one breaks every
  // deployed worker, so they are spelled out here rather than derived.
  EXPECT_EQ(TaskOperationName(TaskOperation::kExport), "export");
  EXPECT_EQ(TaskOperationName(TaskOperation::kDiscover), "discover");
  EXPECT_EQ(TaskOperationName(TaskOperation::kErase), "erase");
  EXPECT_EQ(TaskOperationName(TaskOperation::kRectify), "rectify");
  EXPECT_EQ(TaskOperationName(TaskOperation::kRestrict), "restrict");
  EXPECT_EQ(TaskOperationName(TaskOperation::kObject), "object");
}

TEST(TaskOperation, NamesRoundTrip) {
  for (TaskOperation operation : kAllTaskOperations) {
    std::optional<TaskOperation> parsed =
        ParseTaskOperation(TaskOperationName(operation));
    ASSERT_TRUE(parsed.has_value()) << TaskOperationName(operation);
    EXPECT_EQ(*parsed, operation);
  }
}

TEST(TaskOperation, UnknownNamesDoNotParse) {
  for (const char* name : {"", "Export", "EXPORT", " erase", "erase ", "delete",
                           "dsar:worker.erase"}) {
    EXPECT_FALSE(ParseTaskOperation(name).has_value()) << '"' << name << '"';
  }
}

TEST(TaskOperation, KnownNamesListEveryOperation) {
  EXPECT_EQ(KnownTaskOperationNames(),
            "export, discover, erase, rectify, restrict, object, scan");
}

TEST(TaskOperation, WorkerResourcesMapToOperations) {
  EXPECT_EQ(WorkerResource(TaskOperation::kExport), "dsar:worker.export");
  for (TaskOperation operation : kAllTaskOperations) {
    EXPECT_EQ(TaskOperationOfResource(WorkerResource(operation)), operation);
  }
  EXPECT_EQ(TaskOperationOfResource("dsar:worker.rectify"),
            TaskOperation::kRectify);
  for (const char* resource :
       {"dsar:bundle", "dsar:worker.", "dsar:worker.unknown", "export",
        "dsar:worker.Export", "arn:aws:states:::lambda:invoke"}) {
    EXPECT_FALSE(TaskOperationOfResource(resource).has_value()) << resource;
  }
}

}  // namespace
}  // namespace dsar
