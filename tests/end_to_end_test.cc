// End to end over the wire: sample stores, dsard and two dsar-worker
// processes; an access request produces a verifiable bundle, an erasure
// removes the subject from every store and nobody else; bad input and bad
// configuration are refused with messages naming the culprit.

#include <sqlite3.h>
#include <sys/stat.h>
#include <zip.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/sha256.h"
#include "dsar/v1/worker.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/bundle_download.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"
#include "tests/testing/jsonl_records.h"
#include "tests/zip_entries.h"

namespace dsar::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

const std::vector<std::string> kStores = {"accounts", "orders", "marketing",
                                          "activity"};

// Rows of the subject with user id `user` in each sample store, read
// straight from the files.
class StoreContents {
 public:
  explicit StoreContents(std::string dir) : dir_(std::move(dir)) {}

  std::map<std::string, int64_t> CountsFor(int user) const {
    std::string id = std::to_string(user);
    std::string email = absl::StrCat("person", user, "@example.com");
    return {
        {"accounts", Count("accounts.db",
                           "SELECT count(*) FROM users WHERE id = ?1 OR "
                           "lower(email) = ?2",
                           id, email)},
        {"orders", Count("shop.db",
                         "SELECT (SELECT count(*) FROM orders WHERE user_id = "
                         "?1) + (SELECT count(*) FROM addresses WHERE user_id "
                         "= ?1)",
                         id, email)},
        {"marketing", Count("marketing.db",
                            "SELECT count(*) FROM subscribers WHERE "
                            "lower(email) = ?2",
                            id, email)},
        {"activity", ActivityLines(user)},
    };
  }

 private:
  // Runs a count query with ?1 = user id (as an integer) and ?2 = email;
  // -1 when the query fails (reported as a test failure).
  int64_t Count(const std::string& file, const std::string& sql,
                const std::string& id, const std::string& email) const {
    std::string path = absl::StrCat(dir_, "/", file);
    sqlite3* db = nullptr;
    int64_t count = -1;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
        SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) ==
          SQLITE_OK) {
        sqlite3_bind_int64(stmt, 1, std::stoll(id));
        sqlite3_bind_text(stmt, 2, email.c_str(), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(stmt) == SQLITE_ROW)
          count = sqlite3_column_int64(stmt, 0);
      }
      sqlite3_finalize(stmt);
    }
    if (count < 0)
      ADD_FAILURE() << path << ": " << sql << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return count;
  }

  int64_t ActivityLines(int user) const {
    int64_t count = 0;
    for (const nlohmann::json& event : dsar::testing::ReadJsonlRecords(
             absl::StrCat(dir_, "/activity.jsonl"))) {
      if (!event.contains("user_id")) {
        ADD_FAILURE() << "activity.jsonl: no user_id in " << event.dump();
        continue;
      }
      const nlohmann::json& id = event["user_id"];
      if ((id.is_number_integer() && id.get<int64_t>() == user) ||
          (id.is_string() && id.get<std::string>() == std::to_string(user))) {
        ++count;
      }
    }
    return count;
  }

  std::string dir_;
};

class EndToEndTest : public ::testing::Test {
 protected:
  EndToEndTest() : dir_("dsar-e2e") {}

  void SetUp() override {
    absl::StatusOr<std::string> inventory =
        GenerateSampleStores(dir_.Join("stores"), 300);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = *inventory;
  }

  // Starts dsard; its port is dsard_.port.
  void StartCoordinator() {
    DsardOptions options;
    options.data_dir = dir_.Join("data");
    options.inventory = inventory_;
    options.lease_seconds = 5;
    absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir_.path());
    ASSERT_TRUE(dsard.ok()) << dsard.status();
    dsard_ = std::move(*dsard);
    channel_ = LoopbackChannel(dsard_.port);
    stub_ = v1::DsarService::NewStub(channel_);
  }

  void StartWorkers() {
    WorkerOptions options;
    options.coordinator_port = dsard_.port;
    options.inventory = inventory_;
    options.worker_id = "worker-1";
    options.stores = {"accounts", "orders"};
    absl::StatusOr<std::unique_ptr<Process>> first =
        StartWorker(options, dir_.path());
    ASSERT_TRUE(first.ok()) << first.status();
    options.worker_id = "worker-2";
    options.stores = {"marketing", "activity"};
    absl::StatusOr<std::unique_ptr<Process>> second =
        StartWorker(options, dir_.path());
    ASSERT_TRUE(second.ok()) << second.status();
    workers_.push_back(std::move(*first));
    workers_.push_back(std::move(*second));
  }

  grpc::Status Create(const v1::CreateRequestRequest& request,
                      v1::Request* created) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return stub_->CreateRequest(&context, request, created);
  }

  // Runs dsard with --listen=127.0.0.1:0 and `args` until it exits, expects
  // it to have refused to start, and returns what it logged (to `log_name`
  // in the test's directory).
  std::string LogOfRefusedDsard(const std::vector<std::string>& args,
                                const std::string& log_name) {
    std::string log = dir_.Join(log_name);
    std::vector<std::string> all = {"--listen=127.0.0.1:0"};
    all.insert(all.end(), args.begin(), args.end());
    absl::StatusOr<int> code =
        RunToExit(DsardPath(), all, log, absl::Seconds(30));
    EXPECT_TRUE(code.ok()) << code.status();
    if (code.ok()) EXPECT_NE(*code, 0) << "dsard started";
    return ReadFileOrEmpty(log);
  }

  // Submits a request and waits until it is terminal.
  v1::Request Run(v1::RequestType type, const std::string& email,
                  const std::string& key) {
    v1::Request created;
    grpc::Status status = Create(RequestForEmail(type, email, key), &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    absl::StatusOr<v1::Request> done =
        WaitUntilTerminal(*stub_, created.id(), absl::Seconds(60));
    EXPECT_TRUE(done.ok()) << done.status();
    return done.ok() ? *done : created;
  }

  TempDir dir_;
  std::string inventory_;
  RunningDsard dsard_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::DsarService::Stub> stub_;
  std::vector<std::unique_ptr<Process>> workers_;
};

TEST_F(EndToEndTest, AccessThenErasureOfOnePerson) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());
  StoreContents contents(dir_.Join("stores"));
  std::map<std::string, int64_t> before42 = contents.CountsFor(42);
  std::map<std::string, int64_t> before43 = contents.CountsFor(43);
  for (const std::string& store : kStores) {
    ASSERT_GT(before42[store], 0) << "sample data lacks person42 in " << store;
  }

  // Access first, so the export sees the data the erasure removes.
  v1::Request access = Run(v1::ACCESS, "person42@example.com", "e2e-access-42");
  ASSERT_EQ(access.status(), v1::COMPLETED) << access.ShortDebugString();
  std::set<std::string> exported;
  for (const v1::StoreStep& step : access.steps()) {
    EXPECT_EQ(step.status(), v1::SUCCEEDED) << step.ShortDebugString();
    EXPECT_GT(step.record_count(), 0) << step.ShortDebugString();
    exported.insert(step.store());
  }
  EXPECT_EQ(exported, std::set<std::string>(kStores.begin(), kStores.end()));

  // The bundle, downloaded as clients get it (docs/delivery.md): a
  // manifest whose hashes match the data files.
  absl::StatusOr<std::string> zip = DownloadBundleBytes(*stub_, access.id());
  ASSERT_TRUE(zip.ok()) << zip.status();
  absl::StatusOr<std::map<std::string, std::string>> entries =
      ReadZipBytes(*zip);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_EQ(access.bundle().sha256(), Sha256Hex(*zip));
  ASSERT_TRUE(entries->count("manifest.json"));
  nlohmann::json manifest =
      nlohmann::json::parse((*entries)["manifest.json"], nullptr, false);
  ASSERT_FALSE(manifest.is_discarded()) << (*entries)["manifest.json"];
  EXPECT_EQ(manifest.value("request_id", ""), access.id());
  EXPECT_EQ(manifest.value("request_type", ""), "ACCESS");
  ASSERT_TRUE(manifest["files"].is_object()) << manifest.dump();
  ASSERT_TRUE(manifest["stores"].is_array()) << manifest.dump();
  // Every listed file is in the ZIP with the listed hash: the four exports
  // and the Art. 15 answer (response.md, response.html, exemptions.json).
  EXPECT_EQ(manifest["files"].size(), kStores.size() + 3) << manifest.dump();
  for (const auto& [name, sha] : manifest["files"].items()) {
    ASSERT_TRUE(entries->count(name))
        << name << " listed but not in the bundle";
    EXPECT_EQ(Sha256Hex((*entries)[name]), sha.get<std::string>()) << name;
  }
  for (const char* name : {"response.md", "response.html", "exemptions.json"}) {
    ASSERT_TRUE(entries->count(name)) << name << " missing from the bundle";
  }
  EXPECT_THAT((*entries)["response.md"], HasSubstr("supervisory authority"));

  EXPECT_EQ(manifest["stores"].size(), kStores.size()) << manifest.dump();
  for (const std::string& store : kStores) {
    std::string name = absl::StrCat("data/", store, ".json");
    ASSERT_TRUE(entries->count(name)) << name << " missing from the bundle";
    const std::string& data = (*entries)[name];
    EXPECT_FALSE(nlohmann::json::parse(data, nullptr, false).is_discarded())
        << name << " is not JSON";
    std::string sha = Sha256Hex(data);
    EXPECT_EQ(manifest["files"].value(name, ""), sha) << name;
    bool listed = false;
    for (const nlohmann::json& entry : manifest["stores"]) {
      if (entry.value("store", "") != store) continue;
      listed = true;
      EXPECT_EQ(entry.value("status", ""), "SUCCEEDED") << entry.dump();
      EXPECT_EQ(entry.value("file", ""), name) << entry.dump();
      EXPECT_EQ(entry.value("sha256", ""), sha) << entry.dump();
      EXPECT_GT(entry.value("record_count", int64_t{0}), 0) << entry.dump();
    }
    EXPECT_TRUE(listed) << store << " not in the manifest's stores";
  }

  v1::Request erasure =
      Run(v1::ERASURE, "person42@example.com", "e2e-erasure-42");
  ASSERT_EQ(erasure.status(), v1::COMPLETED) << erasure.ShortDebugString();
  int erase_steps = 0;
  for (const v1::StoreStep& step : erasure.steps()) {
    EXPECT_EQ(step.status(), v1::SUCCEEDED) << step.ShortDebugString();
    // An erase step reports its rows per table, summing to record_count.
    if (step.task_state() != "Erase") continue;
    EXPECT_GT(step.erasures_size(), 0) << step.ShortDebugString();
    int64_t rows = 0;
    for (const v1::CollectionErasure& erasure : step.erasures()) {
      EXPECT_FALSE(erasure.collection().empty());
      rows += erasure.rows_deleted() + erasure.rows_masked();
    }
    EXPECT_EQ(rows, step.record_count()) << step.ShortDebugString();
    EXPECT_GT(rows, 0) << step.ShortDebugString();
    ++erase_steps;
  }
  EXPECT_EQ(erase_steps, static_cast<int>(kStores.size()));
  std::map<std::string, int64_t> after42 = contents.CountsFor(42);
  std::map<std::string, int64_t> after43 = contents.CountsFor(43);
  for (const std::string& store : kStores) {
    EXPECT_EQ(after42[store], 0) << "person42 still in " << store;
    EXPECT_EQ(after43[store], before43[store])
        << "erasing person42 changed person43's data in " << store;
  }
  EXPECT_GT(after43["accounts"], 0);
  EXPECT_GT(after43["activity"], 0);

  // SIGTERM stops every program cleanly.
  for (std::unique_ptr<Process>& worker : workers_) {
    EXPECT_EQ(worker->Terminate(), 0) << ReadFileOrEmpty(worker->log_path());
  }
  EXPECT_EQ(dsard_.process->Terminate(), 0)
      << ReadFileOrEmpty(dsard_.process->log_path());
}

TEST_F(EndToEndTest, BadInputIsRejectedAndNothingIsStored) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  v1::Request good;
  ASSERT_TRUE(
      Create(RequestForEmail(v1::ACCESS, "person1@example.com", "e2e-good-1"),
             &good)
          .ok());

  struct Case {
    std::string name;
    v1::CreateRequestRequest request;
    std::string field;  // The message must name it.
  };
  std::vector<Case> cases;
  {
    Case c{"unknown type", RequestForEmail(v1::ACCESS, "a@example.com", ""),
           "type"};
    c.request.set_type(static_cast<v1::RequestType>(99));
    cases.push_back(c);
  }
  {
    Case c{"no identity", RequestForEmail(v1::ACCESS, "a@example.com", ""),
           "identities"};
    c.request.clear_identities();
    cases.push_back(c);
  }
  cases.push_back({"malformed email",
                   RequestForEmail(v1::ERASURE, "not-an-email", ""),
                   "identities[0].value"});
  {
    Case c{"unknown store", RequestForEmail(v1::ACCESS, "a@example.com", ""),
           "stores[0]"};
    c.request.add_stores("invoices");
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::Request created;
    grpc::Status status = Create(c.request, &created);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.field));
  }

  // The good request's key reused for another subject is refused too.
  v1::Request reused;
  grpc::Status reuse =
      Create(RequestForEmail(v1::ACCESS, "person2@example.com", "e2e-good-1"),
             &reused);
  EXPECT_EQ(reuse.error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << reuse.error_message() << " " << reused.ShortDebugString();

  absl::StatusOr<std::vector<v1::Request>> listed = ListAllRequests(*stub_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::vector<std::string> ids;
  for (const v1::Request& request : *listed) ids.push_back(request.id());
  EXPECT_THAT(ids, UnorderedElementsAre(good.id()));
}

TEST_F(EndToEndTest, CompletingATaskWithoutItsLeaseIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  v1::Request created;
  ASSERT_TRUE(Create(RequestForEmail(v1::ACCESS, "person5@example.com",
                                     "e2e-impostor-5"),
                     &created)
                  .ok());
  absl::StatusOr<std::vector<v1::Event>> before =
      ListAllEvents(*stub_, created.id());
  ASSERT_TRUE(before.ok()) << before.status();

  auto worker_stub = v1::WorkerService::NewStub(channel_);
  v1::CompleteTaskRequest complete;
  complete.set_worker_id("impostor");
  complete.set_task_id(absl::StrCat(created.id(), "/0/0"));
  complete.set_attempt(7);
  complete.set_record_count(1000);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::CompleteTaskResponse response;
  grpc::Status status =
      worker_stub->CompleteTask(&context, complete, &response);
  EXPECT_THAT(status.error_code(),
              ::testing::AnyOf(grpc::StatusCode::FAILED_PRECONDITION,
                               grpc::StatusCode::NOT_FOUND))
      << status.error_message();

  absl::StatusOr<std::vector<v1::Event>> after =
      ListAllEvents(*stub_, created.id());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->size(), before->size()) << "the refused call left events";
  for (const v1::Event& event : *after) {
    EXPECT_NE(event.kind(), "task_completed") << event.ShortDebugString();
  }
}

// A PollTask request of worker "w" for the 4 sample stores, waiting 5 s.
v1::PollTaskRequest PollOfSampleStores() {
  v1::PollTaskRequest poll;
  poll.set_worker_id("w");
  for (const char* store : {"accounts", "orders", "marketing", "activity"}) {
    poll.add_stores(store);
  }
  poll.set_wait_ms(5000);
  return poll;
}

// Polls once with `poll`; fails the test unless a task was leased.
void PollOnce(v1::WorkerService::Stub& stub, const v1::PollTaskRequest& poll,
              v1::PollTaskResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::Status status = stub.PollTask(&context, poll, response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(response->has_task());
}

// How many of `events` are of `kind`.
int EventsOfKind(const std::vector<v1::Event>& events,
                 const std::string& kind) {
  return static_cast<int>(std::count_if(
      events.begin(), events.end(),
      [&](const v1::Event& event) { return event.kind() == kind; }));
}

// A completion of `task` by worker "w", nothing more.
v1::TaskReport CompletionOf(const v1::Task& task) {
  v1::TaskReport report;
  report.mutable_complete()->set_worker_id("w");
  report.mutable_complete()->set_task_id(task.task_id());
  report.mutable_complete()->set_attempt(task.attempt());
  return report;
}

// A ReportTasks stream: Send writes a message and reads its answer.
class ReportStreamOfTest {
 public:
  explicit ReportStreamOfTest(v1::WorkerService::Stub& stub) {
    context_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    stream_ = stub.ReportTasks(&context_);
  }
  v1::TaskReportAnswer Send(const v1::TaskReport& report) {
    v1::TaskReportAnswer answer;
    EXPECT_TRUE(stream_->Write(report));
    EXPECT_TRUE(stream_->Read(&answer));
    return answer;
  }
  // Ends the stream from the worker's side; dsard must end it OK.
  void Close() {
    EXPECT_TRUE(stream_->WritesDone());
    grpc::Status finished = stream_->Finish();
    EXPECT_TRUE(finished.ok()) << finished.error_message();
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::TaskReport, v1::TaskReportAnswer>>
      stream_;
};

// CompleteTaskRequest.next: the completion is recorded, then the call leases
// the next task as PollTask would; a poll that cannot be served leaves the
// completion standing.
TEST_F(EndToEndTest, ACompletionCarriesTheNextTask) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  v1::Request created;
  ASSERT_TRUE(Create(RequestForEmail(v1::ERASURE, "person6@example.com",
                                     "e2e-next-task-6"),
                     &created)
                  .ok());
  auto worker_stub = v1::WorkerService::NewStub(channel_);
  const v1::PollTaskRequest poll = PollOfSampleStores();
  v1::PollTaskResponse first;
  ASSERT_NO_FATAL_FAILURE(PollOnce(*worker_stub, poll, &first));
  ASSERT_EQ(first.task().store(), "accounts");  // The others need its answer.

  auto complete = [&](const v1::Task& task, const v1::PollTaskRequest& next,
                      v1::CompleteTaskResponse* response) {
    v1::CompleteTaskRequest request;
    request.set_worker_id("w");
    request.set_task_id(task.task_id());
    request.set_attempt(task.attempt());
    *request.mutable_next() = next;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return worker_stub->CompleteTask(&context, request, response);
  };
  v1::CompleteTaskResponse answered;
  grpc::Status status = complete(first.task(), poll, &answered);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(answered.has_next_task());
  const v1::Task& second = answered.next_task();
  EXPECT_EQ(second.request_id(), created.id());
  EXPECT_NE(second.store(), "accounts");
  EXPECT_EQ(second.operation(), "discover");

  // Completing the first again is refused, and leases nothing.
  v1::CompleteTaskResponse refused;
  EXPECT_EQ(complete(first.task(), poll, &refused).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_FALSE(refused.has_next_task());

  // A next poll naming a store the inventory lacks: the completion stands.
  v1::PollTaskRequest unknown = poll;
  unknown.add_stores("no-such-store");
  v1::CompleteTaskResponse without_next;
  status = complete(second, unknown, &without_next);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(without_next.has_next_task());
  absl::StatusOr<std::vector<v1::Event>> events =
      ListAllEvents(*stub_, created.id());
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(EventsOfKind(*events, "task_completed"), 2);
}

// ReportTasks: every report on the stream gets the answer its unary call
// would, in order, and a refused one leaves the stream usable.
TEST_F(EndToEndTest, ReportTasksAnswersEachReportAsItsUnaryCallWould) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  v1::Request created;
  ASSERT_TRUE(Create(RequestForEmail(v1::ERASURE, "person7@example.com",
                                     "e2e-report-stream-7"),
                     &created)
                  .ok());
  auto worker_stub = v1::WorkerService::NewStub(channel_);
  const v1::PollTaskRequest poll = PollOfSampleStores();
  v1::PollTaskResponse first;
  ASSERT_NO_FATAL_FAILURE(PollOnce(*worker_stub, poll, &first));

  ReportStreamOfTest stream(*worker_stub);
  v1::TaskReport completion = CompletionOf(first.task());
  *completion.mutable_complete()->mutable_next() = poll;
  v1::TaskReportAnswer completed = stream.Send(completion);
  EXPECT_EQ(completed.code(), grpc::StatusCode::OK) << completed.message();
  ASSERT_TRUE(completed.has_next_task());
  EXPECT_EQ(completed.next_task().request_id(), created.id());

  // The same completion again: refused as CompleteTask refuses it.
  v1::TaskReportAnswer again = stream.Send(completion);
  EXPECT_EQ(again.code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(again.message(), HasSubstr(first.task().task_id()));
  EXPECT_FALSE(again.has_next_task());

  v1::TaskReportAnswer empty = stream.Send(v1::TaskReport());
  EXPECT_EQ(empty.code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(empty.message(), HasSubstr("report"));

  // The stream still carries reports: the next task fails.
  v1::TaskReport failure;
  failure.mutable_fail()->set_worker_id("w");
  failure.mutable_fail()->set_task_id(completed.next_task().task_id());
  failure.mutable_fail()->set_attempt(completed.next_task().attempt());
  failure.mutable_fail()->set_error("Connector.Unavailable");
  failure.mutable_fail()->set_cause("store down for the test");
  v1::TaskReportAnswer failed = stream.Send(failure);
  EXPECT_EQ(failed.code(), grpc::StatusCode::OK) << failed.message();
  stream.Close();

  absl::StatusOr<std::vector<v1::Event>> events =
      ListAllEvents(*stub_, created.id());
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(EventsOfKind(*events, "task_completed"), 1);
  EXPECT_EQ(EventsOfKind(*events, "task_failed"), 1);
}

// Batches over the wire: a poll's max_tasks leases the tasks that are ready
// together (PollTaskResponse.more_tasks, TaskReportAnswer.more_next_tasks),
// and one ReportTasks message reports several, each answered in `more`.
TEST_F(EndToEndTest, ReportTasksTakesAndAnswersBatches) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  v1::Request created;
  ASSERT_TRUE(Create(RequestForEmail(v1::ERASURE, "person8@example.com",
                                     "e2e-report-batch-8"),
                     &created)
                  .ok());
  auto worker_stub = v1::WorkerService::NewStub(channel_);
  v1::PollTaskRequest poll = PollOfSampleStores();
  poll.set_max_tasks(8);
  {
    v1::PollTaskRequest too_many = poll;
    too_many.set_max_tasks(17);
    grpc::ClientContext context;
    v1::PollTaskResponse response;
    grpc::Status refused = worker_stub->PollTask(&context, too_many, &response);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(refused.error_message(), HasSubstr("max_tasks"));
  }
  v1::PollTaskResponse first;
  ASSERT_NO_FATAL_FAILURE(PollOnce(*worker_stub, poll, &first));
  ASSERT_EQ(first.task().store(), "accounts");  // The others need its answer.
  EXPECT_EQ(first.more_tasks_size(), 0);

  ReportStreamOfTest stream(*worker_stub);
  v1::TaskReport accounts = CompletionOf(first.task());
  *accounts.mutable_complete()->mutable_next() = poll;
  v1::TaskReportAnswer answered = stream.Send(accounts);
  ASSERT_EQ(answered.code(), grpc::StatusCode::OK) << answered.message();
  // The three other stores' discoveries, leased together.
  ASSERT_TRUE(answered.has_next_task());
  ASSERT_EQ(answered.more_next_tasks_size(), 2);
  std::vector<v1::Task> discoveries = {answered.next_task(),
                                       answered.more_next_tasks(0),
                                       answered.more_next_tasks(1)};

  // Only the first report may carry `more` or `next`: refused whole.
  v1::TaskReport nested_next = CompletionOf(discoveries[0]);
  *nested_next.add_more() = CompletionOf(discoveries[1]);
  *nested_next.mutable_more(0)->mutable_complete()->mutable_next() = poll;
  v1::TaskReportAnswer misshapen = stream.Send(nested_next);
  EXPECT_EQ(misshapen.code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(misshapen.message(), HasSubstr("more[0]"));
  ASSERT_EQ(misshapen.more_size(), 1);
  EXPECT_EQ(misshapen.more(0).code(), grpc::StatusCode::INVALID_ARGUMENT);

  // One message for the three; the second names an attempt not held.
  v1::TaskReport batch = CompletionOf(discoveries[0]);
  *batch.add_more() = CompletionOf(discoveries[1]);
  batch.mutable_more(0)->mutable_complete()->set_attempt(9);
  *batch.add_more() = CompletionOf(discoveries[2]);
  v1::TaskReportAnswer batch_answer = stream.Send(batch);
  EXPECT_EQ(batch_answer.code(), grpc::StatusCode::OK)
      << batch_answer.message();
  ASSERT_EQ(batch_answer.more_size(), 2);
  EXPECT_EQ(batch_answer.more(0).code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(batch_answer.more(0).message(),
              HasSubstr(discoveries[1].task_id()));
  EXPECT_EQ(batch_answer.more(1).code(), grpc::StatusCode::OK)
      << batch_answer.more(1).message();
  stream.Close();

  absl::StatusOr<std::vector<v1::Event>> events =
      ListAllEvents(*stub_, created.id());
  ASSERT_TRUE(events.ok()) << events.status();
  // accounts, and two of the three others.
  EXPECT_EQ(EventsOfKind(*events, "task_completed"), 3);
}

// The sample shop's stores as null stores (docs/inventory.md): the engine
// runs every step, each worker answers at once, and the outcome says that
// nothing was found or erased, which is the truth for a store with no data.
TEST_F(EndToEndTest, AnErasureOverNullStoresCompletesHavingErasedNothing) {
  std::string path = dir_.Join("stores/null-inventory.yaml");
  std::ofstream(path) << R"yaml(
stores:
  - name: accounts
    kind: "null"
    identity_fields: {email: email}
    erase_after: [orders, marketing, activity]
  - name: orders
    kind: "null"
    identity_fields: {email: email}
    identities_from: [accounts]
  - name: marketing
    kind: "null"
    identity_fields: {email: email}
    identities_from: [accounts]
  - name: activity
    kind: "null"
    identity_fields: {email: email}
    identities_from: [accounts]
)yaml";
  inventory_ = path;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());

  v1::Request erasure =
      Run(v1::ERASURE, "person42@example.com", "e2e-null-erasure");
  ASSERT_EQ(erasure.status(), v1::COMPLETED) << erasure.ShortDebugString();
  // Discover and erase in each of the four stores, by the workers.
  ASSERT_EQ(erasure.steps_size(), 2 * static_cast<int>(kStores.size()))
      << erasure.ShortDebugString();
  std::set<std::string> erased;
  for (const v1::StoreStep& step : erasure.steps()) {
    EXPECT_EQ(step.status(), v1::SUCCEEDED) << step.ShortDebugString();
    EXPECT_EQ(step.record_count(), 0) << step.ShortDebugString();
    EXPECT_THAT(step.worker_id(), ::testing::StartsWith("worker-"))
        << step.ShortDebugString();
    for (const v1::CollectionErasure& collection : step.erasures()) {
      EXPECT_EQ(collection.rows_deleted() + collection.rows_masked(), 0);
      erased.insert(step.store());
    }
  }
  EXPECT_EQ(erased, std::set<std::string>(kStores.begin(), kStores.end()));
  // A null store never goes unnoticed in dsard's log.
  EXPECT_THAT(ReadFileOrEmpty(dsard_.process->log_path()),
              HasSubstr("store accounts is a null store"));
}

// Adds the ids of process `pid`'s threads now (/proc/PID/task) to `threads`.
void AddThreadsOf(pid_t pid, std::set<std::string>* threads) {
  std::error_code error;
  for (std::filesystem::directory_iterator
           it(absl::StrCat("/proc/", pid, "/task"), error),
       end;
       !error && it != end; it.increment(error)) {
    threads->insert(it->path().filename().string());
  }
}

// Callers that wait in dsard on its synchronous API, here workers'
// long polls with nothing to lease, each hold a thread of its gRPC server.
// gRPC keeps 2 idle by default and ended the others as their calls were
// answered, so dsard started a thread for nearly every call under load; its
// threads are now kept for the next. (Creates waited for their commit the
// same way until they moved to the callback API.)
TEST_F(EndToEndTest, DsardKeepsItsThreadsForConcurrentCallers) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kCallers = 16;
  constexpr int kCallsEach = 25;
  auto worker_stub = v1::WorkerService::NewStub(channel_);
  auto burst = [&](const std::string& round) {
    std::vector<std::thread> callers;
    for (int caller = 0; caller < kCallers; ++caller) {
      callers.emplace_back([&, caller] {
        v1::PollTaskRequest poll = PollOfSampleStores();
        poll.set_worker_id(absl::StrCat("churn-", round, "-", caller));
        poll.set_wait_ms(10);
        for (int call = 0; call < kCallsEach; ++call) {
          grpc::ClientContext context;
          v1::PollTaskResponse response;
          grpc::Status status =
              worker_stub->PollTask(&context, poll, &response);
          EXPECT_TRUE(status.ok()) << status.error_message();
          EXPECT_FALSE(response.has_task());
        }
      });
    }
    for (std::thread& thread : callers) thread.join();
  };
  const pid_t pid = dsard_.process->pid();
  burst("warm-up");  // The server grows to the callers' number.
  std::set<std::string> before;
  AddThreadsOf(pid, &before);
  // A thread started and ended within the burst is gone by its end: the
  // threads are listed all along.
  std::set<std::string> seen = before;
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done.load()) AddThreadsOf(pid, &seen);
  });
  burst("measured");
  done = true;
  watcher.join();
  AddThreadsOf(pid, &seen);
  const int started = static_cast<int>(seen.size() - before.size());
  // Without the idle threads kept, a few hundred here (one per call or so);
  // a handful of gRPC's own helpers may come and go.
  EXPECT_LT(started, 8) << "threads started during " << kCallers * kCallsEach
                        << " concurrent long polls";
}

TEST_F(EndToEndTest, DsardRefusesInventoryWithUnknownEraseAfterStore) {
  std::string text = ReadFileOrEmpty(inventory_);
  std::string broken =
      absl::StrReplaceAll(text, {{"erase_after: [orders, activity, marketing]",
                                  "erase_after: [orders, invoices]"}});
  ASSERT_NE(broken, text) << "sample inventory changed shape";
  std::string path = dir_.Join("stores/broken-inventory.yaml");
  std::ofstream(path) << broken;

  std::string output =
      LogOfRefusedDsard({absl::StrCat("--data_dir=", dir_.Join("data")),
                         absl::StrCat("--inventory=", path)},
                        "dsard-bad-inventory.log");
  EXPECT_THAT(output, HasSubstr("erase_after"));
  EXPECT_THAT(output, HasSubstr("invoices"));
}

TEST_F(EndToEndTest, DsardAlsoServesItsUnixSocketToItsOwnUserOnly) {
  const std::string socket = dir_.Join("dsard.sock");
  DsardOptions options;
  options.data_dir = dir_.Join("data");
  options.inventory = inventory_;
  options.extra_args = {absl::StrCat("--listen_unix=", socket)};
  absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir_.path());
  ASSERT_TRUE(dsard.ok()) << dsard.status();
  dsard_ = std::move(*dsard);

  struct stat info;
  ASSERT_EQ(::stat(socket.c_str(), &info), 0) << socket;
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0700u);

  // A request created over the socket is the one read over TCP.
  std::unique_ptr<v1::DsarService::Stub> over_socket =
      v1::DsarService::NewStub(grpc::CreateChannel(
          absl::StrCat("unix:", socket), grpc::InsecureChannelCredentials()));
  grpc::ClientContext create_context;
  create_context.set_deadline(
      absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::Request created;
  grpc::Status status = over_socket->CreateRequest(
      &create_context,
      RequestForEmail(v1::ACCESS, "person1@example.com", "over-the-socket"),
      &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::unique_ptr<v1::DsarService::Stub> over_tcp =
      v1::DsarService::NewStub(LoopbackChannel(dsard_.port));
  grpc::ClientContext get_context;
  get_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::GetRequestRequest get;
  get.set_id(created.id());
  v1::Request read;
  status = over_tcp->GetRequest(&get_context, get, &read);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(read.id(), created.id());

  // A second dsard given the same socket leaves it to the first.
  EXPECT_THAT(LogOfRefusedDsard(
                  {absl::StrCat("--data_dir=", dir_.Join("data2")),
                   absl::StrCat("--inventory=", inventory_),
                   "--admin_listen=", absl::StrCat("--listen_unix=", socket)},
                  "dsard-same-socket.log"),
              HasSubstr("another process is serving"));
  grpc::ClientContext again_context;
  again_context.set_deadline(
      absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  status = over_socket->GetRequest(&again_context, get, &read);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(read.id(), created.id());
}

TEST_F(EndToEndTest, DsardRefusesAUnixSocketPathTooLongToBind) {
  const std::string socket = dir_.Join(std::string(120, 's'));
  std::string output =
      LogOfRefusedDsard({absl::StrCat("--data_dir=", dir_.Join("data")),
                         absl::StrCat("--inventory=", inventory_),
                         absl::StrCat("--listen_unix=", socket)},
                        "dsard-long-socket.log");
  EXPECT_THAT(output, HasSubstr("--listen_unix="));
  EXPECT_THAT(output, HasSubstr("at most 107"));
}

TEST_F(EndToEndTest, DsardRefusesInvalidWorkflowDefinition) {
  std::string path = dir_.Join("broken-workflow.json");
  std::ofstream(path) << R"({
  "StartAt": "Export",
  "States": {
    "Export": {"Type": "Task", "Resource": "dsar:bundle", "Next": "Missing"}
  }
})";
  std::string output =
      LogOfRefusedDsard({absl::StrCat("--data_dir=", dir_.Join("data")),
                         absl::StrCat("--inventory=", inventory_),
                         absl::StrCat("--workflow=", path)},
                        "dsard-bad-workflow.log");
  EXPECT_THAT(output, HasSubstr("States.Export.Next"));
  EXPECT_THAT(output, HasSubstr("Missing"));
}

TEST_F(EndToEndTest, DsarctlExitCodes) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  std::string log = dir_.Join("dsarctl.log");
  absl::StatusOr<int> missing = RunToExit(
      DsarctlPath(),
      {absl::StrCat("--addr=127.0.0.1:", dsard_.port), "get", "dsr_missing"},
      log, absl::Seconds(30));
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(*missing, 3) << ReadFileOrEmpty(log);

  absl::StatusOr<int> unavailable =
      RunToExit(DsarctlPath(), {"--addr=127.0.0.1:1", "get", "x"}, log,
                absl::Seconds(60));
  ASSERT_TRUE(unavailable.ok()) << unavailable.status();
  EXPECT_EQ(*unavailable, 4) << ReadFileOrEmpty(log);
}

}  // namespace
}  // namespace dsar::testing
