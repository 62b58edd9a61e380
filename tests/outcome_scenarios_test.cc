// Outcome scenarios over the wire: the sample stores, dsard and dsar-worker
// processes. Each scenario breaks the real stores the way an operator would
// meet it (a file that is not a database, a file that is gone, a constraint,
// identities of two people) and checks the answer against the stores
// themselves: a request is COMPLETED exactly when every store in scope did
// its part, otherwise it stops in NEEDS_ATTENTION naming the stores, and
// nothing is erased that should not be.

#include <sqlite3.h>
#include <zip.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/bundle_download.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"
#include "tests/testing/jsonl_records.h"
#include "tests/testing/sqlite_exec.h"
#include "tests/zip_entries.h"

namespace dsar::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kPeople = 100;
const std::vector<std::string> kStores = {"accounts", "orders", "marketing",
                                          "activity"};
// The file of each sample store, relative to the stores directory.
const std::map<std::string, std::string> kStoreFiles = {
    {"accounts", "accounts.db"},
    {"orders", "shop.db"},
    {"marketing", "marketing.db"},
    {"activity", "activity.jsonl"}};

std::string Email(int person) {
  return absl::StrCat("person", person, "@example.com");
}

// ---------------------------------------------------------------------------
// The stores, read straight from their files.

// Runs `sql` with ?1 bound to `text` (when given) on the SQLite file `path`
// and returns the first column of every row as text ("" for NULL). A failing
// query is a test failure.
std::vector<std::string> Query(const std::string& path, const std::string& sql,
                               const std::string& text = "") {
  std::vector<std::string> rows;
  sqlite3* db = nullptr;
  bool ok = false;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
      if (sqlite3_bind_parameter_count(stmt) > 0) {
        sqlite3_bind_text(stmt, 1, text.c_str(), -1, SQLITE_TRANSIENT);
      }
      int rc;
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const unsigned char* value = sqlite3_column_text(stmt, 0);
        rows.push_back(value == nullptr ? ""
                                        : reinterpret_cast<const char*>(value));
      }
      ok = rc == SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
  }
  if (!ok) ADD_FAILURE() << path << ": " << sql << ": " << sqlite3_errmsg(db);
  sqlite3_close(db);
  return rows;
}

int64_t QueryCount(const std::string& path, const std::string& sql,
                   const std::string& text = "") {
  std::vector<std::string> rows = Query(path, sql, text);
  return rows.size() == 1 ? std::stoll(rows[0]) : -1;
}

// The records of activity.jsonl (lines an erasure emptied are not).
std::vector<nlohmann::json> ActivityLines(const std::string& dir) {
  return dsar::testing::ReadJsonlRecords(absl::StrCat(dir, "/activity.jsonl"));
}

bool ActivityOf(const nlohmann::json& line, int person) {
  if (!line.contains("user_id")) return false;
  const nlohmann::json& id = line["user_id"];
  return (id.is_number_integer() && id.get<int64_t>() == person) ||
         (id.is_string() && id.get<std::string>() == std::to_string(person));
}

class Stores {
 public:
  explicit Stores(std::string dir) : dir_(std::move(dir)) {}

  std::string Path(const std::string& store) const {
    return absl::StrCat(dir_, "/", kStoreFiles.at(store));
  }

  // Rows (orders: orders + addresses; activity: lines) of `person` in
  // `store`, matched the way the store holds them: user id or email.
  int64_t CountFor(const std::string& store, int person) const {
    if (store == "accounts") {
      return QueryCount(Path(store),
                        absl::StrCat("SELECT count(*) FROM users WHERE id = ",
                                     person, " OR email = ?1"),
                        Email(person));
    }
    if (store == "orders") {
      return QueryCount(
          Path(store),
          absl::StrCat(
              "SELECT (SELECT count(*) FROM orders WHERE user_id = ", person,
              ") + (SELECT count(*) FROM addresses WHERE user_id = ", person,
              ")"));
    }
    if (store == "marketing") {
      return QueryCount(
          Path(store),
          "SELECT count(*) FROM subscribers WHERE lower(email) = ?1",
          Email(person));
    }
    int64_t lines = 0;
    for (const nlohmann::json& line : ActivityLines(dir_)) {
      if (ActivityOf(line, person)) ++lines;
    }
    return lines;
  }

  // Rows (lines) of everyone in `store`.
  int64_t TotalOf(const std::string& store) const {
    if (store == "accounts") {
      return QueryCount(Path(store), "SELECT count(*) FROM users");
    }
    if (store == "orders") {
      return QueryCount(Path(store),
                        "SELECT (SELECT count(*) FROM orders) + "
                        "(SELECT count(*) FROM addresses)");
    }
    if (store == "marketing") {
      return QueryCount(Path(store), "SELECT count(*) FROM subscribers");
    }
    return static_cast<int64_t>(ActivityLines(dir_).size());
  }

  // CountFor in every store.
  std::map<std::string, int64_t> CountsFor(int person) const {
    std::map<std::string, int64_t> counts;
    for (const std::string& store : kStores)
      counts[store] = CountFor(store, person);
    return counts;
  }

  // TotalOf every store.
  std::map<std::string, int64_t> Totals() const {
    std::map<std::string, int64_t> totals;
    for (const std::string& store : kStores) totals[store] = TotalOf(store);
    return totals;
  }

  // The first person at or after `from` with data in every store (marketing
  // holds about 80% of the people).
  int PersonInEveryStore(int from) const {
    for (int person = from; person <= kPeople; ++person) {
      std::map<std::string, int64_t> counts = CountsFor(person);
      bool everywhere = true;
      for (const auto& [store, count] : counts) everywhere &= count > 0;
      if (everywhere) return person;
    }
    ADD_FAILURE() << "no person from " << from << " is in every store";
    return from;
  }

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

std::string Describe(const std::map<std::string, int64_t>& counts) {
  return absl::StrJoin(counts, ", ", absl::PairFormatter("="));
}

// How a scenario breaks a store's file. Tests run as root, so permissions
// would not stop the worker: the file itself is replaced or removed.
enum class Breakage {
  kNotADatabase,  // Garbage in place of the file: a permanent error.
  kRemoved,       // The file is gone: transient (it may come back).
};

// Moves the store's file aside and breaks it; RestoreStoreFile puts it back.
void BreakStoreFile(const std::string& path, Breakage breakage) {
  std::error_code error;
  std::filesystem::rename(path, path + ".saved", error);
  ASSERT_FALSE(error) << path << ": " << error.message();
  if (breakage == Breakage::kNotADatabase) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 256; ++i) out << "this is not a database at all\n";
    ASSERT_TRUE(out.good()) << path;
  }
}

void RestoreStoreFile(const std::string& path) {
  std::error_code error;
  std::filesystem::remove_all(path, error);
  ASSERT_FALSE(error) << path << ": " << error.message();
  std::filesystem::rename(path + ".saved", path, error);
  ASSERT_FALSE(error) << path << ": " << error.message();
}

// ---------------------------------------------------------------------------
// Requests.

v1::CreateRequestRequest RequestFor(
    v1::RequestType type,
    const std::vector<std::pair<v1::IdentityType, std::string>>& identities,
    const std::string& key) {
  v1::CreateRequestRequest request;
  request.set_type(type);
  for (const auto& [kind, value] : identities) {
    v1::SubjectIdentity* identity = request.add_identities();
    identity->set_type(kind);
    identity->set_value(value);
  }
  request.set_idempotency_key(key);
  return request;
}

void VerifiedByLogin(v1::CreateRequestRequest* request) {
  request->mutable_verified()->set_method("logged_in_session");
  request->mutable_verified()->set_evidence_ref("session-test");
}

// True once a request has stopped on its own: terminal, or waiting for an
// operator.
bool Stopped(const v1::Request& request) {
  return IsTerminal(request.status()) ||
         request.status() == v1::NEEDS_ATTENTION;
}

const v1::StoreStep* FindStep(const v1::Request& request,
                              const std::string& map_state,
                              const std::string& store) {
  for (const v1::StoreStep& step : request.steps()) {
    if (step.map_state() == map_state && step.store() == store) return &step;
  }
  return nullptr;
}

std::vector<std::string> Kinds(const std::vector<v1::Event>& events) {
  std::vector<std::string> kinds;
  for (const v1::Event& event : events) kinds.push_back(event.kind());
  return kinds;
}

int CountEvents(const std::vector<v1::Event>& events, const std::string& kind,
                const std::string& store = "", const std::string& state = "") {
  int count = 0;
  for (const v1::Event& event : events) {
    if (event.kind() == kind && (store.empty() || event.store() == store) &&
        (state.empty() || event.state() == state)) {
      ++count;
    }
  }
  return count;
}

// Every (Map state, store) pair appears once: the step list shows the
// current run only.
void ExpectOneStepPerStorePerMap(const v1::Request& request) {
  std::set<std::pair<std::string, std::string>> seen;
  for (const v1::StoreStep& step : request.steps()) {
    EXPECT_TRUE(seen.insert({step.map_state(), step.store()}).second)
        << "two rows for " << step.map_state() << "/" << step.store() << ": "
        << request.ShortDebugString();
  }
}

// ---------------------------------------------------------------------------

class OutcomeScenariosTest : public ::testing::Test {
 protected:
  OutcomeScenariosTest()
      : dir_("dsar-outcomes"), stores_(dir_.Join("stores")) {}

  void SetUp() override {
    absl::StatusOr<std::string> inventory =
        GenerateSampleStores(stores_.dir(), kPeople);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = *inventory;
  }

  void TearDown() override {
    if (HasFailure()) {
      if (dsard_.process != nullptr) {
        std::cerr << "--- " << dsard_.process->log_path() << "\n"
                  << ReadFileOrEmpty(dsard_.process->log_path());
      }
      for (const auto& worker : workers_) {
        std::cerr << "--- " << worker->log_path() << "\n"
                  << ReadFileOrEmpty(worker->log_path());
      }
    }
  }

  // Starts dsard (lease 5 s, notifications to notifications.jsonl);
  // `extra_args` go after the harness's own.
  void StartCoordinator(std::vector<std::string> extra_args = {}) {
    DsardOptions options;
    options.data_dir = dir_.Join("data");
    options.inventory = inventory_;
    options.lease_seconds = 5;
    options.extra_args = std::move(extra_args);
    options.extra_args.push_back(
        absl::StrCat("--notify_file=", dir_.Join("notifications.jsonl")));
    absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir_.path());
    ASSERT_TRUE(dsard.ok()) << dsard.status();
    dsard_ = std::move(*dsard);
    stub_ = v1::DsarService::NewStub(LoopbackChannel(dsard_.port));
  }

  // Starts the workers: one for every store, except that `slow_store` (when
  // given) gets a worker of its own that waits `delay_ms` after leasing each
  // task before it touches the store, so a test can break the store between
  // the lease and the work.
  void StartWorkers(const std::string& slow_store = "", int delay_ms = 2000) {
    WorkerOptions options;
    options.coordinator_port = dsard_.port;
    options.inventory = inventory_;
    options.poll_wait_ms = 200;
    options.worker_id = "worker-fast";
    for (const std::string& store : kStores) {
      if (store != slow_store) options.stores.push_back(store);
    }
    absl::StatusOr<std::unique_ptr<Process>> fast =
        StartWorker(options, dir_.path());
    ASSERT_TRUE(fast.ok()) << fast.status();
    workers_.push_back(std::move(*fast));
    if (slow_store.empty()) return;
    options.worker_id = "worker-slow";
    options.stores = {slow_store};
    options.debug_task_delay_ms = delay_ms;
    absl::StatusOr<std::unique_ptr<Process>> slow =
        StartWorker(options, dir_.path());
    ASSERT_TRUE(slow.ok()) << slow.status();
    workers_.push_back(std::move(*slow));
  }

  grpc::Status Create(const v1::CreateRequestRequest& request,
                      v1::Request* created) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return stub_->CreateRequest(&context, request, created);
  }

  // Creates the request; a refusal is a test failure (id stays empty).
  v1::Request MustCreate(const v1::CreateRequestRequest& request) {
    v1::Request created;
    grpc::Status status = Create(request, &created);
    EXPECT_TRUE(status.ok())
        << status.error_message() << " for " << request.ShortDebugString();
    return created;
  }

  v1::Request Get(const std::string& id) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::GetRequestRequest get;
    get.set_id(id);
    v1::Request request;
    grpc::Status status = stub_->GetRequest(&context, get, &request);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return request;
  }

  // Polls GetRequest until `done` holds; DEADLINE_EXCEEDED naming `what`
  // and the last state seen otherwise.
  absl::StatusOr<v1::Request> WaitFor(
      const std::string& id, const std::string& what,
      const std::function<bool(const v1::Request&)>& done,
      absl::Duration timeout = absl::Seconds(90)) {
    return WaitForRequest(*stub_, id, what, done, timeout);
  }

  // Waits until the request stopped (terminal or NEEDS_ATTENTION) and
  // returns it; a request that never stops is a test failure.
  v1::Request WaitUntilStopped(const std::string& id,
                               absl::Duration timeout = absl::Seconds(120)) {
    absl::StatusOr<v1::Request> request =
        WaitFor(id, "stopped", Stopped, timeout);
    EXPECT_TRUE(request.ok()) << request.status() << "\n"
                              << EventHistory(Events(id));
    return request.ok() ? *request : Get(id);
  }

  // Waits until the step of `store` in `map_state` is LEASED.
  void WaitForLease(const std::string& id, const std::string& map_state,
                    const std::string& store) {
    absl::StatusOr<v1::Request> request = WaitFor(
        id, absl::StrCat(map_state, "/", store, " leased"),
        [&](const v1::Request& request) {
          const v1::StoreStep* step = FindStep(request, map_state, store);
          return step != nullptr && step->status() == v1::LEASED;
        });
    ASSERT_TRUE(request.ok()) << request.status();
  }

  std::vector<v1::Event> Events(const std::string& id) {
    absl::StatusOr<std::vector<v1::Event>> events = ListAllEvents(*stub_, id);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<v1::Event>{};
  }

  // Polls the events until one of `kind` (for `store`, when given) shows.
  void WaitForEvent(const std::string& id, const std::string& kind,
                    const std::string& store) {
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (true) {
      std::vector<v1::Event> events = Events(id);
      if (CountEvents(events, kind, store) > 0) return;
      ASSERT_LT(absl::Now(), deadline)
          << "no " << kind << " event for " << store << "\n"
          << EventHistory(events);
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  grpc::Status Retry(const std::string& id, v1::Request* retried) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::RetryRequestRequest retry;
    retry.set_id(id);
    retry.set_reason("store restored by the test");
    return stub_->RetryRequest(&context, retry, retried);
  }

  grpc::Status Cancel(const std::string& id, v1::Request* cancelled) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::CancelRequestRequest cancel;
    cancel.set_id(id);
    cancel.set_reason("withdrawn by the test");
    return stub_->CancelRequest(&context, cancel, cancelled);
  }

  // Retries a request that needs attention and waits until it stops again.
  v1::Request RetryUntilStopped(const std::string& id) {
    v1::Request retried;
    grpc::Status status = Retry(id, &retried);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return WaitUntilStopped(id);
  }

  // The notifications dsard wrote for `id` so far, parsed.
  std::vector<nlohmann::json> Notifications(const std::string& id) {
    std::vector<nlohmann::json> found;
    std::ifstream in(dir_.Join("notifications.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::json payload = nlohmann::json::parse(line, nullptr, false);
      if (!payload.is_discarded() && payload.value("request_id", "") == id)
        found.push_back(std::move(payload));
    }
    return found;
  }

  // Waits until a notification of `kind` for `id` was delivered.
  nlohmann::json WaitForNotification(const std::string& id,
                                     const std::string& kind) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      for (nlohmann::json& payload : Notifications(id)) {
        if (payload.value("kind", "") == kind) return payload;
      }
      if (absl::Now() >= deadline) {
        ADD_FAILURE() << "no " << kind << " notification for " << id << ": "
                      << ReadFileOrEmpty(dir_.Join("notifications.jsonl"));
        return nlohmann::json();
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  // Every store of `person` is empty.
  void ExpectGoneEverywhere(int person) {
    std::map<std::string, int64_t> counts = stores_.CountsFor(person);
    for (const std::string& store : kStores) {
      EXPECT_EQ(counts[store], 0)
          << "person" << person << " still in " << store;
    }
  }

  // The entries of request `id`'s bundle, downloaded as clients get it
  // (docs/delivery.md).
  absl::StatusOr<std::map<std::string, std::string>> BundleEntries(
      const std::string& id) {
    absl::StatusOr<std::string> zip = DownloadBundleBytes(*stub_, id);
    if (!zip.ok()) return zip.status();
    return ReadZipBytes(*zip);
  }

  TempDir dir_;
  Stores stores_;
  std::string inventory_;
  RunningDsard dsard_;
  std::unique_ptr<v1::DsarService::Stub> stub_;
  std::vector<std::unique_ptr<Process>> workers_;
};

// 1. A store fails for good during the erase pass: the stores that do not
// depend on it are erased, accounts (erased after marketing) is BLOCKED and
// keeps its row, the request stops in NEEDS_ATTENTION without a `completed`
// event; once the store is back, a retry completes the erasure.
TEST_F(OutcomeScenariosTest,
       ErasureWithBrokenMarketingNeedsAttentionThenRetry) {
  int person = stores_.PersonInEveryStore(11);
  std::map<std::string, int64_t> others_before = stores_.Totals();
  std::map<std::string, int64_t> mine = stores_.CountsFor(person);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers("marketing"));

  v1::Request created = MustCreate(
      RequestForEmail(v1::ERASURE, Email(person), "outcome-1-erasure"));
  ASSERT_FALSE(created.id().empty());
  // Discovery read marketing; the erase pass finds it broken.
  ASSERT_NO_FATAL_FAILURE(
      WaitForLease(created.id(), "EraseStores", "marketing"));
  std::string marketing = stores_.Path("marketing");
  ASSERT_NO_FATAL_FAILURE(BreakStoreFile(marketing, Breakage::kNotADatabase));

  v1::Request stopped = WaitUntilStopped(created.id());
  std::vector<v1::Event> events = Events(created.id());
  SCOPED_TRACE(EventHistory(events));
  ASSERT_EQ(stopped.status(), v1::NEEDS_ATTENTION)
      << stopped.ShortDebugString();
  EXPECT_EQ(stopped.error(), "Request.NeedsAttention");
  EXPECT_THAT(stopped.cause(), HasSubstr("marketing"));
  EXPECT_THAT(stopped.cause(), HasSubstr("accounts"));
  ExpectOneStepPerStorePerMap(stopped);
  const v1::StoreStep* failed = FindStep(stopped, "EraseStores", "marketing");
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->status(), v1::STEP_FAILED) << failed->ShortDebugString();
  const v1::StoreStep* blocked = FindStep(stopped, "EraseStores", "accounts");
  ASSERT_NE(blocked, nullptr);
  EXPECT_EQ(blocked->status(), v1::BLOCKED) << blocked->ShortDebugString();
  EXPECT_THAT(blocked->cause(), HasSubstr("marketing"));
  for (const char* store : {"orders", "activity"}) {
    const v1::StoreStep* step = FindStep(stopped, "EraseStores", store);
    ASSERT_NE(step, nullptr) << store;
    EXPECT_EQ(step->status(), v1::SUCCEEDED) << step->ShortDebugString();
  }
  EXPECT_THAT(Kinds(events), Not(::testing::Contains("completed")));
  EXPECT_THAT(Kinds(events), ::testing::Contains("needs_attention"));
  nlohmann::json alert = WaitForNotification(created.id(), "needs_attention");
  EXPECT_EQ(alert.value("audience", ""), "operator") << alert.dump();
  EXPECT_THAT(alert["failed_stores"].dump(), HasSubstr("marketing"));
  EXPECT_THAT(alert["blocked_stores"].dump(), HasSubstr("accounts"));
  for (const nlohmann::json& payload : Notifications(created.id())) {
    EXPECT_NE(payload.value("kind", ""), "completed") << payload.dump();
  }

  // The real stores: erased where the order allowed, nothing else touched.
  // (marketing.db is still broken: it is read once restored.)
  EXPECT_EQ(stores_.CountFor("orders", person), 0);
  EXPECT_EQ(stores_.CountFor("activity", person), 0);
  EXPECT_EQ(stores_.CountFor("accounts", person), mine["accounts"])
      << "accounts is blocked: its row must stay until marketing is erased";
  EXPECT_EQ(stores_.TotalOf("accounts"), others_before["accounts"]);

  ASSERT_NO_FATAL_FAILURE(RestoreStoreFile(marketing));
  EXPECT_EQ(stores_.CountFor("marketing", person), mine["marketing"]);
  v1::Request done = RetryUntilStopped(created.id());
  EXPECT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString() << "\n"
                                          << EventHistory(Events(created.id()));
  ExpectOneStepPerStorePerMap(done);
  for (const v1::StoreStep& step : done.steps()) {
    EXPECT_EQ(step.status(), v1::SUCCEEDED) << step.ShortDebugString();
  }
  ExpectGoneEverywhere(person);
  std::map<std::string, int64_t> after = stores_.Totals();
  for (const std::string& store : kStores) {
    EXPECT_EQ(after[store], others_before[store] - mine[store])
        << "erasing person" << person << " changed other people in " << store;
  }
}

// 2. A store that accounts must wait for (erase_after) fails for good: the
// request does not hang, accounts is BLOCKED naming it; a new erasure for
// the same person is not linked to the stopped one; after the file is back,
// retries complete both and the person is gone.
TEST_F(OutcomeScenariosTest, FailedEraseAfterStoreBlocksAccountsWithoutHang) {
  int person = stores_.PersonInEveryStore(20);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers("activity"));

  v1::Request first = MustCreate(
      RequestForEmail(v1::ERASURE, Email(person), "outcome-2-first"));
  ASSERT_FALSE(first.id().empty());
  // Removed once discovery has read it (removed from the start, the request
  // stops at DiscoverIdentities before any erasure, as scenario 4 shows).
  ASSERT_NO_FATAL_FAILURE(WaitForLease(first.id(), "EraseStores", "activity"));
  std::string activity = stores_.Path("activity");
  ASSERT_NO_FATAL_FAILURE(BreakStoreFile(activity, Breakage::kRemoved));

  v1::Request stopped = WaitUntilStopped(first.id());
  SCOPED_TRACE(EventHistory(Events(first.id())));
  ASSERT_EQ(stopped.status(), v1::NEEDS_ATTENTION)
      << stopped.ShortDebugString();
  const v1::StoreStep* failed = FindStep(stopped, "EraseStores", "activity");
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->status(), v1::STEP_FAILED) << failed->ShortDebugString();
  const v1::StoreStep* blocked = FindStep(stopped, "EraseStores", "accounts");
  ASSERT_NE(blocked, nullptr);
  EXPECT_EQ(blocked->status(), v1::BLOCKED) << blocked->ShortDebugString();
  EXPECT_THAT(blocked->cause(), HasSubstr("activity"));
  EXPECT_THAT(stopped.cause(), HasSubstr("activity"));
  EXPECT_EQ(stores_.CountFor("accounts", person), 1);

  // The same erasure again: it runs on its own (and stops on its own, the
  // file still being gone) instead of answering from the stopped one.
  v1::Request second = MustCreate(
      RequestForEmail(v1::ERASURE, Email(person), "outcome-2-second"));
  ASSERT_FALSE(second.id().empty());
  EXPECT_EQ(second.linked_to(), "") << second.ShortDebugString();
  v1::Request second_stopped = WaitUntilStopped(second.id());
  EXPECT_EQ(second_stopped.linked_to(), "");
  EXPECT_EQ(second_stopped.status(), v1::NEEDS_ATTENTION)
      << second_stopped.ShortDebugString();
  EXPECT_EQ(CountEvents(Events(second.id()), "linked_as_duplicate"), 0);

  ASSERT_NO_FATAL_FAILURE(RestoreStoreFile(activity));
  v1::Request done = RetryUntilStopped(first.id());
  EXPECT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString();
  ExpectGoneEverywhere(person);
  v1::Request second_done = RetryUntilStopped(second.id());
  EXPECT_EQ(second_done.status(), v1::COMPLETED)
      << second_done.ShortDebugString();
  ExpectGoneEverywhere(person);
}

// 3. An unverified erasure waits for its code; the same erasure verified by
// the caller is not linked to it and erases the data.
TEST_F(OutcomeScenariosTest, VerifiedErasureIsNotSwallowedByUnverifiedOne) {
  const int person = 30;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator({"--verify_unattested=true"}));
  ASSERT_NO_FATAL_FAILURE(StartWorkers());

  v1::Request unverified = MustCreate(
      RequestForEmail(v1::ERASURE, Email(person), "outcome-3-unverified"));
  ASSERT_EQ(unverified.status(), v1::VERIFYING)
      << unverified.ShortDebugString();

  v1::CreateRequestRequest request =
      RequestForEmail(v1::ERASURE, Email(person), "outcome-3-verified");
  VerifiedByLogin(&request);
  v1::Request verified = MustCreate(request);
  ASSERT_FALSE(verified.id().empty());
  EXPECT_EQ(verified.linked_to(), "") << verified.ShortDebugString();

  v1::Request done = WaitUntilStopped(verified.id());
  EXPECT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString();
  EXPECT_EQ(done.linked_to(), "");
  for (const v1::StoreStep& step : done.steps()) {
    EXPECT_EQ(step.status(), v1::SUCCEEDED) << step.ShortDebugString();
  }
  ExpectGoneEverywhere(person);
  EXPECT_EQ(Get(unverified.id()).status(), v1::VERIFYING);
}

// 4. The store that supplies identities (accounts: email -> user id) is
// broken: discovery stops, nothing is erased anywhere; after the file is
// back the retry finds the user id again and no orphan is left.
TEST_F(OutcomeScenariosTest, BrokenIdentitySupplierErasesNothingUntilRetried) {
  const int person = 40;
  std::map<std::string, int64_t> mine = stores_.CountsFor(person);
  ASSERT_GT(mine["orders"], 0);
  ASSERT_GT(mine["activity"], 0);
  std::string accounts = stores_.Path("accounts");
  ASSERT_NO_FATAL_FAILURE(BreakStoreFile(accounts, Breakage::kNotADatabase));
  std::map<std::string, std::string> before_files;
  for (const char* store : {"orders", "marketing", "activity"}) {
    before_files[store] = ReadFileOrEmpty(stores_.Path(store));
  }
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());

  v1::Request created = MustCreate(
      RequestForEmail(v1::ERASURE, Email(person), "outcome-4-erasure"));
  ASSERT_FALSE(created.id().empty());
  v1::Request stopped = WaitUntilStopped(created.id());
  SCOPED_TRACE(EventHistory(Events(created.id())));
  ASSERT_EQ(stopped.status(), v1::NEEDS_ATTENTION)
      << stopped.ShortDebugString();
  EXPECT_EQ(stopped.current_state(), "DiscoverIdentities");
  EXPECT_THAT(stopped.cause(), HasSubstr("accounts"));
  const v1::StoreStep* failed =
      FindStep(stopped, "DiscoverIdentities", "accounts");
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->status(), v1::STEP_FAILED) << failed->ShortDebugString();
  for (const char* store : {"orders", "activity"}) {
    const v1::StoreStep* step = FindStep(stopped, "DiscoverIdentities", store);
    ASSERT_NE(step, nullptr) << store;
    EXPECT_EQ(step->status(), v1::BLOCKED) << step->ShortDebugString();
    EXPECT_THAT(step->cause(), HasSubstr("accounts"));
  }
  for (const v1::StoreStep& step : stopped.steps()) {
    EXPECT_NE(step.map_state(), "EraseStores") << step.ShortDebugString();
  }
  // Not one byte changed in the stores that depend on accounts.
  for (const auto& [store, contents] : before_files) {
    EXPECT_EQ(ReadFileOrEmpty(stores_.Path(store)), contents)
        << store << " changed while its identities were unknown";
  }

  ASSERT_NO_FATAL_FAILURE(RestoreStoreFile(accounts));
  v1::Request done = RetryUntilStopped(created.id());
  EXPECT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString() << "\n"
                                          << EventHistory(Events(created.id()));
  ExpectOneStepPerStorePerMap(done);
  ExpectGoneEverywhere(person);
}

// 5. A duplicate linked to a request that is then cancelled runs on its own
// and does the work.
TEST_F(OutcomeScenariosTest, LinkedDuplicateOfCancelledRequestRunsOnItsOwn) {
  const int person = 45;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());

  v1::CreateRequestRequest request =
      RequestForEmail(v1::ERASURE, Email(person), "outcome-5-first");
  VerifiedByLogin(&request);
  v1::Request first = MustCreate(request);
  request.set_idempotency_key("outcome-5-second");
  v1::Request second = MustCreate(request);
  ASSERT_FALSE(second.id().empty());
  ASSERT_EQ(second.linked_to(), first.id()) << second.ShortDebugString();

  v1::Request cancelled;
  grpc::Status cancel = Cancel(first.id(), &cancelled);
  ASSERT_TRUE(cancel.ok()) << cancel.error_message();
  EXPECT_EQ(cancelled.status(), v1::CANCELLED);
  absl::StatusOr<v1::Request> unlinked = WaitFor(
      second.id(), "unlinked",
      [](const v1::Request& request) { return request.linked_to().empty(); });
  ASSERT_TRUE(unlinked.ok()) << unlinked.status();
  EXPECT_EQ(CountEvents(Events(second.id()), "unlinked"), 1)
      << EventHistory(Events(second.id()));
  // Nothing ran yet: no worker was started.
  EXPECT_EQ(stores_.CountsFor(person)["accounts"], 1);

  ASSERT_NO_FATAL_FAILURE(StartWorkers());
  v1::Request done = WaitUntilStopped(second.id());
  EXPECT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString() << "\n"
                                          << EventHistory(Events(second.id()));
  ExpectGoneEverywhere(person);
  EXPECT_EQ(Get(first.id()).status(), v1::CANCELLED);
}

// The request of each type for `person`, ready to submit.
v1::CreateRequestRequest RequestOfType(v1::RequestType type, int person,
                                       const std::string& key) {
  v1::CreateRequestRequest request = RequestForEmail(type, Email(person), key);
  if (type == v1::RECTIFICATION) {
    v1::FieldCorrection* correction = request.add_corrections();
    correction->set_store("accounts");
    correction->set_field("full_name");
    correction->set_value(absl::StrCat("Corrected Name ", person));
  }
  return request;
}

const std::vector<v1::RequestType> kAllTypes = {
    v1::ACCESS,        v1::PORTABILITY, v1::ERASURE,
    v1::RECTIFICATION, v1::RESTRICTION, v1::OBJECTION};

// 6a. Every right on the happy path completes, and its effect is in every
// store in scope.
TEST_F(OutcomeScenariosTest, EveryTypeCompletesWithItsEffectInEveryStore) {
  std::map<v1::RequestType, int> person;
  int next = 50;
  for (v1::RequestType type : kAllTypes) {
    person[type] = stores_.PersonInEveryStore(next);
    next = person[type] + 1;
  }
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());
  std::map<v1::RequestType, std::string> ids;
  for (v1::RequestType type : kAllTypes) {
    v1::Request created = MustCreate(
        RequestOfType(type, person[type],
                      absl::StrCat("outcome-6-", v1::RequestType_Name(type))));
    ASSERT_FALSE(created.id().empty());
    ids[type] = created.id();
  }
  for (v1::RequestType type : kAllTypes) {
    SCOPED_TRACE(v1::RequestType_Name(type));
    v1::Request done = WaitUntilStopped(ids[type]);
    ASSERT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString();
    for (const v1::StoreStep& step : done.steps()) {
      EXPECT_EQ(step.status(), v1::SUCCEEDED) << step.ShortDebugString();
    }
  }

  // ACCESS and PORTABILITY: a bundle whose manifest lists every store.
  for (v1::RequestType type : {v1::ACCESS, v1::PORTABILITY}) {
    SCOPED_TRACE(v1::RequestType_Name(type));
    absl::StatusOr<std::map<std::string, std::string>> entries =
        BundleEntries(ids[type]);
    ASSERT_TRUE(entries.ok()) << entries.status();
    ASSERT_TRUE(entries->count("manifest.json"));
    nlohmann::json manifest =
        nlohmann::json::parse((*entries)["manifest.json"], nullptr, false);
    ASSERT_TRUE(manifest.contains("stores")) << manifest.dump();
    std::set<std::string> listed;
    for (const nlohmann::json& entry : manifest["stores"]) {
      listed.insert(entry.value("store", ""));
      EXPECT_EQ(entry.value("status", ""), "SUCCEEDED") << entry.dump();
      EXPECT_GT(entry.value("record_count", int64_t{0}), 0) << entry.dump();
    }
    EXPECT_EQ(listed, std::set<std::string>(kStores.begin(), kStores.end()));
  }

  ExpectGoneEverywhere(person[v1::ERASURE]);

  int rectified = person[v1::RECTIFICATION];
  EXPECT_THAT(
      Query(stores_.Path("accounts"),
            absl::StrCat("SELECT full_name FROM users WHERE id = ", rectified)),
      ::testing::ElementsAre(absl::StrCat("Corrected Name ", rectified)));

  // RESTRICTION: the flag every store declares is set for the subject only.
  int restricted = person[v1::RESTRICTION];
  EXPECT_THAT(Query(stores_.Path("accounts"),
                    absl::StrCat("SELECT processing_restricted FROM users "
                                 "WHERE id = ",
                                 restricted)),
              ::testing::ElementsAre("1"));
  EXPECT_EQ(QueryCount(stores_.Path("accounts"),
                       "SELECT count(*) FROM users WHERE "
                       "processing_restricted != 0"),
            1);
  EXPECT_THAT(Query(stores_.Path("marketing"),
                    "SELECT processing_restricted FROM subscribers WHERE "
                    "lower(email) = ?1",
                    Email(restricted)),
              ::testing::Each("1"));
  EXPECT_EQ(QueryCount(stores_.Path("marketing"),
                       "SELECT count(*) FROM subscribers WHERE "
                       "processing_restricted != 0"),
            1);
  int flagged_lines = 0;
  for (const nlohmann::json& line : ActivityLines(stores_.dir())) {
    bool flag = line.value("restricted", false);
    if (ActivityOf(line, restricted)) {
      EXPECT_TRUE(flag) << line.dump();
    } else {
      EXPECT_FALSE(flag) << line.dump();
    }
    flagged_lines += flag ? 1 : 0;
  }
  EXPECT_EQ(flagged_lines, stores_.CountsFor(restricted)["activity"]);

  // OBJECTION: marketing is the one store with an objection flag.
  int objected = person[v1::OBJECTION];
  EXPECT_THAT(Query(stores_.Path("marketing"),
                    "SELECT objected FROM subscribers WHERE lower(email) = ?1",
                    Email(objected)),
              ::testing::Each("1"));
  EXPECT_EQ(QueryCount(stores_.Path("marketing"),
                       "SELECT count(*) FROM subscribers WHERE objected != 0"),
            1);
}

// 6b. With one store broken from the start, no right completes.
TEST_F(OutcomeScenariosTest, EveryTypeNeedsAttentionWhenAStoreIsBroken) {
  std::map<std::string, int64_t> totals = stores_.Totals();
  std::string marketing = stores_.Path("marketing");
  ASSERT_NO_FATAL_FAILURE(BreakStoreFile(marketing, Breakage::kNotADatabase));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());
  std::map<v1::RequestType, std::string> ids;
  int person = 50;
  for (v1::RequestType type : kAllTypes) {
    v1::Request created = MustCreate(
        RequestOfType(type, person++,
                      absl::StrCat("outcome-6b-", v1::RequestType_Name(type))));
    ASSERT_FALSE(created.id().empty());
    ids[type] = created.id();
  }
  for (v1::RequestType type : kAllTypes) {
    SCOPED_TRACE(v1::RequestType_Name(type));
    v1::Request stopped = WaitUntilStopped(ids[type]);
    std::vector<v1::Event> events = Events(ids[type]);
    EXPECT_EQ(stopped.status(), v1::NEEDS_ATTENTION)
        << stopped.ShortDebugString() << "\n"
        << EventHistory(events);
    EXPECT_THAT(stopped.cause(), HasSubstr("marketing"));
    EXPECT_THAT(Kinds(events), Not(::testing::Contains("completed")));
    bool marketing_failed = false;
    for (const v1::StoreStep& step : stopped.steps()) {
      if (step.store() == "marketing")
        marketing_failed |= step.status() == v1::STEP_FAILED;
    }
    EXPECT_TRUE(marketing_failed) << stopped.ShortDebugString();
  }
  ASSERT_NO_FATAL_FAILURE(RestoreStoreFile(marketing));
  // Nothing was erased while the request could not finish.
  EXPECT_EQ(stores_.Totals(), totals);
}

// 7. A store that is briefly gone is retried by the workflow; once it is
// back the request completes without an operator.
TEST_F(OutcomeScenariosTest, TransientFailureRecoversWithoutOperator) {
  const int person = stores_.PersonInEveryStore(62);
  std::string marketing = stores_.Path("marketing");
  ASSERT_NO_FATAL_FAILURE(BreakStoreFile(marketing, Breakage::kRemoved));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());

  v1::Request created = MustCreate(
      RequestForEmail(v1::ERASURE, Email(person), "outcome-7-erasure"));
  ASSERT_FALSE(created.id().empty());
  ASSERT_NO_FATAL_FAILURE(
      WaitForEvent(created.id(), "retry_scheduled", "marketing"));
  ASSERT_NO_FATAL_FAILURE(RestoreStoreFile(marketing));

  v1::Request done = WaitUntilStopped(created.id());
  std::vector<v1::Event> events = Events(created.id());
  EXPECT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString() << "\n"
                                          << EventHistory(events);
  EXPECT_EQ(CountEvents(events, "needs_attention"), 0);
  EXPECT_EQ(CountEvents(events, "retried"), 0) << "no operator retried it";
  ExpectOneStepPerStorePerMap(done);
  ExpectGoneEverywhere(person);
}

// 8a. A rectification the store's UNIQUE constraint refuses is a permanent
// error: one attempt, then NEEDS_ATTENTION; nothing changed.
TEST_F(OutcomeScenariosTest, ConstraintViolationIsNotRetried) {
  const int person = 64, other = 65;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());
  v1::CreateRequestRequest request =
      RequestForEmail(v1::RECTIFICATION, Email(person), "outcome-8-unique");
  v1::FieldCorrection* correction = request.add_corrections();
  correction->set_store("accounts");
  correction->set_field("email");
  correction->set_value(Email(other));
  v1::Request created = MustCreate(request);
  ASSERT_FALSE(created.id().empty());

  v1::Request stopped = WaitUntilStopped(created.id());
  std::vector<v1::Event> events = Events(created.id());
  SCOPED_TRACE(EventHistory(events));
  ASSERT_EQ(stopped.status(), v1::NEEDS_ATTENTION)
      << stopped.ShortDebugString();
  const v1::StoreStep* step = FindStep(stopped, "RectifyStores", "accounts");
  ASSERT_NE(step, nullptr) << stopped.ShortDebugString();
  EXPECT_EQ(step->status(), v1::STEP_FAILED) << step->ShortDebugString();
  EXPECT_EQ(step->error(), "Connector.ConstraintViolation")
      << step->ShortDebugString();
  EXPECT_EQ(CountEvents(events, "task_leased", "accounts", "Rectify"), 1);
  EXPECT_EQ(CountEvents(events, "retry_scheduled", "accounts"), 0);
  EXPECT_THAT(
      Query(stores_.Path("accounts"),
            absl::StrCat("SELECT email FROM users WHERE id = ", person)),
      ::testing::ElementsAre(Email(person)));
}

// 8b. A correction whose value does not fit the field is refused at intake.
TEST_F(OutcomeScenariosTest, InvalidCorrectionValueIsRefusedAtIntake) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  v1::CreateRequestRequest request =
      RequestForEmail(v1::RECTIFICATION, Email(66), "outcome-8-invalid");
  v1::FieldCorrection* correction = request.add_corrections();
  correction->set_store("accounts");
  correction->set_field("email");
  correction->set_value("not an email");
  v1::Request created;
  grpc::Status status = Create(request, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message() << " " << created.ShortDebugString();
  EXPECT_THAT(status.error_message(), HasSubstr("corrections[0].value"));
  absl::StatusOr<std::vector<v1::Request>> listed = ListAllRequests(*stub_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->empty()) << listed->front().ShortDebugString();
}

// 9. User ids match exactly: "007", "+8", "9.0" and "1e1" are nobody.
TEST_F(OutcomeScenariosTest, UserIdsMatchExactly) {
  std::map<std::string, int64_t> totals = stores_.Totals();
  std::map<int, std::map<std::string, int64_t>> before;
  for (int person : {7, 8, 9, 10}) before[person] = stores_.CountsFor(person);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());
  std::vector<std::string> ids;
  for (const char* value : {"007", "+8", "9.0", "1e1"}) {
    v1::Request created =
        MustCreate(RequestFor(v1::ERASURE, {{v1::USER_ID, value}},
                              absl::StrCat("outcome-9-", value)));
    ASSERT_FALSE(created.id().empty()) << value;
    ids.push_back(created.id());
  }
  for (const std::string& id : ids) {
    v1::Request done = WaitUntilStopped(id);
    EXPECT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString();
    for (const v1::StoreStep& step : done.steps()) {
      EXPECT_EQ(step.record_count(), 0) << step.ShortDebugString();
    }
  }
  for (int person : {7, 8, 9, 10}) {
    EXPECT_EQ(stores_.CountsFor(person), before[person])
        << "person" << person << ": " << Describe(stores_.CountsFor(person));
  }
  EXPECT_EQ(stores_.Totals(), totals);
}

// 10. Identities of two different people stop the request for review;
// neither person loses data.
TEST_F(OutcomeScenariosTest, IdentitiesOfTwoPeopleStopForReview) {
  std::map<std::string, int64_t> totals = stores_.Totals();
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());
  v1::Request created = MustCreate(
      RequestFor(v1::ERASURE, {{v1::EMAIL, Email(70)}, {v1::USER_ID, "71"}},
                 "outcome-10-conflict"));
  ASSERT_FALSE(created.id().empty());
  v1::Request stopped = WaitUntilStopped(created.id());
  std::vector<v1::Event> events = Events(created.id());
  EXPECT_EQ(stopped.status(), v1::NEEDS_ATTENTION)
      << stopped.ShortDebugString() << "\n"
      << EventHistory(events);
  EXPECT_EQ(stopped.error(), "Identity.Conflict") << stopped.ShortDebugString();
  EXPECT_EQ(CountEvents(events, "completed"), 0);
  EXPECT_EQ(stores_.Totals(), totals) << Describe(stores_.Totals());
  for (int person : {70, 71}) {
    EXPECT_EQ(stores_.CountsFor(person)["accounts"], 1) << person;
  }
}

// 11. A phone number given with other spacing than the store's finds the
// person, and the erasure reaches every store through it.
TEST_F(OutcomeScenariosTest, PhoneInOtherSpacingFindsThePerson) {
  int person = 0;
  std::string phone;
  for (int candidate = stores_.PersonInEveryStore(80); candidate <= kPeople;
       ++candidate) {
    std::vector<std::string> phones =
        Query(stores_.Path("accounts"),
              absl::StrCat("SELECT phone FROM users WHERE id = ", candidate));
    ASSERT_EQ(phones.size(), 1u);
    if (QueryCount(stores_.Path("accounts"),
                   "SELECT count(*) FROM users WHERE phone = ?1",
                   phones[0]) == 1 &&
        stores_.CountsFor(candidate)["marketing"] > 0) {
      person = candidate;
      phone = phones[0];
      break;
    }
  }
  ASSERT_NE(person, 0);
  ASSERT_THAT(phone, HasSubstr(" ")) << "the store keeps phones formatted";
  std::string compact = absl::StrReplaceAll(phone, {{" ", ""}});
  std::map<std::string, int64_t> totals = stores_.Totals();
  std::map<std::string, int64_t> mine = stores_.CountsFor(person);

  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());
  v1::Request created = MustCreate(
      RequestFor(v1::ERASURE, {{v1::PHONE, compact}}, "outcome-11-phone"));
  ASSERT_FALSE(created.id().empty());
  v1::Request done = WaitUntilStopped(created.id());
  EXPECT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString() << "\n"
                                          << EventHistory(Events(created.id()));
  ExpectGoneEverywhere(person);
  std::map<std::string, int64_t> after = stores_.Totals();
  for (const std::string& store : kStores) {
    EXPECT_EQ(after[store], totals[store] - mine[store]) << store;
  }
}

// 12. After an access that needed a retry, the subject's answer carries no
// path of a store and no low-level error text.
// 5: an access request by user id reaches marketing (which matches emails
// only) through the email accounts discovers, and the answer names every
// system with the identities it was searched with.
TEST_F(OutcomeScenariosTest, AccessByUserIdReachesEveryStore) {
  const int person = stores_.PersonInEveryStore(30);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());
  v1::CreateRequestRequest by_user_id = RequestFor(
      v1::ACCESS, {{v1::USER_ID, std::to_string(person)}}, "outcome-5-access");
  v1::Request created = MustCreate(by_user_id);
  ASSERT_FALSE(created.id().empty());
  v1::Request done = WaitUntilStopped(created.id());
  ASSERT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString();

  absl::StatusOr<std::map<std::string, std::string>> entries =
      BundleEntries(created.id());
  ASSERT_TRUE(entries.ok()) << entries.status();
  nlohmann::json manifest = nlohmann::json::parse((*entries)["manifest.json"]);
  std::map<std::string, nlohmann::json> searched;
  for (const nlohmann::json& store : manifest["stores"]) {
    searched[store["store"].get<std::string>()] = store;
  }
  ASSERT_EQ(searched.size(), 4u) << manifest.dump();
  EXPECT_EQ(searched["marketing"]["searched_with"],
            nlohmann::json::array({"email"}));
  EXPECT_GE(searched["marketing"]["record_count"].get<int>(), 1)
      << "the person's subscription was found through accounts' email";
  EXPECT_THAT((*entries)["response.md"],
              HasSubstr("| marketing | email | 1 record(s) |"));
}

TEST_F(OutcomeScenariosTest, AnswerAfterRetryNamesNoInternals) {
  const int person = stores_.PersonInEveryStore(85);
  std::string marketing = stores_.Path("marketing");
  ASSERT_NO_FATAL_FAILURE(BreakStoreFile(marketing, Breakage::kRemoved));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());
  v1::Request created = MustCreate(
      RequestForEmail(v1::ACCESS, Email(person), "outcome-12-access"));
  ASSERT_FALSE(created.id().empty());
  ASSERT_NO_FATAL_FAILURE(
      WaitForEvent(created.id(), "retry_scheduled", "marketing"));
  ASSERT_NO_FATAL_FAILURE(RestoreStoreFile(marketing));
  v1::Request done = WaitUntilStopped(created.id());
  ASSERT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString() << "\n"
                                          << EventHistory(Events(created.id()));

  absl::StatusOr<std::map<std::string, std::string>> entries =
      BundleEntries(created.id());
  ASSERT_TRUE(entries.ok()) << entries.status();
  for (const char* name : {"response.md", "exemptions.json"}) {
    ASSERT_TRUE(entries->count(name)) << name;
    const std::string& text = (*entries)[name];
    EXPECT_THAT(text, Not(HasSubstr(stores_.dir()))) << name;
    for (const auto& [store, file] : kStoreFiles) {
      EXPECT_THAT(text, Not(HasSubstr(file))) << name;
    }
    EXPECT_THAT(text, Not(HasSubstr("unable to open"))) << name;
  }
}

// 9. An erasure the store undoes: marketing.db has a trigger that puts a
// deleted subscriber back, so its connector reports success while the
// person remains. The worker's check after the erasure finds them: the
// step fails with Erasure.Residue (ERASURE_RESIDUE, not retried) and the
// request stops in NEEDS_ATTENTION instead of claiming COMPLETED; without
// the trigger, a retry completes it.
TEST_F(OutcomeScenariosTest, AnErasureTheStoreUndoesIsNotCompleted) {
  int person = stores_.PersonInEveryStore(40);
  const std::string marketing = stores_.Path("marketing");
  ExecSqlite(
      marketing,
      "CREATE TRIGGER keep_subscribers AFTER DELETE ON subscribers BEGIN "
      "INSERT INTO subscribers (email, consent, subscribed_at, "
      "processing_restricted, objected) VALUES (old.email, old.consent, "
      "old.subscribed_at, old.processing_restricted, old.objected); END");
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartWorkers());

  v1::Request created = MustCreate(
      RequestForEmail(v1::ERASURE, Email(person), "outcome-9-residue"));
  ASSERT_FALSE(created.id().empty());
  v1::Request stopped = WaitUntilStopped(created.id());
  std::vector<v1::Event> events = Events(created.id());
  SCOPED_TRACE(EventHistory(events));
  ASSERT_EQ(stopped.status(), v1::NEEDS_ATTENTION)
      << stopped.ShortDebugString();
  const v1::StoreStep* residue = FindStep(stopped, "EraseStores", "marketing");
  ASSERT_NE(residue, nullptr);
  EXPECT_EQ(residue->status(), v1::STEP_FAILED) << residue->ShortDebugString();
  EXPECT_EQ(residue->error(), "Erasure.Residue");
  EXPECT_THAT(residue->cause(), HasSubstr("ERASURE_RESIDUE"));
  EXPECT_EQ(residue->attempts(), 1u) << "a residue is not worth a retry";
  EXPECT_THAT(stopped.cause(), HasSubstr("marketing"));
  EXPECT_THAT(Kinds(events), Not(::testing::Contains("completed")));
  EXPECT_EQ(stores_.CountFor("marketing", person), 1);
  // The cause names the store and a count, never the person.
  EXPECT_THAT(residue->cause(), Not(HasSubstr(Email(person))));

  ExecSqlite(marketing, "DROP TRIGGER keep_subscribers");
  v1::Request done = RetryUntilStopped(created.id());
  EXPECT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString();
  ExpectGoneEverywhere(person);
}

}  // namespace
}  // namespace dsar::testing
