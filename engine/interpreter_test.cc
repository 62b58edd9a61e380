#include "engine/interpreter.h"

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inventory/inventory.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kNow = 1'700'000'000'000;

// a feeds identities to b; c is erased after b.
constexpr char kInventoryYaml[] = R"yaml(
stores:
  - name: a
    kind: sqlite
    path: a.db
    tables:
      - name: users
        identity_fields: {email: email, user_id: id}
  - name: b
    kind: sqlite
    path: b.db
    tables:
      - name: orders
        identity_fields: {user_id: user_id}
    identities_from: [a]
  - name: c
    kind: jsonl
    path: c.jsonl
    identity_fields: {email: email}
    erase_after: [b]
)yaml";

class InterpreterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Inventory> inventory =
        Inventory::Parse(kInventoryYaml, "/srv/dsar");
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = std::move(*inventory);
    absl::StatusOr<std::shared_ptr<const WorkflowDefinition>> definition =
        WorkflowDefinition::Parse(WorkflowDefinition::DefaultJson());
    ASSERT_TRUE(definition.ok()) << definition.status();
    definition_ = *definition;
  }

  // A request as the coordinator hands it over; `verified` says whether the
  // subject's identity was already verified (the default workflow waits for
  // that signal first).
  internal::RequestRecord NewRecord(v1::RequestType type,
                                    bool verified = true) const {
    internal::RequestRecord record;
    v1::Request* request = record.mutable_request();
    request->set_id("dsr_test");
    request->set_type(type);
    request->set_regulation("GDPR");
    request->set_status(v1::RECEIVED);
    v1::SubjectIdentity* email = request->add_identities();
    email->set_type(v1::EMAIL);
    email->set_value("jane@example.com");
    for (const StoreSpec& store : inventory_.stores())
      request->add_stores(store.name);
    if (verified) record.add_signals(kSignalIdentityVerified);
    return record;
  }

  // An interpreter at `now` writing its drafts to events_; `random` is the
  // jitter source (fixed so delays are predictable).
  Interpreter At(int64_t now, double random = 0.5) {
    return Interpreter(
        *definition_, inventory_, now, [random] { return random; }, &events_);
  }
  Interpreter Now() { return At(kNow); }

  std::vector<std::string> TakeEventKinds() {
    std::vector<std::string> kinds;
    for (const EventDraft& draft : events_) kinds.push_back(draft.kind);
    events_.clear();
    return kinds;
  }

  Inventory inventory_;
  std::shared_ptr<const WorkflowDefinition> definition_;
  std::vector<EventDraft> events_;
};

const internal::MapRun& CurrentRun(const internal::RequestRecord& record) {
  return record.maps(record.maps_size() - 1);
}

const internal::MapItem& Item(const internal::RequestRecord& record,
                              int index) {
  return CurrentRun(record).items(index);
}

std::vector<internal::ItemPhase> Phases(const internal::RequestRecord& record) {
  std::vector<internal::ItemPhase> phases;
  for (const internal::MapItem& item : CurrentRun(record).items())
    phases.push_back(item.phase());
  return phases;
}

// What the coordinator does when it hands a READY item to a worker.
void Lease(internal::RequestRecord* record, int index) {
  internal::MapItem* item =
      record->mutable_maps(record->maps_size() - 1)->mutable_items(index);
  ASSERT_EQ(item->phase(), internal::ITEM_READY) << item->store();
  item->set_phase(internal::ITEM_LEASED);
  item->set_attempt(item->attempt() + 1);
  item->set_worker_id("worker-1");
}

google::protobuf::RepeatedPtrField<v1::SubjectIdentity> NoIdentities() {
  return {};
}

constexpr int kA = 0;
constexpr int kB = 1;
constexpr int kC = 2;

TEST_F(InterpreterTest, AccessExportsInIdentityFlowOrderThenBundles) {
  internal::RequestRecord record = NewRecord(v1::ACCESS);
  Now().Advance(&record);

  EXPECT_EQ(record.request().status(), v1::RUNNING);
  EXPECT_EQ(record.request().current_state(), "ExportStores");
  ASSERT_EQ(record.maps_size(), 1);
  EXPECT_EQ(CurrentRun(record).state(), "ExportStores");
  ASSERT_EQ(CurrentRun(record).items_size(), 3);
  EXPECT_EQ(Item(record, kA).store(), "a");
  EXPECT_EQ(Item(record, kA).state(), "Export");
  // b waits for the identities of a; c depends on nothing for export.
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_READY, internal::ITEM_WAITING,
                          internal::ITEM_READY));
  std::vector<std::string> entered;
  for (const EventDraft& draft : events_) entered.push_back(draft.state);
  EXPECT_THAT(entered,
              ElementsAre("VerifyIdentity", "ChooseRight", "ExportStores"));
  EXPECT_THAT(TakeEventKinds(),
              ElementsAre("state_entered", "state_entered", "state_entered"));

  // Advancing again with nothing new changes nothing.
  internal::RequestRecord before = record;
  Now().Advance(&record);
  EXPECT_EQ(record.SerializeAsString(), before.SerializeAsString());
  EXPECT_TRUE(TakeEventKinds().empty());

  ASSERT_NO_FATAL_FAILURE(Lease(&record, kA));
  google::protobuf::RepeatedPtrField<v1::SubjectIdentity> found;
  v1::SubjectIdentity* user_id = found.Add();
  user_id->set_type(v1::USER_ID);
  user_id->set_value("42");
  Now().CompleteItemTask(&record, kA, 3, found, "sha-a", "/art/a.json", 10);

  const internal::MapItem& a = Item(record, kA);
  EXPECT_EQ(a.phase(), internal::ITEM_SUCCEEDED);
  EXPECT_EQ(a.record_count(), 3);
  EXPECT_EQ(a.artifact_sha256(), "sha-a");
  EXPECT_EQ(a.artifact_path(), "/art/a.json");
  EXPECT_EQ(a.artifact_size(), 10);
  EXPECT_EQ(Item(record, kB).phase(), internal::ITEM_READY);
  ASSERT_EQ(record.discovered_size(), 1);
  EXPECT_EQ(record.discovered(0).type(), v1::USER_ID);
  EXPECT_EQ(record.discovered(0).value(), "42");
  EXPECT_THAT(TakeEventKinds(),
              ElementsAre("task_completed", "store_succeeded"));

  // The same identity found again is not duplicated.
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kB));
  Now().CompleteItemTask(&record, kB, 1, found, "sha-b", "/art/b.json", 5);
  EXPECT_EQ(record.discovered_size(), 1);
  EXPECT_EQ(record.request().current_state(), "ExportStores");
  TakeEventKinds();

  ASSERT_NO_FATAL_FAILURE(Lease(&record, kC));
  Now().CompleteItemTask(&record, kC, 0, NoIdentities(), "sha-c", "/art/c.json",
                         2);
  EXPECT_EQ(record.request().current_state(), "Bundle");
  EXPECT_EQ(record.request().status(), v1::RUNNING);
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_SUCCEEDED, internal::ITEM_SUCCEEDED,
                          internal::ITEM_SUCCEEDED));
  EXPECT_THAT(TakeEventKinds(),
              ElementsAre("task_completed", "store_succeeded",
                          "state_completed", "state_entered"));
  EXPECT_EQ(Now().CurrentState(record)->resource, kResourceBundle);

  At(kNow + 5).CompleteBuiltin(&record, "bundle sha256=abc");
  EXPECT_EQ(record.request().status(), v1::COMPLETED);
  EXPECT_EQ(record.request().current_state(), "Finalize");
  EXPECT_TRUE(record.request().error().empty());
  EXPECT_EQ(record.request().completed_at().seconds(), (kNow + 5) / 1000);
  EXPECT_EQ(Now().CurrentState(record), nullptr);
  ASSERT_FALSE(events_.empty());
  EXPECT_EQ(events_[0].state, "Bundle");
  EXPECT_EQ(events_[0].detail, "bundle sha256=abc");
  EXPECT_THAT(TakeEventKinds(),
              ElementsAre("task_completed", "state_entered", "completed"));
}

TEST_F(InterpreterTest, ErasureDiscoversThenErasesInEraseAfterOrder) {
  internal::RequestRecord record = NewRecord(v1::ERASURE);
  Now().Advance(&record);
  EXPECT_EQ(record.request().current_state(), "DiscoverIdentities");
  EXPECT_EQ(Item(record, kA).state(), "Discover");
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_READY, internal::ITEM_WAITING,
                          internal::ITEM_READY));

  ASSERT_NO_FATAL_FAILURE(Lease(&record, kA));
  Now().CompleteItemTask(&record, kA, 1, NoIdentities(), "", "", 0);
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kC));
  Now().CompleteItemTask(&record, kC, 1, NoIdentities(), "", "", 0);
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kB));
  Now().CompleteItemTask(&record, kB, 1, NoIdentities(), "", "", 0);

  // Discovery done: ChooseChange picks the erase pass, a second Map run.
  // erase_after orders it (c after b), and a store that supplies identities
  // is erased after the stores it supplies (a after b), so a failure never
  // leaves data that can no longer be found.
  std::vector<std::string> entered;
  for (const EventDraft& draft : events_) {
    if (draft.kind == "state_entered") entered.push_back(draft.state);
  }
  EXPECT_THAT(entered,
              ElementsAre("VerifyIdentity", "ChooseRight", "DiscoverIdentities",
                          "ChooseChange", "EraseStores"));
  ASSERT_EQ(record.maps_size(), 2);
  EXPECT_EQ(record.maps(0).state(), "DiscoverIdentities");
  EXPECT_EQ(record.request().current_state(), "EraseStores");
  EXPECT_EQ(CurrentRun(record).state(), "EraseStores");
  EXPECT_EQ(Item(record, kA).state(), "Erase");
  EXPECT_EQ(Item(record, kA).attempt(), 0u);
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_WAITING, internal::ITEM_READY,
                          internal::ITEM_WAITING));

  ASSERT_NO_FATAL_FAILURE(Lease(&record, kB));
  Now().CompleteItemTask(&record, kB, 1, NoIdentities(), "", "", 0);
  EXPECT_EQ(Item(record, kA).phase(), internal::ITEM_READY);
  EXPECT_EQ(Item(record, kC).phase(), internal::ITEM_READY);
  EXPECT_EQ(record.request().status(), v1::RUNNING);
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kA));
  Now().CompleteItemTask(&record, kA, 1, NoIdentities(), "", "", 0);
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kC));
  Now().CompleteItemTask(&record, kC, 1, NoIdentities(), "", "", 0);

  EXPECT_EQ(record.request().status(), v1::COMPLETED);
  EXPECT_EQ(record.request().current_state(), "Finalize");
  EXPECT_FALSE(record.request().has_bundle());
}

TEST_F(InterpreterTest, RetriesWithBackoffThenStopsForAttention) {
  internal::RequestRecord record = NewRecord(v1::ACCESS);
  Now().Advance(&record);
  TakeEventKinds();

  // Default Export retrier: 1 s, x2, at most 4 retries, 30 s cap, FULL
  // jitter. With the jitter source near 1 each delay sits at its cap.
  int64_t now = kNow;
  int64_t caps_ms[] = {1000, 2000, 4000, 8000};
  for (int retry = 0; retry < 4; ++retry) {
    SCOPED_TRACE(retry);
    ASSERT_NO_FATAL_FAILURE(Lease(&record, kA));
    At(now, 0.999)
        .FailItemTask(&record, kA, "Connector.Unavailable", "database is down");
    const internal::MapItem& a = Item(record, kA);
    EXPECT_EQ(a.phase(), internal::ITEM_RETRY_WAIT);
    EXPECT_GE(a.not_before_ms(), now);
    EXPECT_LE(a.not_before_ms(), now + caps_ms[retry]);
    EXPECT_GT(a.not_before_ms(), now + caps_ms[retry] * 9 / 10);
    EXPECT_TRUE(a.error().empty());
    EXPECT_EQ(record.request().status(), v1::RUNNING);
    EXPECT_THAT(TakeEventKinds(),
                ElementsAre("task_failed", "retry_scheduled"));

    now = a.not_before_ms();
    At(now).RetryDue(&record, kA);
    EXPECT_EQ(Item(record, kA).phase(), internal::ITEM_READY);
    EXPECT_EQ(Item(record, kA).not_before_ms(), 0);
  }

  // The fifth failure exhausts MaxAttempts: Catch -> StoreFailed, and the
  // item ends FAILED with the error kept.
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kA));
  EXPECT_EQ(Item(record, kA).attempt(), 5u);
  At(now).FailItemTask(&record, kA, "Connector.Unavailable",
                       "database is down");
  const internal::MapItem& a = Item(record, kA);
  EXPECT_EQ(a.phase(), internal::ITEM_FAILED);
  EXPECT_EQ(a.state(), "StoreFailed");
  EXPECT_EQ(a.error(), "Connector.Unavailable");
  EXPECT_EQ(a.cause(), "database is down");
  // b needs a's identities: blocked at once, naming a. c still runs.
  EXPECT_THAT(TakeEventKinds(), ElementsAre("task_failed", "error_caught",
                                            "store_failed", "store_blocked"));
  EXPECT_EQ(Item(record, kB).phase(), internal::ITEM_BLOCKED);
  EXPECT_EQ(Item(record, kB).error(), kErrorStoreBlocked);
  EXPECT_EQ(Item(record, kB).cause(), "waits for a, which failed");
  EXPECT_EQ(record.request().status(), v1::RUNNING);
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kC));
  At(now).CompleteItemTask(&record, kC, 0, NoIdentities(), "s", "/p", 1);

  // Not COMPLETED, no bundle: the request stops at the Map for an operator.
  EXPECT_EQ(record.request().status(), v1::NEEDS_ATTENTION);
  EXPECT_EQ(record.request().current_state(), "ExportStores");
  EXPECT_EQ(record.request().error(), kErrorNeedsAttention);
  EXPECT_EQ(record.request().cause(),
            "ExportStores: failed: a (Connector.Unavailable); blocked: b");
  EXPECT_FALSE(record.request().has_completed_at());
  EXPECT_THAT(TakeEventKinds(), ElementsAre("task_completed", "store_succeeded",
                                            "needs_attention"));
  // Nothing moves it on its own.
  At(now + 3'600'000).Advance(&record);
  EXPECT_EQ(record.request().status(), v1::NEEDS_ATTENTION);
  EXPECT_TRUE(TakeEventKinds().empty());
}

TEST_F(InterpreterTest, PermanentErrorsAreNotRetried) {
  internal::RequestRecord record = NewRecord(v1::ERASURE);
  Now().Advance(&record);
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kC));
  Now().FailItemTask(&record, kC, "Connector.ConstraintViolation",
                     "UNIQUE constraint failed");
  EXPECT_EQ(Item(record, kC).phase(), internal::ITEM_FAILED);
  EXPECT_EQ(Item(record, kC).attempt(), 1u);
}

TEST_F(InterpreterTest, EraseFailureBlocksTheStoresWaitingForIt) {
  internal::RequestRecord record = NewRecord(v1::ERASURE);
  Now().Advance(&record);
  for (int item : {kA, kC, kB}) {
    ASSERT_NO_FATAL_FAILURE(Lease(&record, item));
    Now().CompleteItemTask(&record, item, 1, NoIdentities(), "", "", 0);
  }
  ASSERT_EQ(record.request().current_state(), "EraseStores");
  // b (which a supplies and c follows) fails for good: a and c are blocked
  // at once, nothing else is erased, and the request stops.
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kB));
  Now().FailItemTask(&record, kB, "Connector.PermissionDenied",
                     "attempt to write a readonly database");
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_BLOCKED, internal::ITEM_FAILED,
                          internal::ITEM_BLOCKED));
  EXPECT_EQ(record.request().status(), v1::NEEDS_ATTENTION);

  // Retry resumes the failed and blocked stores only, in order again.
  events_.clear();
  ASSERT_TRUE(Now().Retry(&record, {}, "fixed permissions").ok());
  EXPECT_EQ(record.request().status(), v1::RUNNING);
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_WAITING, internal::ITEM_READY,
                          internal::ITEM_WAITING));
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kB));
  Now().CompleteItemTask(&record, kB, 1, NoIdentities(), "", "", 0);
  for (int item : {kA, kC}) {
    ASSERT_NO_FATAL_FAILURE(Lease(&record, item));
    Now().CompleteItemTask(&record, item, 1, NoIdentities(), "", "", 0);
  }
  EXPECT_EQ(record.request().status(), v1::COMPLETED);
}

TEST_F(InterpreterTest, IdentityConflictStopsForReview) {
  internal::RequestRecord record = NewRecord(v1::ERASURE);
  Now().Advance(&record);
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kA));
  Now().FailItemTask(&record, kA, std::string(kErrorIdentityConflict),
                     "users: email and user_id match different records");
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kC));
  Now().CompleteItemTask(&record, kC, 1, NoIdentities(), "", "", 0);
  EXPECT_EQ(record.request().status(), v1::NEEDS_ATTENTION);
  EXPECT_EQ(record.request().error(), kErrorIdentityConflict);
  EXPECT_EQ(record.request().current_state(), "DiscoverIdentities");
  EXPECT_EQ(record.maps_size(), 1);  // Nothing was erased.
}

// Every dependency shape of three stores, every request type, each store
// failing for good in each Map pass: the request ends COMPLETED exactly when
// nothing failed, otherwise NEEDS_ATTENTION with every store settled; it
// never waits with nothing able to move; erasure respects the order.
TEST_F(InterpreterTest, EveryDependencyShapeEndsWithATrueOutcome) {
  struct Shape {
    const char* name;
    const char* y_from;  // identities_from of y, z; erase_after of y, z.
    const char* z_from;
    const char* y_after;
    const char* z_after;
  };
  const Shape shapes[] = {
      {"independent", "[]", "[]", "[]", "[]"},
      {"identity chain", "[x]", "[y]", "[]", "[]"},
      {"identity fan", "[x]", "[x]", "[]", "[]"},
      {"identity diamond", "[x]", "[x, y]", "[]", "[]"},
      {"erase chain", "[]", "[]", "[x]", "[y]"},
      {"supplier erased last", "[x]", "[]", "[]", "[y]"},
      {"both", "[x]", "[x]", "[]", "[y]"},
  };
  const v1::RequestType types[] = {v1::ACCESS,      v1::PORTABILITY,
                                   v1::ERASURE,     v1::RECTIFICATION,
                                   v1::RESTRICTION, v1::OBJECTION};
  int completed = 0;
  int stopped = 0;
  for (const Shape& shape : shapes) {
    std::string yaml =
        absl::StrCat(R"yaml(
stores:
  - name: x
    kind: jsonl
    path: x.jsonl
    identity_fields: {email: email, user_id: user_id}
  - name: y
    kind: jsonl
    path: y.jsonl
    identity_fields: {email: email, user_id: user_id}
    identities_from: )yaml",
                     shape.y_from, "\n    erase_after: ", shape.y_after, R"yaml(
  - name: z
    kind: jsonl
    path: z.jsonl
    identity_fields: {email: email, user_id: user_id}
    identities_from: )yaml",
                     shape.z_from, "\n    erase_after: ", shape.z_after, "\n");
    absl::StatusOr<Inventory> inventory = Inventory::Parse(yaml, "/srv");
    ASSERT_TRUE(inventory.ok()) << shape.name << ": " << inventory.status();
    inventory_ = std::move(*inventory);
    for (v1::RequestType type : types) {
      for (const char* failing : {"", "x", "y", "z"}) {
        for (int failing_pass : {0, 1}) {
          SCOPED_TRACE(absl::StrCat(shape.name, " ", v1::RequestType_Name(type),
                                    " failing=", failing,
                                    " pass=", failing_pass));
          internal::RequestRecord record = NewRecord(type);
          Now().Advance(&record);
          bool failed_something = false;
          std::vector<std::string> done_order;
          for (int step = 0; step < 100; ++step) {
            const v1::RequestStatus status = record.request().status();
            if (status != v1::RUNNING) break;
            const State* state = Now().CurrentState(record);
            ASSERT_NE(state, nullptr);
            if (state->type == StateType::kTask) {
              Now().CompleteBuiltin(&record, "");
              continue;
            }
            ASSERT_EQ(state->type, StateType::kMap);
            std::vector<int> ready;
            for (int i = 0; i < CurrentRun(record).items_size(); ++i) {
              if (Item(record, i).phase() == internal::ITEM_READY)
                ready.push_back(i);
            }
            ASSERT_FALSE(ready.empty()) << "RUNNING with nothing to run:\n"
                                        << record.DebugString();
            for (int i : ready) {
              ASSERT_NO_FATAL_FAILURE(Lease(&record, i));
              const std::string store = Item(record, i).store();
              if (store == failing && record.maps_size() - 1 == failing_pass) {
                failed_something = true;
                Now().FailItemTask(&record, i, "Connector.SchemaMismatch",
                                   "no such table");
              } else {
                if (CurrentRun(record).state() == "EraseStores")
                  done_order.push_back(store);
                Now().CompleteItemTask(&record, i, 1, NoIdentities(), "s", "/p",
                                       1);
              }
            }
          }
          const v1::RequestStatus status = record.request().status();
          completed += status == v1::COMPLETED;
          stopped += status == v1::NEEDS_ATTENTION;
          if (failed_something) {
            EXPECT_EQ(status, v1::NEEDS_ATTENTION);
            for (const internal::MapItem& item : CurrentRun(record).items()) {
              EXPECT_TRUE(item.phase() == internal::ITEM_SUCCEEDED ||
                          item.phase() == internal::ITEM_FAILED ||
                          item.phase() == internal::ITEM_BLOCKED)
                  << item.DebugString();
              if (item.phase() == internal::ITEM_BLOCKED) {
                EXPECT_THAT(item.cause(), HasSubstr("waits for "));
              }
            }
          } else {
            EXPECT_EQ(status, v1::COMPLETED);
          }
          // Erase order: erase_after and "suppliers last" both hold.
          auto position = [&](const std::string& store) {
            return std::find(done_order.begin(), done_order.end(), store) -
                   done_order.begin();
          };
          for (const StoreSpec& spec : inventory_.stores()) {
            if (position(spec.name) == static_cast<long>(done_order.size()))
              continue;
            for (const std::string& before : spec.erase_after)
              EXPECT_LT(position(before), position(spec.name));
            for (const std::string& supplier : spec.identities_from)
              EXPECT_LT(position(spec.name), position(supplier));
          }
        }
      }
    }
  }
  // Per shape: each type failing nowhere (2 runs), and ACCESS and
  // PORTABILITY failing in a pass they do not have (3 stores) complete; the
  // rest stop.
  EXPECT_EQ(completed, 7 * (6 * 2 + 2 * 3));
  EXPECT_EQ(stopped, 7 * 6 * 8 - completed);
}

TEST_F(InterpreterTest, RetryDelayGrowsByBackoffRate) {
  internal::RequestRecord record = NewRecord(v1::ERASURE);
  Now().Advance(&record);
  // Run discovery to the erase pass, whose retrier allows 6 retries.
  for (int i : {kA, kC, kB}) {
    ASSERT_NO_FATAL_FAILURE(Lease(&record, i));
    Now().CompleteItemTask(&record, i, 0, NoIdentities(), "", "", 0);
  }
  ASSERT_EQ(record.request().current_state(), "EraseStores");
  // b goes first (a supplies its identities, c is erased after it).
  // FULL jitter at 0.5: half of 1 s * 2^n.
  int64_t expected_ms[] = {500, 1000, 2000, 4000, 8000, 16000};
  for (int retry = 0; retry < 6; ++retry) {
    ASSERT_NO_FATAL_FAILURE(Lease(&record, kB));
    At(kNow, 0.5).FailItemTask(&record, kB, "Connector.Unavailable", "y");
    ASSERT_EQ(Item(record, kB).phase(), internal::ITEM_RETRY_WAIT);
    EXPECT_EQ(Item(record, kB).not_before_ms(), kNow + expected_ms[retry])
        << "retry " << retry;
    At(kNow).RetryDue(&record, kB);
  }
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kB));
  Now().FailItemTask(&record, kB, "Connector.Unavailable", "y");
  EXPECT_EQ(Item(record, kB).phase(), internal::ITEM_FAILED);
  EXPECT_EQ(Item(record, kB).attempt(), 7u);
}

TEST_F(InterpreterTest, RetryDelayIsCappedByMaxDelaySeconds) {
  absl::StatusOr<std::shared_ptr<const WorkflowDefinition>> custom =
      WorkflowDefinition::Parse(R"json({
        "StartAt": "Export",
        "States": {
          "Export": {
            "Type": "Map", "ItemsPath": "$.stores",
            "Iterator": {"StartAt": "Work", "States": {
              "Work": {"Type": "Task", "Resource": "dsar:worker.export",
                       "Retry": [{"ErrorEquals": ["Connector.Busy"],
                                  "IntervalSeconds": 1, "BackoffRate": 3,
                                  "MaxAttempts": 4, "MaxDelaySeconds": 5,
                                  "JitterStrategy": "NONE"}],
                       "End": true}}},
            "End": true
          }
        }
      })json");
  ASSERT_TRUE(custom.ok()) << custom.status();
  internal::RequestRecord record = NewRecord(v1::ACCESS);
  auto at_now = [&] {
    return Interpreter(
        **custom, inventory_, kNow, [] { return 0.5; }, &events_);
  };
  at_now().Advance(&record);
  int64_t expected_ms[] = {1000, 3000, 5000, 5000};
  for (int retry = 0; retry < 4; ++retry) {
    ASSERT_NO_FATAL_FAILURE(Lease(&record, kA));
    at_now().FailItemTask(&record, kA, "Connector.Busy", "try later");
    ASSERT_EQ(Item(record, kA).phase(), internal::ITEM_RETRY_WAIT);
    EXPECT_EQ(Item(record, kA).not_before_ms(), kNow + expected_ms[retry])
        << "retry " << retry;
    at_now().RetryDue(&record, kA);
  }
  // An error no Retrier names is not retried.
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kB));
  at_now().FailItemTask(&record, kB, "Connector.Denied", "no");
  EXPECT_EQ(Item(record, kB).phase(), internal::ITEM_FAILED);
}

TEST_F(InterpreterTest, HeartbeatTimeoutIsRetriedLikeAnyError) {
  internal::RequestRecord record = NewRecord(v1::ACCESS);
  Now().Advance(&record);
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kC));
  Now().FailItemTask(&record, kC, kErrorHeartbeatTimeout, "lease expired");
  EXPECT_EQ(Item(record, kC).phase(), internal::ITEM_RETRY_WAIT);
}

TEST_F(InterpreterTest, CancelSkipsUnfinishedItems) {
  internal::RequestRecord record = NewRecord(v1::ACCESS);
  Now().Advance(&record);
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kC));
  Now().CompleteItemTask(&record, kC, 0, NoIdentities(), "s", "/p", 1);
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kA));
  TakeEventKinds();

  At(kNow + 1000).Cancel(&record, "withdrawn by the subject");
  EXPECT_EQ(record.request().status(), v1::CANCELLED);
  EXPECT_EQ(record.request().error(), "Request.Cancelled");
  EXPECT_EQ(record.request().cause(), "withdrawn by the subject");
  EXPECT_EQ(record.request().completed_at().seconds(), (kNow + 1000) / 1000);
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_SKIPPED, internal::ITEM_SKIPPED,
                          internal::ITEM_SUCCEEDED));
  EXPECT_THAT(TakeEventKinds(), ElementsAre("cancelled"));

  // Terminal: nothing moves it any more.
  internal::RequestRecord before = record;
  Now().Advance(&record);
  EXPECT_EQ(record.SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(Now().CurrentState(record), nullptr);
  EXPECT_EQ(Now().ItemTaskState(record, kA), nullptr);
}

TEST_F(InterpreterTest, DefaultWorkflowFailsUnsupportedTypes) {
  // Validation refuses such requests; the workflow still fails them rather
  // than guessing.
  internal::RequestRecord record = NewRecord(v1::REQUEST_TYPE_UNSPECIFIED);
  Now().Advance(&record);
  EXPECT_EQ(record.request().status(), v1::FAILED);
  EXPECT_EQ(record.request().error(), "Request.Unimplemented");
  EXPECT_EQ(record.request().current_state(), "Unsupported");
  EXPECT_EQ(record.maps_size(), 0);
  EXPECT_THAT(TakeEventKinds(), ElementsAre("state_entered", "state_entered",
                                            "state_entered", "failed"));
}

TEST_F(InterpreterTest, FailStateEndsTheRequestWithItsErrorAndCause) {
  absl::StatusOr<std::shared_ptr<const WorkflowDefinition>> custom =
      WorkflowDefinition::Parse(R"json({
        "StartAt": "Check",
        "States": {
          "Check": {"Type": "Pass", "Next": "Refuse"},
          "Refuse": {"Type": "Fail", "Error": "Policy.Refused",
                     "Cause": "identity not verified"}
        }
      })json");
  ASSERT_TRUE(custom.ok()) << custom.status();
  internal::RequestRecord record = NewRecord(v1::ACCESS);
  Interpreter interpreter(
      **custom, inventory_, kNow, [] { return 0.5; }, &events_);
  interpreter.Advance(&record);

  EXPECT_EQ(record.request().status(), v1::FAILED);
  EXPECT_EQ(record.request().current_state(), "Refuse");
  EXPECT_EQ(record.request().error(), "Policy.Refused");
  EXPECT_EQ(record.request().cause(), "identity not verified");
  EXPECT_EQ(record.request().completed_at().seconds(), kNow / 1000);
  ASSERT_EQ(events_.size(), 3u);
  EXPECT_EQ(events_[0].kind, "state_entered");
  EXPECT_EQ(events_[0].state, "Check");
  EXPECT_EQ(events_[1].kind, "state_entered");
  EXPECT_EQ(events_[1].state, "Refuse");
  EXPECT_EQ(events_[2].kind, "failed");
  EXPECT_THAT(events_[2].detail, HasSubstr("Policy.Refused"));
}

TEST_F(InterpreterTest, MaxConcurrencyLimitsActiveItems) {
  absl::StatusOr<std::shared_ptr<const WorkflowDefinition>> custom =
      WorkflowDefinition::Parse(R"json({
        "StartAt": "Export",
        "States": {
          "Export": {
            "Type": "Map", "ItemsPath": "$.stores", "MaxConcurrency": 1,
            "Iterator": {"StartAt": "Work", "States": {
              "Work": {"Type": "Task", "Resource": "dsar:worker.export",
                       "End": true}}},
            "End": true
          }
        }
      })json");
  ASSERT_TRUE(custom.ok()) << custom.status();
  internal::RequestRecord record = NewRecord(v1::ACCESS);
  auto at_now = [&] {
    return Interpreter(
        **custom, inventory_, kNow, [] { return 0.5; }, &events_);
  };
  at_now().Advance(&record);
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_READY, internal::ITEM_WAITING,
                          internal::ITEM_WAITING));
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kA));
  at_now().CompleteItemTask(&record, kA, 0, NoIdentities(), "s", "/p", 1);
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_SUCCEEDED, internal::ITEM_READY,
                          internal::ITEM_WAITING));

  // Without a Retry, a failure with no Catch fails the item for good.
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kB));
  at_now().FailItemTask(&record, kB, "Connector.Denied", "no access");
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_SUCCEEDED, internal::ITEM_FAILED,
                          internal::ITEM_READY));
  EXPECT_EQ(Item(record, kB).error(), "Connector.Denied");
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kC));
  at_now().CompleteItemTask(&record, kC, 0, NoIdentities(), "s", "/p", 1);
  EXPECT_EQ(record.request().status(), v1::NEEDS_ATTENTION);
}

TEST_F(InterpreterTest, EventDraftsNameStateStoreAndAttempt) {
  internal::RequestRecord record = NewRecord(v1::ACCESS);
  Now().Advance(&record);
  events_.clear();
  ASSERT_NO_FATAL_FAILURE(Lease(&record, kC));
  Now().FailItemTask(&record, kC, "Connector.Unavailable", "slow");
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[0].kind, "task_failed");
  EXPECT_EQ(events_[0].state, "Export");
  EXPECT_EQ(events_[0].store, "c");
  EXPECT_EQ(events_[0].attempt, 1u);
  EXPECT_EQ(events_[0].detail, "Connector.Unavailable: slow");
  EXPECT_EQ(events_[1].kind, "retry_scheduled");
  EXPECT_THAT(events_[1].detail, HasSubstr("retry 1 of 4"));
}

TEST_F(InterpreterTest, DefaultWorkflowWaitsForTheVerifiedSignal) {
  internal::RequestRecord record = NewRecord(v1::ACCESS, /*verified=*/false);
  Now().Advance(&record);
  EXPECT_EQ(record.request().status(), v1::VERIFYING);
  EXPECT_EQ(record.request().current_state(), "VerifyIdentity");
  EXPECT_EQ(record.maps_size(), 0);
  EXPECT_THAT(TakeEventKinds(), ElementsAre("state_entered"));
  ASSERT_NE(Now().CurrentState(record), nullptr);
  EXPECT_EQ(Now().CurrentState(record)->signal, kSignalIdentityVerified);

  // Time alone does not move it (no code was issued, so no timeout either),
  // nor does another signal.
  record.add_signals("SomethingElse");
  internal::RequestRecord before = record;
  At(kNow + 3'600'000).Advance(&record);
  EXPECT_EQ(record.SerializeAsString(), before.SerializeAsString());
  EXPECT_TRUE(TakeEventKinds().empty());

  // The signal arrives: the workflow runs on to the exports.
  record.add_signals(kSignalIdentityVerified);
  Now().Advance(&record);
  EXPECT_EQ(record.request().status(), v1::RUNNING);
  EXPECT_EQ(record.request().current_state(), "ExportStores");
  ASSERT_EQ(record.maps_size(), 1);
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_READY, internal::ITEM_WAITING,
                          internal::ITEM_READY));
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[0].state, "ChooseRight");
  EXPECT_EQ(events_[1].state, "ExportStores");
}

TEST_F(InterpreterTest, VerificationWaitFailsOnceItsTimerIsDue) {
  internal::RequestRecord record = NewRecord(v1::ERASURE, /*verified=*/false);
  Now().Advance(&record);
  ASSERT_EQ(record.request().status(), v1::VERIFYING);
  // The coordinator sets the code's expiry as the Wait's timer.
  record.set_timer_due_ms(kNow + 1000);
  TakeEventKinds();

  At(kNow + 999).Advance(&record);
  EXPECT_EQ(record.request().status(), v1::VERIFYING);
  EXPECT_TRUE(TakeEventKinds().empty());

  At(kNow + 1000).Advance(&record);
  EXPECT_EQ(record.request().status(), v1::FAILED);
  EXPECT_EQ(record.request().error(), "Identity.VerificationExpired");
  EXPECT_FALSE(record.request().cause().empty());
  EXPECT_EQ(record.request().completed_at().seconds(), (kNow + 1000) / 1000);
  EXPECT_EQ(record.maps_size(), 0);
  EXPECT_THAT(TakeEventKinds(), ElementsAre("failed"));
}

TEST_F(InterpreterTest, RectifyRestrictAndObjectRunAfterDiscovery) {
  struct Case {
    v1::RequestType type;
    std::string map_state;
    std::string task_state;
    std::string_view resource;
  };
  for (const Case& c :
       {Case{v1::RECTIFICATION, "RectifyStores", "Rectify",
             kResourceWorkerRectify},
        Case{v1::RESTRICTION, "RestrictStores", "Restrict",
             kResourceWorkerRestrict},
        Case{v1::OBJECTION, "ObjectStores", "Object", kResourceWorkerObject}}) {
    SCOPED_TRACE(v1::RequestType_Name(c.type));
    internal::RequestRecord record = NewRecord(c.type);
    Now().Advance(&record);
    EXPECT_EQ(record.request().current_state(), "DiscoverIdentities");
    ASSERT_NE(Now().ItemTaskState(record, kA), nullptr);
    EXPECT_EQ(Now().ItemTaskState(record, kA)->resource,
              kResourceWorkerDiscover);
    for (int i : {kA, kC, kB}) {
      ASSERT_NO_FATAL_FAILURE(Lease(&record, i));
      Now().CompleteItemTask(&record, i, 1, NoIdentities(), "", "", 0);
    }

    ASSERT_EQ(record.maps_size(), 2);
    EXPECT_EQ(record.request().current_state(), c.map_state);
    EXPECT_EQ(CurrentRun(record).state(), c.map_state);
    // No order between the stores for these changes.
    EXPECT_THAT(Phases(record),
                ElementsAre(internal::ITEM_READY, internal::ITEM_READY,
                            internal::ITEM_READY));
    for (int i : {kA, kB, kC}) {
      EXPECT_EQ(Item(record, i).state(), c.task_state);
      ASSERT_NE(Now().ItemTaskState(record, i), nullptr);
      EXPECT_EQ(Now().ItemTaskState(record, i)->resource, c.resource);
    }
    for (int i : {kA, kB, kC}) {
      ASSERT_NO_FATAL_FAILURE(Lease(&record, i));
      Now().CompleteItemTask(&record, i, 1, NoIdentities(), "", "", 0);
    }
    EXPECT_EQ(record.request().status(), v1::COMPLETED);
    EXPECT_EQ(record.request().current_state(), "Finalize");
    EXPECT_FALSE(record.request().has_bundle());
  }
}

// Export with a Catch and no Retry (one failure is final), then the bundle.
constexpr char kCatchingExport[] = R"json({
  "StartAt": "ExportStores",
  "States": {
    "ExportStores": {
      "Type": "Map", "ItemsPath": "$.stores",
      "Iterator": {"StartAt": "Export", "States": {
        "Export": {"Type": "Task", "Resource": "dsar:worker.export",
                   "Catch": [{"ErrorEquals": ["States.ALL"],
                              "Next": "StoreFailed"}],
                   "End": true},
        "StoreFailed": {"Type": "Pass", "End": true}}},
      "Next": "Bundle"
    },
    "Bundle": {"Type": "Task", "Resource": "dsar:bundle",
               "Retry": [{"ErrorEquals": ["States.ALL"],
                          "IntervalSeconds": 1, "MaxAttempts": 1}],
               "Next": "Done"},
    "Done": {"Type": "Succeed"}
  }
})json";

class InterpreterRetryTest : public InterpreterTest {
 protected:
  void SetUp() override {
    InterpreterTest::SetUp();
    absl::StatusOr<std::shared_ptr<const WorkflowDefinition>> custom =
        WorkflowDefinition::Parse(kCatchingExport);
    ASSERT_TRUE(custom.ok()) << custom.status();
    definition_ = *custom;
  }

  // An ACCESS request whose exports ran: b failed for good, a and c
  // succeeded; it stopped at ExportStores for an operator.
  internal::RequestRecord ExportedWithBFailed() {
    internal::RequestRecord record = NewRecord(v1::ACCESS);
    Now().Advance(&record);
    Lease(&record, kA);
    Now().CompleteItemTask(&record, kA, 2, NoIdentities(), "sha-a", "/a", 1);
    Lease(&record, kB);
    Now().FailItemTask(&record, kB, "Connector.Unavailable", "down");
    Lease(&record, kC);
    Now().CompleteItemTask(&record, kC, 3, NoIdentities(), "sha-c", "/c", 1);
    events_.clear();
    return record;
  }
};

TEST_F(InterpreterRetryTest, RerunsOnlyTheFailedItemsOfTheMap) {
  // Still running: nothing to resume, and nothing changes.
  internal::RequestRecord running = NewRecord(v1::ACCESS);
  Now().Advance(&running);
  internal::RequestRecord before = running;
  absl::Status refused = Now().Retry(&running, {}, "");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_EQ(running.SerializeAsString(), before.SerializeAsString());

  internal::RequestRecord record = ExportedWithBFailed();
  ASSERT_EQ(Item(record, kB).phase(), internal::ITEM_FAILED);
  ASSERT_EQ(record.request().status(), v1::NEEDS_ATTENTION);
  ASSERT_EQ(record.request().current_state(), "ExportStores");

  // Only succeeded parts in the named stores: nothing to retry.
  before = record;
  absl::Status nothing = Now().Retry(&record, {"a", "c"}, "");
  EXPECT_EQ(nothing.code(), absl::StatusCode::kFailedPrecondition) << nothing;
  EXPECT_EQ(record.SerializeAsString(), before.SerializeAsString());
  EXPECT_TRUE(events_.empty());

  Interpreter retry = At(kNow + 5000);
  retry.set_actor("ops@example.com");
  ASSERT_TRUE(retry.Retry(&record, {"b"}, "orders db is back").ok());
  EXPECT_EQ(record.request().status(), v1::RUNNING);
  EXPECT_EQ(record.request().current_state(), "ExportStores");
  EXPECT_TRUE(record.request().error().empty());
  EXPECT_FALSE(record.request().has_completed_at());
  // A new run of the Map; the first keeps its history.
  ASSERT_EQ(record.maps_size(), 2);
  EXPECT_EQ(record.maps(0).items(kB).phase(), internal::ITEM_FAILED);
  EXPECT_EQ(CurrentRun(record).state(), "ExportStores");
  EXPECT_THAT(Phases(record),
              ElementsAre(internal::ITEM_SUCCEEDED, internal::ITEM_READY,
                          internal::ITEM_SUCCEEDED));
  EXPECT_EQ(Item(record, kA).artifact_sha256(), "sha-a");
  EXPECT_EQ(Item(record, kC).record_count(), 3);
  EXPECT_EQ(Item(record, kB).state(), "Export");
  EXPECT_TRUE(Item(record, kB).error().empty());
  // The fencing token keeps growing across runs.
  EXPECT_EQ(Item(record, kB).attempt(), 1u);
  ASSERT_FALSE(events_.empty());
  EXPECT_EQ(events_[0].kind, "retried");
  EXPECT_EQ(events_[0].state, "ExportStores");
  EXPECT_EQ(events_[0].actor, "ops@example.com");
  EXPECT_EQ(events_[0].detail, "stores=b");
  EXPECT_EQ(events_[0].note, "orders db is back");

  ASSERT_NO_FATAL_FAILURE(Lease(&record, kB));
  EXPECT_EQ(Item(record, kB).attempt(), 2u);
  Now().CompleteItemTask(&record, kB, 1, NoIdentities(), "sha-b", "/b", 1);
  EXPECT_EQ(record.request().current_state(), "Bundle");
  EXPECT_EQ(record.request().status(), v1::RUNNING);
  Now().CompleteBuiltin(&record, "bundle sha256=second");
  EXPECT_EQ(record.request().status(), v1::COMPLETED);

  // Nothing failed any more.
  EXPECT_EQ(Now().Retry(&record, {}, "").code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(InterpreterRetryTest, RerunsAFailedBuiltinButNotACancelledRequest) {
  internal::RequestRecord record = NewRecord(v1::ACCESS);
  Now().Advance(&record);
  for (int item : {kA, kB, kC}) {
    ASSERT_NO_FATAL_FAILURE(Lease(&record, item));
    Now().CompleteItemTask(&record, item, 1, NoIdentities(), "s", "/p", 1);
  }
  ASSERT_EQ(record.request().current_state(), "Bundle");
  Now().FailBuiltin(&record, "Bundle.Failed", "disk full");
  ASSERT_EQ(record.request().status(), v1::RUNNING);  // One retry allowed.
  Now().FailBuiltin(&record, "Bundle.Failed", "disk full");
  ASSERT_EQ(record.request().status(), v1::FAILED);
  EXPECT_EQ(record.request().current_state(), "Bundle");
  events_.clear();

  // No store failed: naming one finds nothing; the bundle runs again.
  internal::RequestRecord fixed = record;
  EXPECT_EQ(Now().Retry(&fixed, {"b"}, "").code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Now().Retry(&fixed, {}, "").ok());
  EXPECT_EQ(fixed.request().status(), v1::RUNNING);
  EXPECT_EQ(fixed.request().current_state(), "Bundle");
  EXPECT_TRUE(fixed.request().error().empty());
  EXPECT_EQ(fixed.maps_size(), 1);
  EXPECT_EQ(fixed.timer_due_ms(), 0);
  EXPECT_THAT(TakeEventKinds(), ElementsAre("retried"));
  // Its retries start over.
  Now().FailBuiltin(&fixed, "Bundle.Failed", "disk full");
  EXPECT_EQ(fixed.request().status(), v1::RUNNING);
  EXPECT_THAT(TakeEventKinds(), ElementsAre("task_failed", "retry_scheduled"));

  internal::RequestRecord stopped = ExportedWithBFailed();
  Now().Cancel(&stopped, "withdrawn");
  EXPECT_EQ(Now().Retry(&stopped, {}, "").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stopped.request().status(), v1::CANCELLED);
}

}  // namespace
}  // namespace dsar
