#include "engine/workflow_definition.h"

#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/task_operation.h"

namespace dsar {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A small valid definition that exercises every transition kind; each
// validation case breaks one thing in it.
json ValidDefinition() {
  return json::parse(R"json({
    "StartAt": "Choose",
    "States": {
      "Choose": {
        "Type": "Choice",
        "Choices": [
          {"And": [{"Variable": "$.type", "StringEquals": "ACCESS"},
                   {"Variable": "$.verified", "BooleanEquals": true}],
           "Next": "Export"}
        ],
        "Default": "Done"
      },
      "Export": {
        "Type": "Map",
        "ItemsPath": "$.stores",
        "ItemOrder": "IdentityFlow",
        "MaxConcurrency": 4,
        "Iterator": {
          "StartAt": "Work",
          "States": {
            "Work": {
              "Type": "Task",
              "Resource": "dsar:worker.export",
              "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1,
                         "BackoffRate": 2, "MaxAttempts": 3}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}],
              "End": true
            },
            "Failed": {"Type": "Pass", "End": true}
          }
        },
        "Next": "Bundle"
      },
      "Bundle": {
        "Type": "Task",
        "Resource": "dsar:bundle",
        "Retry": [{"ErrorEquals": ["Bundle.Full"], "IntervalSeconds": 2}],
        "Next": "Pause"
      },
      "Pause": {"Type": "Wait", "Seconds": 5, "Next": "Done"},
      "Done": {"Type": "Succeed"}
    }
  })json");
}

absl::Status ParseStatus(const json& definition) {
  return WorkflowDefinition::Parse(definition.dump()).status();
}

TEST(WorkflowDefinitionTest, DefaultDefinitionParsesAndValidates) {
  auto def = WorkflowDefinition::Parse(WorkflowDefinition::DefaultJson());
  ASSERT_TRUE(def.ok()) << def.status();
  const StateMachine& root = (*def)->root();
  EXPECT_EQ(root.start_at, "VerifyIdentity");
  EXPECT_THAT((*def)->version(), StartsWith("dsar-default@"));
  EXPECT_EQ((*def)->version().size(), std::string("dsar-default@").size() + 12);
  EXPECT_EQ((*def)->json(), WorkflowDefinition::DefaultJson());

  // Receipt first: the workflow waits until the subject's identity is
  // verified.
  const State* verify = root.Find("VerifyIdentity");
  ASSERT_NE(verify, nullptr);
  EXPECT_EQ(verify->type, StateType::kWait);
  EXPECT_EQ(verify->signal, kSignalIdentityVerified);
  EXPECT_EQ(verify->next, "ChooseRight");
  EXPECT_FALSE(verify->end);

  const State* choose = root.Find("ChooseRight");
  ASSERT_NE(choose, nullptr);
  EXPECT_EQ(choose->type, StateType::kChoice);
  EXPECT_EQ(choose->default_next, "Unsupported");

  const State* exports = root.Find("ExportStores");
  ASSERT_NE(exports, nullptr);
  EXPECT_EQ(exports->type, StateType::kMap);
  EXPECT_EQ(exports->items_path, "$.stores");
  EXPECT_EQ(exports->item_order, kItemOrderIdentityFlow);
  ASSERT_NE(exports->iterator, nullptr);
  const State* task = exports->iterator->Find("Export");
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(task->resource, kResourceWorkerExport);
  ASSERT_EQ(task->retry.size(), 1u);
  EXPECT_EQ(task->retry[0].max_attempts, 4);
  EXPECT_EQ(task->retry[0].max_delay_seconds, 30);
  EXPECT_TRUE(task->retry[0].full_jitter);
  ASSERT_EQ(task->catchers.size(), 1u);
  EXPECT_EQ(task->catchers[0].next, "StoreFailed");

  EXPECT_EQ(root.Find("DiscoverIdentities")->next, "ChooseChange");
  const State* change = root.Find("ChooseChange");
  ASSERT_NE(change, nullptr);
  EXPECT_EQ(change->type, StateType::kChoice);
  EXPECT_EQ(change->default_next, "Unsupported");
  EXPECT_EQ(root.Find("EraseStores")->item_order, kItemOrderEraseAfter);
  // Each change pass runs its own worker operation and then finishes.
  for (const auto& [map_name, task_name, resource] :
       std::vector<std::tuple<std::string, std::string, std::string_view>>{
           {"EraseStores", "Erase", kResourceWorkerErase},
           {"RectifyStores", "Rectify", kResourceWorkerRectify},
           {"RestrictStores", "Restrict", kResourceWorkerRestrict},
           {"ObjectStores", "Object", kResourceWorkerObject}}) {
    SCOPED_TRACE(map_name);
    const State* map = root.Find(map_name);
    ASSERT_NE(map, nullptr);
    EXPECT_EQ(map->type, StateType::kMap);
    EXPECT_EQ(map->next, "Finalize");
    ASSERT_NE(map->iterator, nullptr);
    const State* work = map->iterator->Find(task_name);
    ASSERT_NE(work, nullptr);
    EXPECT_EQ(work->type, StateType::kTask);
    EXPECT_EQ(work->resource, resource);
    ASSERT_EQ(work->catchers.size(), 1u);
    EXPECT_EQ(work->catchers[0].next, "StoreFailed");
  }
  EXPECT_EQ(root.Find("Unsupported")->error, "Request.Unimplemented");
  EXPECT_EQ(root.Find("Finalize")->type, StateType::kSucceed);
  EXPECT_EQ(root.Find("NoSuchState"), nullptr);
}

// The resources named here are the ones the model maps to the operations
// sent to workers (model/task_operation.h); a definition that validates
// therefore only ever asks workers for an operation they know.
TEST(WorkflowDefinitionTest, WorkerResourcesAreTheModelsTaskOperations) {
  for (const auto& [resource, operation] :
       std::vector<std::pair<std::string_view, TaskOperation>>{
           {kResourceWorkerExport, TaskOperation::kExport},
           {kResourceWorkerDiscover, TaskOperation::kDiscover},
           {kResourceWorkerErase, TaskOperation::kErase},
           {kResourceWorkerRectify, TaskOperation::kRectify},
           {kResourceWorkerRestrict, TaskOperation::kRestrict},
           {kResourceWorkerObject, TaskOperation::kObject}}) {
    EXPECT_EQ(TaskOperationOfResource(resource), operation) << resource;
    EXPECT_EQ(WorkerResource(operation), resource);
  }
  EXPECT_FALSE(TaskOperationOfResource(kResourceBundle).has_value());
}

TEST(WorkflowDefinitionTest, DefaultDefinitionRoutesEachRequestType) {
  auto def = WorkflowDefinition::Parse(WorkflowDefinition::DefaultJson());
  ASSERT_TRUE(def.ok()) << def.status();
  const State& choose = *(*def)->root().Find("ChooseRight");
  EXPECT_EQ(EvaluateChoice(choose, {{"type", "ACCESS"}}), "ExportStores");
  EXPECT_EQ(EvaluateChoice(choose, {{"type", "PORTABILITY"}}), "ExportStores");
  // Every right that changes data first discovers the subject's identities.
  for (const char* type :
       {"ERASURE", "RECTIFICATION", "RESTRICTION", "OBJECTION"}) {
    EXPECT_EQ(EvaluateChoice(choose, {{"type", type}}), "DiscoverIdentities")
        << type;
  }
  EXPECT_EQ(EvaluateChoice(choose, {{"type", "REQUEST_TYPE_UNSPECIFIED"}}),
            "Unsupported");

  // Then the change of that right.
  const State& change = *(*def)->root().Find("ChooseChange");
  EXPECT_EQ(EvaluateChoice(change, {{"type", "ERASURE"}}), "EraseStores");
  EXPECT_EQ(EvaluateChoice(change, {{"type", "RECTIFICATION"}}),
            "RectifyStores");
  EXPECT_EQ(EvaluateChoice(change, {{"type", "RESTRICTION"}}),
            "RestrictStores");
  EXPECT_EQ(EvaluateChoice(change, {{"type", "OBJECTION"}}), "ObjectStores");
  EXPECT_EQ(EvaluateChoice(change, {{"type", "ACCESS"}}), "Unsupported");
}

TEST(WorkflowDefinitionTest, ParsesTheValidDefinition) {
  const std::string text = ValidDefinition().dump();
  auto def = WorkflowDefinition::Parse(text);
  ASSERT_TRUE(def.ok()) << def.status();
  const StateMachine& root = (*def)->root();
  EXPECT_EQ(root.states.size(), 5u);
  const State& bundle = *root.Find("Bundle");
  EXPECT_EQ(bundle.next, "Pause");
  EXPECT_FALSE(bundle.end);
  ASSERT_EQ(bundle.retry.size(), 1u);
  // Unset Retry fields take the ASL defaults.
  EXPECT_EQ(bundle.retry[0].interval_seconds, 2);
  EXPECT_EQ(bundle.retry[0].backoff_rate, 2);
  EXPECT_EQ(bundle.retry[0].max_attempts, 3);
  EXPECT_EQ(bundle.retry[0].max_delay_seconds, 0);
  EXPECT_FALSE(bundle.retry[0].full_jitter);
  EXPECT_EQ(root.Find("Pause")->seconds, 5);
  EXPECT_EQ(root.Find("Export")->max_concurrency, 4);
  EXPECT_TRUE(root.Find("Export")->iterator->Find("Work")->end);
}

TEST(WorkflowDefinitionTest, VersionIsNameAndTwelveHexOfTheExactText) {
  const std::string text = ValidDefinition().dump();
  auto def = WorkflowDefinition::Parse(text);
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ((*def)->version(), "dsar@" + Sha256Hex(text).substr(0, 12));

  // Whitespace changes the text, and so the version.
  auto spaced = WorkflowDefinition::Parse(ValidDefinition().dump(2));
  ASSERT_TRUE(spaced.ok()) << spaced.status();
  EXPECT_NE((*spaced)->version(), (*def)->version());

  json named = ValidDefinition();
  named["Name"] = "custom";
  named["Version"] = "1.0";
  named["Comment"] = "ignored";
  auto custom = WorkflowDefinition::Parse(named.dump());
  ASSERT_TRUE(custom.ok()) << custom.status();
  EXPECT_EQ((*custom)->version(),
            "custom@" + Sha256Hex(named.dump()).substr(0, 12));
}

TEST(WorkflowDefinitionTest, AcceptsOptionalAslFields) {
  json d = ValidDefinition();
  json& export_map = d["States"]["Export"];
  export_map["ItemProcessor"] = export_map["Iterator"];
  export_map["ItemProcessor"]["ProcessorConfig"] = {{"Mode", "INLINE"}};
  export_map.erase("Iterator");
  json& work = export_map["ItemProcessor"]["States"]["Work"];
  work["TimeoutSeconds"] = 300;
  work["HeartbeatSeconds"] = 60;
  work["Retry"][0]["MaxDelaySeconds"] = 30;
  work["Retry"][0]["JitterStrategy"] = "NONE";
  export_map["ItemProcessor"]["States"]["Failed"]["Result"] = {{"x", 1}};
  d["States"]["Pause"]["Comment"] = "wait a bit";
  d["States"]["Export"]["ItemOrder"] = "";
  d["States"]["Done"] = {{"Type", "Fail"}, {"Error", "E"}, {"Cause", "C"}};
  auto def = WorkflowDefinition::Parse(d.dump());
  ASSERT_TRUE(def.ok()) << def.status();
  const State& done = *(*def)->root().Find("Done");
  EXPECT_EQ(done.type, StateType::kFail);
  EXPECT_EQ(done.error, "E");
  EXPECT_EQ(done.cause, "C");
  EXPECT_EQ((*def)->root().Find("Pause")->comment, "wait a bit");
  EXPECT_NE((*def)->root().Find("Export")->iterator->Find("Work"), nullptr);
}

// A loop is fine as long as some path leaves it: here a Wait/Choice polling
// loop that exits when $.verified is true, and a Task that repeats itself
// until it fails into its Catch.
TEST(WorkflowDefinitionTest, AcceptsLoopsWithAWayOut) {
  json d = ValidDefinition();
  d["States"]["Pause"]["Next"] = "Poll";
  d["States"]["Poll"] = json::parse(R"json({
    "Type": "Choice",
    "Choices": [{"Variable": "$.verified", "BooleanEquals": true,
                 "Next": "Done"}],
    "Default": "Pause"
  })json");
  json& work = d["States"]["Export"]["Iterator"]["States"]["Work"];
  work.erase("End");
  work["Next"] = "Work";
  auto def = WorkflowDefinition::Parse(d.dump());
  EXPECT_TRUE(def.ok()) << def.status();
}

TEST(WorkflowDefinitionTest, MalformedJsonReportsTheBytePosition) {
  auto def = WorkflowDefinition::Parse(R"({"StartAt": "A", "States": })");
  ASSERT_EQ(def.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(def.status().message()),
              StartsWith("malformed JSON at byte 28"));
}

// Found by fuzz/workflow_definition_fuzzer (fuzz/corpus/
// workflow_definition/number_overflow): a number beyond double made
// nlohmann throw out_of_range, which only parse_error was caught for.
TEST(WorkflowDefinitionTest, NumberBeyondDoubleIsMalformedJson) {
  for (const char* text :
       {R"({"StartAt": "A", "States": {"A": {"Type": 2e308}}})",
        R"({"StartAt": "A", "States": {"A": {"Type": "Wait",
             "Seconds": -1e999, "End": true}}})"}) {
    auto def = WorkflowDefinition::Parse(text);
    ASSERT_EQ(def.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(def.status().message()),
                StartsWith("malformed JSON: "));
    EXPECT_THAT(std::string(def.status().message()),
                HasSubstr("number overflow"));
  }
}

TEST(WorkflowDefinitionTest, RejectsDuplicateKeys) {
  auto def = WorkflowDefinition::Parse(
      R"({"StartAt": "A", "States": {"A": {"Type": "Succeed"},
                                     "A": {"Type": "Pass", "End": true}}})");
  ASSERT_EQ(def.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(def.status().message()),
              HasSubstr("duplicate key \"A\""));
}

TEST(WorkflowDefinitionTest, RejectsNonObjectDocument) {
  auto def = WorkflowDefinition::Parse("[1, 2]");
  ASSERT_EQ(def.status().code(), absl::StatusCode::kInvalidArgument);
}

// One broken definition and the start of the error it must produce.
struct InvalidCase {
  std::string name;
  std::function<void(json&)> mutate;
  std::string message_prefix;
};

class InvalidDefinitionTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidDefinitionTest, ReportsStateAndField) {
  json d = ValidDefinition();
  GetParam().mutate(d);
  const absl::Status status = ParseStatus(d);
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              StartsWith(GetParam().message_prefix));
}

json& Work(json& d) {
  return d["States"]["Export"]["Iterator"]["States"]["Work"];
}
json& Rule(json& d) { return d["States"]["Choose"]["Choices"][0]; }

const InvalidCase kInvalidCases[] = {
    // Top level.
    {"MissingStartAt", [](json& d) { d.erase("StartAt"); }, "StartAt: missing"},
    {"StartAtUnknown", [](json& d) { d["StartAt"] = "Nope"; },
     "StartAt: no state named \"Nope\""},
    {"MissingStates", [](json& d) { d.erase("States"); }, "States: missing"},
    {"UnknownTopLevelField", [](json& d) { d["TimeoutSeconds"] = 60; },
     "TimeoutSeconds: unknown field"},
    {"NameNotString", [](json& d) { d["Name"] = 3; }, "Name: must be a string"},
    // States in general.
    {"UnknownType", [](json& d) { d["States"]["Done"]["Type"] = "Parallel"; },
     "States.Done.Type: unknown state type \"Parallel\""},
    {"MissingType", [](json& d) { d["States"]["Done"].erase("Type"); },
     "States.Done.Type: missing"},
    {"UnknownStateField",
     [](json& d) { d["States"]["Bundle"]["Parameters"] = json::object(); },
     "States.Bundle.Parameters: unknown field"},
    {"UnknownFieldInIterator", [](json& d) { Work(d)["ResultPath"] = "$.r"; },
     "States.Export.Iterator.States.Work.ResultPath: unknown field"},
    {"SucceedWithNext", [](json& d) { d["States"]["Done"]["Next"] = "Pause"; },
     "States.Done.Next: unknown field"},
    {"TaskNextAndEnd", [](json& d) { d["States"]["Bundle"]["End"] = true; },
     "States.Bundle.End: cannot be combined with Next"},
    {"TaskNeitherNextNorEnd",
     [](json& d) { d["States"]["Bundle"].erase("Next"); },
     "States.Bundle.Next: missing"},
    {"MapNeitherNextNorEnd",
     [](json& d) { d["States"]["Export"].erase("Next"); },
     "States.Export.Next: missing"},
    {"WaitNeitherNextNorEnd",
     [](json& d) { d["States"]["Pause"].erase("Next"); },
     "States.Pause.Next: missing"},
    {"PassNextAndEnd",
     [](json& d) {
       d["States"]["Export"]["Iterator"]["States"]["Failed"]["Next"] = "Work";
     },
     "States.Export.Iterator.States.Failed.End: cannot be combined with Next"},
    {"EndFalse",
     [](json& d) {
       d["States"]["Pause"].erase("Next");
       d["States"]["Pause"]["End"] = false;
     },
     "States.Pause.End: must be true"},
    // Transitions and reachability.
    {"NextToUnknownState",
     [](json& d) { d["States"]["Bundle"]["Next"] = "Finalise"; },
     "States.Bundle.Next: no state named \"Finalise\""},
    {"DefaultToUnknownState",
     [](json& d) { d["States"]["Choose"]["Default"] = "Nowhere"; },
     "States.Choose.Default: no state named \"Nowhere\""},
    {"ChoiceNextToUnknownState", [](json& d) { Rule(d)["Next"] = "Nowhere"; },
     "States.Choose.Choices[0].Next: no state named \"Nowhere\""},
    {"CatchNextToUnknownState",
     [](json& d) { Work(d)["Catch"][0]["Next"] = "Gone"; },
     "States.Export.Iterator.States.Work.Catch[0].Next: no state named "
     "\"Gone\""},
    {"IteratorCannotLeaveTheIterator",
     [](json& d) { Work(d)["Catch"][0]["Next"] = "Bundle"; },
     "States.Export.Iterator.States.Work.Catch[0].Next: no state named "
     "\"Bundle\""},
    {"IteratorStartAtUnknown",
     [](json& d) { d["States"]["Export"]["Iterator"]["StartAt"] = "X"; },
     "States.Export.Iterator.StartAt: no state named \"X\""},
    {"UnreachableState",
     [](json& d) {
       d["States"]["Orphan"] = {{"Type", "Succeed"}};
     },
     "States.Orphan: unreachable"},
    {"UnreachableIteratorState", [](json& d) { Work(d).erase("Catch"); },
     "States.Export.Iterator.States.Failed: unreachable"},
    // States that can never reach End, Succeed or Fail.
    {"PassCycleWithNoWayOut",
     [](json& d) {
       d["States"]["Pause"]["Next"] = "Loop";
       d["States"]["Loop"] = {{"Type", "Pass"}, {"Next", "Again"}};
       d["States"]["Again"] = {{"Type", "Pass"}, {"Next", "Loop"}};
     },
     "States.Loop: no path to an end (End, Succeed or Fail): transitions "
     "from \"Loop\", \"Again\" never leave these states"},
    {"PassSelfLoop",
     [](json& d) {
       d["States"]["Pause"]["Next"] = "Spin";
       d["States"]["Spin"] = {{"Type", "Pass"}, {"Next", "Spin"}};
     },
     "States.Spin: no path to an end (End, Succeed or Fail): transitions "
     "from \"Spin\" never leave these states"},
    {"StatesLeadingIntoACycleAreNotNamed",
     [](json& d) {
       d["States"]["Pause"]["Next"] = "Enter";
       d["States"]["Enter"] = {{"Type", "Pass"}, {"Next", "Loop"}};
       d["States"]["Loop"] = {{"Type", "Pass"}, {"Next", "Again"}};
       d["States"]["Again"] = {{"Type", "Pass"}, {"Next", "Loop"}};
     },
     "States.Loop: no path to an end (End, Succeed or Fail): transitions "
     "from \"Loop\", \"Again\" never leave these states"},
    {"ChoiceWhoseEveryBranchLoopsBack",
     [](json& d) {
       d["States"]["Pause"]["Next"] = "Spin";
       d["States"]["Spin"] = json::parse(R"json({
         "Type": "Choice",
         "Choices": [{"Variable": "$.verified", "BooleanEquals": true,
                      "Next": "Settle"}],
         "Default": "Spin"
       })json");
       d["States"]["Settle"] = {{"Type", "Pass"}, {"Next", "Spin"}};
     },
     "States.Spin: no path to an end (End, Succeed or Fail): transitions "
     "from \"Spin\", \"Settle\" never leave these states"},
    {"TaskLoopWithNoWayOut",
     [](json& d) {
       d["States"]["Pause"]["Next"] = "Bundle";
       d["States"]["Choose"]["Choices"][0]["Next"] = "Done";
       d["States"]["Choose"]["Default"] = "Export";
     },
     "States.Bundle: no path to an end (End, Succeed or Fail): transitions "
     "from \"Bundle\", \"Pause\" never leave these states"},
    {"IteratorPassCycleWithNoWayOut",
     [](json& d) {
       json& failed = d["States"]["Export"]["Iterator"]["States"]["Failed"];
       failed.erase("End");
       failed["Next"] = "Again";
       d["States"]["Export"]["Iterator"]["States"]["Again"] = {
           {"Type", "Pass"}, {"Next", "Failed"}};
     },
     "States.Export.Iterator.States.Failed: no path to an end (End, Succeed "
     "or Fail): transitions from \"Failed\", \"Again\" never leave these "
     "states"},
    // Retry.
    {"RetryIntervalNegative",
     [](json& d) { d["States"]["Bundle"]["Retry"][0]["IntervalSeconds"] = -1; },
     "States.Bundle.Retry[0].IntervalSeconds: must be >= 0"},
    {"RetryBackoffBelowOne",
     [](json& d) { d["States"]["Bundle"]["Retry"][0]["BackoffRate"] = 0.5; },
     "States.Bundle.Retry[0].BackoffRate: must be >= 1"},
    {"RetryMaxAttemptsNegative",
     [](json& d) { Work(d)["Retry"][0]["MaxAttempts"] = -1; },
     "States.Export.Iterator.States.Work.Retry[0].MaxAttempts: must be >= 0"},
    {"RetryMaxAttemptsNotInteger",
     [](json& d) { Work(d)["Retry"][0]["MaxAttempts"] = 1.5; },
     "States.Export.Iterator.States.Work.Retry[0].MaxAttempts: must be an "
     "integer"},
    {"RetryMaxDelayNegative",
     [](json& d) { d["States"]["Bundle"]["Retry"][0]["MaxDelaySeconds"] = -3; },
     "States.Bundle.Retry[0].MaxDelaySeconds: must be >= 0"},
    {"RetryJitterUnknown",
     [](json& d) {
       d["States"]["Bundle"]["Retry"][0]["JitterStrategy"] = "PARTIAL";
     },
     "States.Bundle.Retry[0].JitterStrategy: must be \"FULL\" or \"NONE\""},
    {"RetryUnknownField",
     [](json& d) { d["States"]["Bundle"]["Retry"][0]["Backoff"] = 2; },
     "States.Bundle.Retry[0].Backoff: unknown field"},
    {"RetryNotArray",
     [](json& d) { d["States"]["Bundle"]["Retry"] = json::object(); },
     "States.Bundle.Retry: must be an array"},
    {"ErrorEqualsMissing",
     [](json& d) { d["States"]["Bundle"]["Retry"][0].erase("ErrorEquals"); },
     "States.Bundle.Retry[0].ErrorEquals: missing"},
    {"ErrorEqualsEmpty",
     [](json& d) {
       d["States"]["Bundle"]["Retry"][0]["ErrorEquals"] = json::array();
     },
     "States.Bundle.Retry[0].ErrorEquals: must be a non-empty array"},
    {"ErrorEqualsNotStrings",
     [](json& d) {
       d["States"]["Bundle"]["Retry"][0]["ErrorEquals"] = {"A", 7};
     },
     "States.Bundle.Retry[0].ErrorEquals[1]: must be a string"},
    {"StatesAllNotAlone",
     [](json& d) {
       Work(d)["Retry"][0]["ErrorEquals"] = {"X", "States.ALL"};
     },
     "States.Export.Iterator.States.Work.Retry[0].ErrorEquals: "
     "\"States.ALL\" must be the only error name"},
    {"StatesAllRetrierNotLast",
     [](json& d) {
       Work(d)["Retry"].push_back({{"ErrorEquals", {"Worker.Busy"}}});
     },
     "States.Export.Iterator.States.Work.Retry[0].ErrorEquals: a "
     "\"States.ALL\" retrier must be the last one"},
    {"StatesAllCatcherNotLast",
     [](json& d) {
       Work(d)["Catch"].push_back(
           {{"ErrorEquals", {"Worker.Busy"}}, {"Next", "Failed"}});
     },
     "States.Export.Iterator.States.Work.Catch[0].ErrorEquals: a "
     "\"States.ALL\" catcher must be the last one"},
    {"CatchWithoutNext", [](json& d) { Work(d)["Catch"][0].erase("Next"); },
     "States.Export.Iterator.States.Work.Catch[0].Next: missing"},
    // Resources.
    {"TaskWithoutResource",
     [](json& d) { d["States"]["Bundle"].erase("Resource"); },
     "States.Bundle.Resource: missing"},
    {"UnknownResource",
     [](json& d) {
       d["States"]["Bundle"]["Resource"] = "arn:aws:lambda:us-east-1:1:f";
     },
     "States.Bundle.Resource: unknown resource \"arn:aws:lambda"},
    {"WorkerOutsideIterator",
     [](json& d) { d["States"]["Bundle"]["Resource"] = "dsar:worker.erase"; },
     "States.Bundle.Resource: \"dsar:worker.erase\" runs once per store"},
    {"BundleInsideIterator",
     [](json& d) { Work(d)["Resource"] = "dsar:bundle"; },
     "States.Export.Iterator.States.Work.Resource: \"dsar:bundle\" is not "
     "allowed inside a Map iterator"},
    {"UnknownWorkerOperation",
     [](json& d) { Work(d)["Resource"] = "dsar:worker.shred"; },
     "States.Export.Iterator.States.Work.Resource: unknown resource "
     "\"dsar:worker.shred\""},
    {"TaskTimeoutNotPositive", [](json& d) { Work(d)["TimeoutSeconds"] = 0; },
     "States.Export.Iterator.States.Work.TimeoutSeconds: must be >= 1"},
    // Map.
    {"MapWithoutIterator",
     [](json& d) { d["States"]["Export"].erase("Iterator"); },
     "States.Export.Iterator: missing"},
    {"MapWithIteratorAndItemProcessor",
     [](json& d) {
       d["States"]["Export"]["ItemProcessor"] =
           d["States"]["Export"]["Iterator"];
     },
     "States.Export.ItemProcessor: cannot be combined with Iterator"},
    {"ItemProcessorErrorsNameItemProcessor",
     [](json& d) {
       json& map = d["States"]["Export"];
       map["ItemProcessor"] = map["Iterator"];
       map.erase("Iterator");
       map["ItemProcessor"]["States"]["Work"]["Resource"] = "dsar:bundle";
     },
     "States.Export.ItemProcessor.States.Work.Resource:"},
    {"IteratorUnknownField",
     [](json& d) { d["States"]["Export"]["Iterator"]["ProcessorConfig"] = {}; },
     "States.Export.Iterator.ProcessorConfig: unknown field"},
    {"ItemsPathUnsupported",
     [](json& d) { d["States"]["Export"]["ItemsPath"] = "$.items"; },
     "States.Export.ItemsPath: unsupported path \"$.items\""},
    {"ItemsPathMissing",
     [](json& d) { d["States"]["Export"].erase("ItemsPath"); },
     "States.Export.ItemsPath: missing"},
    {"ItemOrderUnknown",
     [](json& d) { d["States"]["Export"]["ItemOrder"] = "Random"; },
     "States.Export.ItemOrder: unknown order \"Random\""},
    {"MaxConcurrencyNegative",
     [](json& d) { d["States"]["Export"]["MaxConcurrency"] = -1; },
     "States.Export.MaxConcurrency: must be >= 0"},
    {"MapRetry",
     [](json& d) {
       d["States"]["Export"]["Retry"] = {{{"ErrorEquals", {"States.ALL"}}}};
     },
     "States.Export.Retry: not supported on a Map state"},
    {"MapCatch",
     [](json& d) {
       d["States"]["Export"]["Catch"] = {
           {{"ErrorEquals", {"States.ALL"}}, {"Next", "Done"}}};
     },
     "States.Export.Catch: not supported on a Map state"},
    {"MapInsideIterator",
     [](json& d) {
       json inner = d["States"]["Export"];
       inner["End"] = true;
       inner.erase("Next");
       d["States"]["Export"]["Iterator"]["States"]["Failed"] = inner;
     },
     "States.Export.Iterator.States.Failed.Type: a Map state is not allowed"},
    // Choice.
    {"ChoiceWithoutChoices",
     [](json& d) { d["States"]["Choose"].erase("Choices"); },
     "States.Choose.Choices: missing"},
    {"ChoiceEmptyChoices",
     [](json& d) { d["States"]["Choose"]["Choices"] = json::array(); },
     "States.Choose.Choices: must be a non-empty array"},
    {"ChoiceWithNext", [](json& d) { d["States"]["Choose"]["Next"] = "Done"; },
     "States.Choose.Next: not allowed on a Choice state"},
    {"RuleWithoutNext", [](json& d) { Rule(d).erase("Next"); },
     "States.Choose.Choices[0].Next: missing"},
    {"NestedRuleWithNext", [](json& d) { Rule(d)["And"][0]["Next"] = "Done"; },
     "States.Choose.Choices[0].And[0].Next: only allowed on top-level rules"},
    {"VariableUnsupported",
     [](json& d) { Rule(d)["And"][1]["Variable"] = "$.stores[0].name"; },
     "States.Choose.Choices[0].And[1].Variable: unsupported path"},
    {"VariableNotJsonPath",
     [](json& d) {
       d["States"]["Choose"]["Choices"][0] = {{"Variable", "type"},
                                              {"StringEquals", "ACCESS"},
                                              {"Next", "Export"}};
     },
     "States.Choose.Choices[0].Variable: unsupported path \"type\""},
    {"VariableMissing", [](json& d) { Rule(d)["And"][0].erase("Variable"); },
     "States.Choose.Choices[0].And[0].Variable: missing"},
    {"VariableOnCombinator", [](json& d) { Rule(d)["Variable"] = "$.type"; },
     "States.Choose.Choices[0].Variable: not allowed with And"},
    {"RuleWithoutOperator",
     [](json& d) { Rule(d)["And"][0].erase("StringEquals"); },
     "States.Choose.Choices[0].And[0]: needs one of StringEquals"},
    {"RuleWithTwoOperators",
     [](json& d) { Rule(d)["And"][0]["IsPresent"] = true; },
     "States.Choose.Choices[0].And[0].IsPresent: cannot be combined with "
     "StringEquals"},
    {"UnsupportedOperator",
     [](json& d) {
       Rule(d)["And"][0].erase("StringEquals");
       Rule(d)["And"][0]["StringMatches"] = "A*";
     },
     "States.Choose.Choices[0].And[0]: needs one of"},
    {"UnknownRuleField", [](json& d) { Rule(d)["And"][0]["Comment"] = "x"; },
     "States.Choose.Choices[0].And[0].Comment: unknown field"},
    {"StringEqualsOperandType",
     [](json& d) { Rule(d)["And"][0]["StringEquals"] = 5; },
     "States.Choose.Choices[0].And[0].StringEquals: must be a string"},
    {"BooleanEqualsOperandType",
     [](json& d) { Rule(d)["And"][1]["BooleanEquals"] = "yes"; },
     "States.Choose.Choices[0].And[1].BooleanEquals: must be a boolean"},
    {"AndEmpty", [](json& d) { Rule(d)["And"] = json::array(); },
     "States.Choose.Choices[0].And: must be a non-empty array"},
    {"NotWithBadChild",
     [](json& d) {
       Rule(d).erase("And");
       Rule(d)["Not"] = {{"Variable", "$..x"}, {"IsPresent", true}};
     },
     "States.Choose.Choices[0].Not.Variable: unsupported path"},
    // Wait.
    {"WaitSecondsNegative",
     [](json& d) { d["States"]["Pause"]["Seconds"] = -1; },
     "States.Pause.Seconds: must be >= 0"},
    {"WaitSecondsMissing",
     [](json& d) { d["States"]["Pause"].erase("Seconds"); },
     "States.Pause.Seconds: missing"},
};

INSTANTIATE_TEST_SUITE_P(All, InvalidDefinitionTest,
                         ::testing::ValuesIn(kInvalidCases),
                         [](const ::testing::TestParamInfo<InvalidCase>& info) {
                           return info.param.name;
                         });

TEST(ResolvePathTest, ResolvesTheSupportedSubset) {
  const json input = {{"type", "ACCESS"}, {"subject", {{"email", "a@b"}}}};
  ASSERT_NE(ResolvePath(input, "$"), nullptr);
  EXPECT_EQ(*ResolvePath(input, "$"), input);
  EXPECT_EQ(*ResolvePath(input, "$.type"), "ACCESS");
  EXPECT_EQ(*ResolvePath(input, "$.subject.email"), "a@b");
  EXPECT_EQ(ResolvePath(input, "$.missing"), nullptr);
  EXPECT_EQ(ResolvePath(input, "$.type.deeper"), nullptr);
  EXPECT_EQ(ResolvePath(input, "$.subject[0]"), nullptr);
  EXPECT_EQ(ResolvePath(input, "type"), nullptr);
}

// A Choice state built in code, to evaluate rules independently of parsing.
ChoiceRule Compare(ChoiceRule::Op op, std::string variable, json operand,
                   std::string next = "") {
  ChoiceRule rule;
  rule.op = op;
  rule.variable = std::move(variable);
  rule.operand = std::move(operand);
  rule.next = std::move(next);
  return rule;
}

ChoiceRule Combine(ChoiceRule::Op op, std::vector<ChoiceRule> children,
                   std::string next = "") {
  ChoiceRule rule;
  rule.op = op;
  rule.children = std::move(children);
  rule.next = std::move(next);
  return rule;
}

TEST(EvaluateChoiceTest, CombinatorsAndDefault) {
  using Op = ChoiceRule::Op;
  State choice;
  choice.type = StateType::kChoice;
  // And: an access request whose identity is verified.
  choice.choices.push_back(
      Combine(Op::kAnd,
              {Compare(Op::kStringEquals, "$.type", "ACCESS"),
               Compare(Op::kBooleanEquals, "$.verified", true)},
              "Export"));
  // Or: erasure or a request with priority 1.
  choice.choices.push_back(
      Combine(Op::kOr,
              {Compare(Op::kStringEquals, "$.type", "ERASURE"),
               Compare(Op::kNumericEquals, "$.priority", 1)},
              "Erase"));
  // Not: no subject given.
  choice.choices.push_back(Combine(
      Op::kNot, {Compare(Op::kIsPresent, "$.subject", true)}, "Reject"));

  const json verified_access = {
      {"type", "ACCESS"}, {"verified", true}, {"subject", "s"}};
  EXPECT_EQ(EvaluateChoice(choice, verified_access), "Export");
  // The first matching rule wins: this also has priority 1.
  json access_priority = verified_access;
  access_priority["priority"] = 1;
  EXPECT_EQ(EvaluateChoice(choice, access_priority), "Export");
  EXPECT_EQ(EvaluateChoice(choice, {{"type", "ERASURE"}, {"subject", "s"}}),
            "Erase");
  EXPECT_EQ(
      EvaluateChoice(choice,
                     {{"type", "ACCESS"}, {"priority", 1.0}, {"subject", "s"}}),
      "Erase");
  EXPECT_EQ(EvaluateChoice(choice, {{"type", "ACCESS"}, {"verified", false}}),
            "Reject");

  // Nothing matches and there is no Default: States.NoChoiceMatched.
  const json unmatched = {
      {"type", "ACCESS"}, {"verified", "true"}, {"subject", "s"}};
  EXPECT_EQ(EvaluateChoice(choice, unmatched), std::nullopt);
  choice.default_next = "Fallback";
  EXPECT_EQ(EvaluateChoice(choice, unmatched), "Fallback");
}

TEST(EvaluateChoiceTest, ComparisonsRequireMatchingTypes) {
  using Op = ChoiceRule::Op;
  State choice;
  choice.choices.push_back(Compare(Op::kStringEquals, "$.v", "1", "String"));
  choice.choices.push_back(Compare(Op::kNumericEquals, "$.v", 1, "Number"));
  choice.choices.push_back(Compare(Op::kBooleanEquals, "$.v", true, "Bool"));
  choice.choices.push_back(Compare(Op::kIsPresent, "$.v", false, "Absent"));
  EXPECT_EQ(EvaluateChoice(choice, {{"v", "1"}}), "String");
  EXPECT_EQ(EvaluateChoice(choice, {{"v", 1}}), "Number");
  EXPECT_EQ(EvaluateChoice(choice, {{"v", 1.0}}), "Number");
  EXPECT_EQ(EvaluateChoice(choice, {{"v", true}}), "Bool");
  EXPECT_EQ(EvaluateChoice(choice, {{"other", 1}}), "Absent");
  EXPECT_EQ(EvaluateChoice(choice, {{"v", 2}}), std::nullopt);
  EXPECT_EQ(EvaluateChoice(choice, {{"v", nullptr}}), std::nullopt);
}

TEST(RetryDelayTest, GrowsByBackoffRate) {
  Retrier r;
  r.interval_seconds = 1;
  r.backoff_rate = 2;
  EXPECT_EQ(RetryDelay(r, 0, 0.5), absl::Seconds(1));
  EXPECT_EQ(RetryDelay(r, 1, 0.5), absl::Seconds(2));
  EXPECT_EQ(RetryDelay(r, 2, 0.5), absl::Seconds(4));
  EXPECT_EQ(RetryDelay(r, 3, 0.5), absl::Seconds(8));
  r.interval_seconds = 0.5;
  r.backoff_rate = 1.5;
  EXPECT_EQ(RetryDelay(r, 2, 0), absl::Seconds(1.125));
  r.backoff_rate = 1;
  EXPECT_EQ(RetryDelay(r, 10, 0), absl::Seconds(0.5));
  r.interval_seconds = 0;
  EXPECT_EQ(RetryDelay(r, 10, 0), absl::ZeroDuration());
}

TEST(RetryDelayTest, CappedByMaxDelayUnlessZero) {
  Retrier r;
  r.interval_seconds = 1;
  r.backoff_rate = 2;
  r.max_delay_seconds = 30;
  EXPECT_EQ(RetryDelay(r, 4, 0), absl::Seconds(16));
  EXPECT_EQ(RetryDelay(r, 5, 0), absl::Seconds(30));
  EXPECT_EQ(RetryDelay(r, 60, 0), absl::Seconds(30));
  r.max_delay_seconds = 0;  // No cap.
  EXPECT_EQ(RetryDelay(r, 10, 0), absl::Seconds(1024));
}

TEST(RetryDelayTest, FullJitterIsUniformBelowTheCappedDelay) {
  Retrier r;
  r.interval_seconds = 1;
  r.backoff_rate = 2;
  r.max_delay_seconds = 30;
  r.full_jitter = true;
  EXPECT_EQ(RetryDelay(r, 2, 0), absl::ZeroDuration());
  EXPECT_EQ(RetryDelay(r, 2, 0.5), absl::Seconds(2));
  EXPECT_EQ(RetryDelay(r, 10, 0.5), absl::Seconds(15));
  for (double u = 0; u < 1; u += 0.01) {
    const absl::Duration d = RetryDelay(r, 10, u);
    EXPECT_GE(d, absl::ZeroDuration());
    EXPECT_LT(d, absl::Seconds(30));
    EXPECT_LE(d, RetryDelay(r, 10, u + 0.005));
  }
  // Without jitter unit_random is ignored.
  r.full_jitter = false;
  EXPECT_EQ(RetryDelay(r, 2, 0.1), absl::Seconds(4));
}

TEST(FindRetrierTest, FirstMatchWinsAndStatesAllMatchesAnything) {
  State task;
  task.retry.push_back({{"Worker.Timeout", "Worker.Busy"}});
  task.retry.push_back({{"Worker.Busy"}});
  task.retry.push_back({{"States.ALL"}});
  EXPECT_EQ(FindRetrier(task, "Worker.Timeout"), 0);
  EXPECT_EQ(FindRetrier(task, "Worker.Busy"), 0);
  EXPECT_EQ(FindRetrier(task, "Connector.Down"), 2);
  EXPECT_EQ(FindRetrier(task, "States.TaskFailed"), 2);

  task.retry.pop_back();
  EXPECT_EQ(FindRetrier(task, "Connector.Down"), -1);
  // Names match exactly, not by prefix.
  EXPECT_EQ(FindRetrier(task, "Worker"), -1);
  EXPECT_EQ(FindRetrier(State(), "Worker.Busy"), -1);
}

TEST(FindCatcherTest, FirstMatchWinsAndStatesAllMatchesAnything) {
  State task;
  task.catchers.push_back({{"Connector.Down"}, "Skip"});
  task.catchers.push_back({{"Connector.Down", "Worker.Busy"}, "Later"});
  task.catchers.push_back({{"States.ALL"}, "Failed"});
  EXPECT_EQ(FindCatcher(task, "Connector.Down"), 0);
  EXPECT_EQ(FindCatcher(task, "Worker.Busy"), 1);
  EXPECT_EQ(FindCatcher(task, "Anything.Else"), 2);
  task.catchers.pop_back();
  EXPECT_EQ(FindCatcher(task, "Anything.Else"), -1);
}

TEST(FindRetrierTest, UsesParsedDefinition) {
  auto def = WorkflowDefinition::Parse(WorkflowDefinition::DefaultJson());
  ASSERT_TRUE(def.ok()) << def.status();
  const State& erase =
      *(*def)->root().Find("EraseStores")->iterator->Find("Erase");
  EXPECT_EQ(FindRetrier(erase, "Connector.Unavailable"), 0);
  EXPECT_EQ(FindCatcher(erase, "Connector.Unavailable"), 0);
  EXPECT_EQ(erase.retry[0].max_attempts, 6);
}

}  // namespace
}  // namespace dsar
