#include "engine/coordinator.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/admin_server.h"
#include "common/files.h"
#include "common/sha256.h"
#include "engine/coordinator_internal.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/worker_protocol.h"
#include "nlohmann/json.hpp"
#include "opendsr/processor.h"
#include "storage/artifact_writer.h"
#include "storage/encrypted_file.h"

namespace dsar {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::IsSupersetOf;
using ::testing::Not;

// The coordinator never opens the stores, so their paths need not exist.
// a feeds identities to b; c is erased after b.
constexpr char kInventoryYaml[] = R"yaml(
stores:
  - name: a
    kind: sqlite
    path: /nonexistent/a.db
    tables:
      - name: users
        identity_fields: {email: email, user_id: id}
        pii_fields: {email: contact, full_name: identity}
  - name: b
    kind: sqlite
    path: /nonexistent/b.db
    tables:
      - name: orders
        identity_fields: {user_id: user_id}
    identities_from: [a]
  - name: c
    kind: jsonl
    path: /nonexistent/c.jsonl
    identity_fields: {email: email}
    pii_fields: {email: contact}
    erase_after: [b]
)yaml";

constexpr absl::Duration kStatusDeadline = absl::Seconds(20);

v1::SubjectIdentity Email(const std::string& value) {
  v1::SubjectIdentity identity;
  identity.set_type(v1::EMAIL);
  identity.set_value(value);
  return identity;
}

v1::CreateRequestRequest NewCreate(v1::RequestType type,
                                   std::vector<std::string> stores = {},
                                   const std::string& idempotency_key = "") {
  // A subject per request: two open requests of one right for the same
  // subject are linked as duplicates (DuplicateIsLinkedNotRunTwice). Calls
  // with the same idempotency key get the same subject.
  static int next_subject = 0;
  v1::CreateRequestRequest create;
  create.set_type(type);
  *create.add_identities() =
      Email(idempotency_key.empty()
                ? absl::StrCat("subject", ++next_subject, "@example.com")
                : absl::StrCat("subject-", idempotency_key, "@example.com"));
  for (const std::string& store : stores) create.add_stores(store);
  create.set_idempotency_key(idempotency_key);
  return create;
}

// The step of `store` in the request's most recent Map run, or nullptr.
const v1::StoreStep* Step(const v1::Request& request,
                          const std::string& store) {
  const v1::StoreStep* found = nullptr;
  for (const v1::StoreStep& step : request.steps()) {
    if (step.store() == store) found = &step;
  }
  return found;
}

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (fs::temp_directory_path() / "coordinator_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    absl::StatusOr<Inventory> inventory =
        Inventory::Parse(kInventoryYaml, dir_);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = std::make_shared<const Inventory>(std::move(*inventory));
    absl::StatusOr<std::shared_ptr<const WorkflowDefinition>> definition =
        WorkflowDefinition::Parse(WorkflowDefinition::DefaultJson());
    ASSERT_TRUE(definition.ok()) << definition.status();
    definition_ = *definition;
    Start();
  }

  void TearDown() override {
    coordinator_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // (Re)opens the coordinator on dir_; the previous one is destroyed first.
  void Start(absl::Duration lease_duration = absl::Seconds(30)) {
    coordinator_.reset();
    Coordinator::Options options;
    options.data_dir = dir_;
    options.definition = definition_;
    options.inventory = inventory_;
    options.lease_duration = lease_duration;
    // These tests drive the workflow itself; verification has its own tests.
    options.verify_unattested = false;
    if (configure_) configure_(options);
    absl::StatusOr<std::unique_ptr<Coordinator>> coordinator =
        Coordinator::Create(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = std::move(*coordinator);
  }

  // Restarts with `configure` applied to the options, now and on later
  // restarts.
  void StartWith(std::function<void(Coordinator::Options&)> configure) {
    configure_ = std::move(configure);
    Start();
  }

  v1::Request Create(const v1::CreateRequestRequest& create) {
    absl::StatusOr<v1::Request> created = coordinator_->CreateRequest(create);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.value_or(v1::Request());
  }

  v1::Request Get(const std::string& id) {
    absl::StatusOr<v1::Request> request = coordinator_->GetRequest(id);
    EXPECT_TRUE(request.ok()) << request.status();
    return request.value_or(v1::Request());
  }

  static v1::PollTaskRequest PollRequest(const std::string& worker_id,
                                         const std::vector<std::string>& stores,
                                         int wait_ms) {
    v1::PollTaskRequest poll;
    poll.set_worker_id(worker_id);
    for (const std::string& store : stores) poll.add_stores(store);
    poll.set_wait_ms(wait_ms);
    return poll;
  }

  // What `worker_id` sends to complete `task`'s `attempt`, nothing more.
  static v1::CompleteTaskRequest Completion(const v1::Task& task,
                                            const std::string& worker_id,
                                            uint32_t attempt) {
    v1::CompleteTaskRequest complete;
    complete.set_worker_id(worker_id);
    complete.set_task_id(task.task_id());
    complete.set_attempt(attempt);
    return complete;
  }

  std::optional<v1::Task> Poll(const std::string& worker_id,
                               std::vector<std::string> stores,
                               int wait_ms = 100) {
    absl::StatusOr<Coordinator::LeasedTasks> tasks = coordinator_->PollTask(
        PollRequest(worker_id, stores, wait_ms), [] { return false; });
    EXPECT_TRUE(tasks.ok()) << tasks.status();
    if (!tasks.ok() || tasks->empty()) return std::nullopt;
    EXPECT_EQ(tasks->size(), 1u) << "a poll for one task got more";
    return tasks->front();
  }

  // ReportTasksAsync, waited for.
  Coordinator::ReportsAnswer Report(std::vector<v1::TaskReport> reports,
                                    const v1::PollTaskRequest* next) {
    auto answered =
        std::make_shared<std::promise<Coordinator::ReportsAnswer>>();
    std::future<Coordinator::ReportsAnswer> answer = answered->get_future();
    coordinator_->ReportTasksAsync(std::move(reports), next,
                                   [answered](Coordinator::ReportsAnswer got) {
                                     answered->set_value(std::move(got));
                                   });
    return answer.get();
  }

  // Uploads an export for `task` as `worker_id` would; returns its SHA-256.
  absl::StatusOr<std::string> Upload(const v1::Task& task,
                                     const std::string& worker_id) {
    v1::ArtifactHeader header;
    header.set_worker_id(worker_id);
    header.set_task_id(task.task_id());
    header.set_attempt(task.attempt());
    absl::StatusOr<Coordinator::ArtifactUpload> upload =
        coordinator_->ArtifactPathForUpload(header);
    if (!upload.ok()) return upload.status();
    absl::StatusOr<std::string> key =
        coordinator_->RequestDataKey(upload->request_id);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::unique_ptr<ArtifactWriter>> writer =
        ArtifactWriter::Create(upload->path, *key,
                               ExportFileContext(upload->request_id));
    if (!writer.ok()) return writer.status();
    absl::Status appended = (*writer)->Append(
        absl::StrCat(R"({"store":")", task.store(), R"(","records":[]})"));
    if (!appended.ok()) return appended;
    absl::StatusOr<ArtifactInfo> info = (*writer)->Commit();
    if (!info.ok()) return info.status();
    return info->sha256;
  }

  absl::Status CompleteWith(const v1::Task& task, const std::string& worker_id,
                            uint32_t attempt, const std::string& sha256,
                            std::vector<v1::SubjectIdentity> discovered = {}) {
    v1::CompleteTaskRequest complete = Completion(task, worker_id, attempt);
    complete.set_record_count(1);
    complete.set_artifact_sha256(sha256);
    for (const v1::SubjectIdentity& identity : discovered)
      *complete.add_discovered_identities() = identity;
    return coordinator_->CompleteTask(complete);
  }

  // Does the task as its holder: uploads the export if it is one, then
  // completes it.
  absl::Status Finish(const v1::Task& task, const std::string& worker_id,
                      std::vector<v1::SubjectIdentity> discovered = {}) {
    std::string sha256;
    if (task.operation() == "export") {
      absl::StatusOr<std::string> uploaded = Upload(task, worker_id);
      if (!uploaded.ok()) return uploaded.status();
      sha256 = *uploaded;
    }
    return CompleteWith(task, worker_id, task.attempt(), sha256,
                        std::move(discovered));
  }

  // Creates an ERASURE of store "a" alone (into `created`), completes its
  // discovery as w1, and returns its erase task leased to w1: the last
  // task of the request. Nullopt (and a test failure) when it goes wrong.
  std::optional<v1::Task> LastTaskOfAnErasureOfStoreA(v1::Request* created) {
    *created = Create(NewCreate(v1::ERASURE, {"a"}));
    std::optional<v1::Task> discover = Poll("w1", {"a"}, 5000);
    EXPECT_TRUE(discover.has_value());
    if (!discover.has_value()) return std::nullopt;
    EXPECT_TRUE(Finish(*discover, "w1").ok());
    std::optional<v1::Task> erase = Poll("w1", {"a"}, 5000);
    EXPECT_TRUE(erase.has_value());
    if (!erase.has_value()) return std::nullopt;
    EXPECT_EQ(erase->operation(), "erase");
    if (erase->operation() != "erase") return std::nullopt;
    return erase;
  }

  absl::Status Fail(const v1::Task& task, const std::string& worker_id,
                    uint32_t attempt) {
    v1::FailTaskRequest fail;
    fail.set_worker_id(worker_id);
    fail.set_task_id(task.task_id());
    fail.set_attempt(attempt);
    fail.set_error("Connector.Unavailable");
    fail.set_cause("store is down");
    return coordinator_->FailTask(fail);
  }

  absl::StatusOr<int64_t> Heartbeat(const v1::Task& task,
                                    const std::string& worker_id,
                                    uint32_t attempt) {
    v1::HeartbeatRequest heartbeat;
    heartbeat.set_worker_id(worker_id);
    heartbeat.set_task_id(task.task_id());
    heartbeat.set_attempt(attempt);
    return coordinator_->Heartbeat(heartbeat);
  }

  // Polls GetRequest until `done` holds; the bundle runs on its own thread.
  v1::Request WaitFor(const std::string& id,
                      const std::function<bool(const v1::Request&)>& done) {
    absl::Time deadline = absl::Now() + kStatusDeadline;
    v1::Request request;
    while (absl::Now() < deadline) {
      request = Get(id);
      if (done(request)) return request;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "condition not reached for " << id << ":\n"
                  << request.DebugString();
    return request;
  }

  v1::Request WaitForStatus(const std::string& id, v1::RequestStatus status) {
    return WaitFor(id, [status](const v1::Request& request) {
      return request.status() == status;
    });
  }

  std::vector<v1::Event> AllEvents(const std::string& id) {
    v1::ListEventsRequest list;
    list.set_request_id(id);
    list.set_page_size(1000);
    absl::StatusOr<v1::ListEventsResponse> events =
        coordinator_->ListEvents(list);
    EXPECT_TRUE(events.ok()) << events.status();
    if (!events.ok()) return {};
    EXPECT_TRUE(events->next_page_token().empty());
    return {events->events().begin(), events->events().end()};
  }

  std::vector<std::string> EventKinds(const std::string& id) {
    std::vector<std::string> kinds;
    for (const v1::Event& event : AllEvents(id)) kinds.push_back(event.kind());
    return kinds;
  }

  // Polls `done` until it holds or kStatusDeadline passed.
  static bool WaitUntil(const std::function<bool()>& done) {
    absl::Time deadline = absl::Now() + kStatusDeadline;
    while (absl::Now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  }

  std::string NotifyPath() const { return dir_ + "/notifications.jsonl"; }

  // The complete lines of the notification file (all requests when
  // `request_id` is empty), in file order.
  std::vector<nlohmann::json> Notifications(
      const std::string& request_id = "") const {
    std::vector<nlohmann::json> lines;
    absl::StatusOr<std::string> text = ReadFile(NotifyPath());
    if (!text.ok()) return lines;
    std::vector<std::string> parts = absl::StrSplit(*text, '\n');
    parts.pop_back();  // After the last newline: empty or being written.
    for (const std::string& part : parts) {
      nlohmann::json line = nlohmann::json::parse(part, nullptr, false);
      EXPECT_FALSE(line.is_discarded()) << part;
      if (line.is_discarded()) continue;
      if (request_id.empty() || line.value("request_id", "") == request_id) {
        lines.push_back(std::move(line));
      }
    }
    return lines;
  }

  static std::vector<std::string> Kinds(
      const std::vector<nlohmann::json>& lines) {
    std::vector<std::string> kinds;
    for (const nlohmann::json& line : lines) {
      kinds.push_back(line.value("kind", ""));
    }
    return kinds;
  }

  // Waits until the file has a notification of `kind` for the request;
  // delivery is asynchronous.
  nlohmann::json WaitForNotification(const std::string& request_id,
                                     const std::string& kind) {
    nlohmann::json found;
    bool seen = WaitUntil([&] {
      for (nlohmann::json& line : Notifications(request_id)) {
        if (line.value("kind", "") == kind) {
          found = std::move(line);
          return true;
        }
      }
      return false;
    });
    EXPECT_TRUE(seen) << "no \"" << kind << "\" notification for " << request_id
                      << "; have: "
                      << ::testing::PrintToString(
                             Kinds(Notifications(request_id)));
    return found;
  }

  // The one-time code the subject was sent.
  std::string WaitForCode(const std::string& request_id) {
    nlohmann::json needed =
        WaitForNotification(request_id, "verification_needed");
    return needed.value("verification_code", "");
  }

  absl::StatusOr<v1::Request> Verify(const std::string& id,
                                     const std::string& code) {
    v1::VerifyIdentityRequest verify;
    verify.set_id(id);
    verify.set_code(code);
    return coordinator_->VerifyIdentity(verify);
  }

  absl::StatusOr<v1::Request> Extend(const std::string& id, int extension,
                                     const std::string& reason,
                                     const std::string& actor = "") {
    v1::ExtendDeadlineRequest extend;
    extend.set_id(id);
    extend.set_extension(extension);
    extend.set_reason(reason);
    return coordinator_->ExtendDeadline(extend, actor);
  }

  absl::StatusOr<v1::Request> Retry(const std::string& id,
                                    std::vector<std::string> stores = {},
                                    const std::string& reason = "",
                                    const std::string& actor = "") {
    v1::RetryRequestRequest retry;
    retry.set_id(id);
    for (const std::string& store : stores) retry.add_stores(store);
    retry.set_reason(reason);
    return coordinator_->RetryRequest(retry, actor);
  }

  // The events of `kind`, in order.
  std::vector<v1::Event> EventsOf(const std::string& id,
                                  const std::string& kind) {
    std::vector<v1::Event> out;
    for (v1::Event& event : AllEvents(id)) {
      if (event.kind() == kind) out.push_back(std::move(event));
    }
    return out;
  }

  std::string dir_;
  std::shared_ptr<const Inventory> inventory_;
  std::shared_ptr<const WorkflowDefinition> definition_;
  std::unique_ptr<Coordinator> coordinator_;
  std::function<void(Coordinator::Options&)> configure_;
};

TEST_F(CoordinatorTest, AccessRequestRunsToCompletionWithABundle) {
  v1::Request created = Create(NewCreate(v1::ACCESS));
  EXPECT_THAT(created.id(), ::testing::StartsWith("dsr_"));
  EXPECT_EQ(created.status(), v1::RUNNING);
  EXPECT_EQ(created.current_state(), "ExportStores");
  EXPECT_EQ(created.regulation(), "GDPR");
  EXPECT_EQ(created.definition_version(), definition_->version());
  EXPECT_THAT(created.stores(), ElementsAre("a", "b", "c"));
  ASSERT_EQ(created.steps_size(), 3);
  EXPECT_EQ(Step(created, "a")->status(), v1::READY);
  EXPECT_EQ(Step(created, "b")->status(), v1::WAITING);
  EXPECT_EQ(Step(created, "c")->status(), v1::READY);
  // The answer came after the commit: the stored copy says the same.
  EXPECT_EQ(Get(created.id()).status(), v1::RUNNING);

  std::optional<v1::Task> first = Poll("w1", {"a", "b", "c"});
  std::optional<v1::Task> second = Poll("w1", {"a", "b", "c"});
  ASSERT_TRUE(first && second);
  // b still waits for a's identities.
  EXPECT_FALSE(Poll("w1", {"a", "b", "c"}, 50).has_value());
  std::set<std::string> leased = {first->store(), second->store()};
  EXPECT_EQ(leased, (std::set<std::string>{"a", "c"}));
  const v1::Task& task_a = first->store() == "a" ? *first : *second;
  const v1::Task& task_c = first->store() == "a" ? *second : *first;
  EXPECT_EQ(task_a.request_id(), created.id());
  EXPECT_EQ(task_a.operation(), "export");
  EXPECT_EQ(task_a.attempt(), 1u);
  EXPECT_EQ(task_a.request_type(), v1::ACCESS);
  EXPECT_EQ(task_a.lease_duration_ms(), 30000);
  EXPECT_GT(task_a.lease_expires_unix_ms(), absl::ToUnixMillis(absl::Now()));
  ASSERT_EQ(task_a.identities_size(), 1);
  EXPECT_EQ(task_a.identities(0).value(), created.identities(0).value());
  v1::Request running = Get(created.id());
  EXPECT_EQ(Step(running, "a")->status(), v1::LEASED);
  EXPECT_EQ(Step(running, "a")->worker_id(), "w1");
  EXPECT_EQ(Step(running, "a")->attempts(), 1u);

  v1::SubjectIdentity user_id;
  user_id.set_type(v1::USER_ID);
  user_id.set_value("42");
  ASSERT_TRUE(Finish(task_a, "w1", {user_id}).ok());
  std::optional<v1::Task> task_b = Poll("w2", {"b"});
  ASSERT_TRUE(task_b.has_value());
  EXPECT_EQ(task_b->request_id(), created.id());
  // The identity found in a travels downstream.
  ASSERT_EQ(task_b->identities_size(), 2);
  EXPECT_EQ(task_b->identities(1).type(), v1::USER_ID);
  EXPECT_EQ(task_b->identities(1).value(), "42");
  ASSERT_TRUE(Finish(task_c, "w1").ok());
  ASSERT_TRUE(Finish(*task_b, "w2").ok());

  v1::Request done = WaitForStatus(created.id(), v1::COMPLETED);
  EXPECT_EQ(done.current_state(), "Finalize");
  EXPECT_TRUE(done.has_completed_at());
  for (const std::string store : {"a", "b", "c"}) {
    ASSERT_NE(Step(done, store), nullptr) << store;
    EXPECT_EQ(Step(done, store)->status(), v1::SUCCEEDED) << store;
    EXPECT_EQ(Step(done, store)->artifact_sha256().size(), 64u) << store;
  }
  const v1::Bundle& bundle = done.bundle();
  ASSERT_TRUE(fs::exists(bundle.path())) << bundle.path();
  // On disk the bundle is encrypted under the request's data key; size and
  // SHA-256 are those of the ZIP the subject gets.
  absl::StatusOr<std::string> key = coordinator_->RequestDataKey(created.id());
  ASSERT_TRUE(key.ok()) << key.status();
  absl::StatusOr<std::unique_ptr<EncryptedFileReader>> zip =
      EncryptedFileReader::Open(bundle.path(), *key,
                                BundleFileContext(created.id()));
  ASSERT_TRUE(zip.ok()) << zip.status();
  EXPECT_EQ((*zip)->size(), bundle.size_bytes());
  absl::StatusOr<std::string> sha256 = EncryptedFileSha256Hex(
      bundle.path(), *key, BundleFileContext(created.id()));
  ASSERT_TRUE(sha256.ok()) << sha256.status();
  EXPECT_EQ(*sha256, bundle.sha256());
  EXPECT_NE(*Sha256FileHex(bundle.path()), bundle.sha256());
  EXPECT_THAT(bundle.files(), IsSupersetOf({"manifest.json", "data/a.json",
                                            "data/b.json", "data/c.json"}));
  // Personal data is private on disk, and the exports are gone once the
  // bundle holds them (removed right after the commit that answered).
  EXPECT_EQ(fs::status(dir_).permissions() & fs::perms::all,
            fs::perms::owner_all);
  EXPECT_EQ(fs::status(bundle.path()).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_TRUE(WaitUntil([&] {
    return !fs::exists(fs::path(dir_) / "artifacts" / created.id());
  })) << "exports of a bundled request are removed";

  std::vector<std::string> kinds = EventKinds(created.id());
  ASSERT_FALSE(kinds.empty());
  EXPECT_EQ(kinds.front(), "received");
  EXPECT_EQ(kinds.back(), "completed");
  EXPECT_THAT(kinds, IsSupersetOf({"task_leased", "task_completed",
                                   "store_succeeded", "task_started"}));
  // Finished requests stay readable and listed.
  v1::ListRequestsRequest completed;
  completed.set_status(v1::COMPLETED);
  absl::StatusOr<v1::ListRequestsResponse> listed =
      coordinator_->ListRequests(completed);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->requests_size(), 1);
  EXPECT_EQ(listed->requests(0).id(), created.id());
}

TEST_F(CoordinatorTest, MetricsShowTheLiveStateAndCountTransitions) {
  auto scrape = [&] {
    return AdminServer::RenderMetrics(coordinator_->MetricsCollectables());
  };
  v1::Request created = Create(NewCreate(v1::ACCESS));
  std::string text = scrape();
  EXPECT_THAT(text, HasSubstr("dsar_requests{status=\"RUNNING\",type="
                              "\"ACCESS\"} 1"));
  EXPECT_THAT(text,
              HasSubstr("dsar_requests_created_total{type=\"ACCESS\"} 1"));
  EXPECT_THAT(text, HasSubstr("dsar_ready_tasks{store=\"a\"} 1"));
  EXPECT_THAT(text, HasSubstr("dsar_ready_tasks{store=\"b\"} 0"));
  EXPECT_THAT(text, HasSubstr("dsar_steps{state=\"waiting\"} 1"));
  EXPECT_THAT(text, HasSubstr("dsar_oldest_request_deadline_seconds "));
  EXPECT_THAT(text, HasSubstr("dsar_fsyncs_total "));

  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());
  text = scrape();
  EXPECT_THAT(text, HasSubstr("dsar_leases_held{store=\"a\"} 1"));
  EXPECT_THAT(text, HasSubstr("dsar_ready_tasks{store=\"a\"} 0"));
  EXPECT_THAT(text, HasSubstr("dsar_workers_live 1"));

  v1::CancelRequestRequest cancel;
  cancel.set_id(created.id());
  ASSERT_TRUE(coordinator_->CancelRequest(cancel).ok());
  text = scrape();
  EXPECT_THAT(text, HasSubstr("dsar_requests_finished_total{outcome="
                              "\"CANCELLED\",type=\"ACCESS\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("status=\"RUNNING\"")));
  EXPECT_THAT(text, Not(HasSubstr("dsar_oldest_request_age_seconds")));
  // Labels name statuses, types and stores: never a request or a person.
  EXPECT_THAT(text, Not(HasSubstr(created.id())));
  EXPECT_THAT(text, Not(HasSubstr("example.com")));
  EXPECT_TRUE(coordinator_->Liveness().ok());
  EXPECT_TRUE(coordinator_->Readiness().ok()) << coordinator_->Readiness();
}

TEST_F(CoordinatorTest, ReadinessFailsBelowTheDiskReserve) {
  StartWith([](Coordinator::Options& options) {
    options.disk_reserve_bytes = uint64_t{1} << 62;  // More than any disk.
  });
  EXPECT_TRUE(coordinator_->Liveness().ok());
  absl::Status ready = coordinator_->Readiness();
  EXPECT_EQ(ready.code(), absl::StatusCode::kResourceExhausted) << ready;
}

TEST_F(CoordinatorTest, DuplicateIsLinkedNotRunTwice) {
  v1::CreateRequestRequest create = NewCreate(v1::ERASURE, {"a"});
  v1::Request first = Create(create);
  ASSERT_EQ(first.status(), v1::RUNNING);
  // The same right, stores and subject while the first is open: recorded,
  // linked to the first, not run, and not done before the first is.
  v1::Request second = Create(create);
  EXPECT_NE(second.id(), first.id());
  EXPECT_EQ(second.linked_to(), first.id());
  EXPECT_EQ(second.status(), v1::RUNNING);
  EXPECT_TRUE(second.steps().empty());
  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());
  EXPECT_EQ(task->request_id(), first.id());
  EXPECT_FALSE(Poll("w1", {"a"}, 50).has_value())
      << "the duplicate must not run";
  // Both sides are audited.
  bool noted = false;
  for (const v1::Event& event : AllEvents(first.id())) {
    noted = noted || (event.kind() == "duplicate_linked" &&
                      absl::StrContains(event.detail(), second.id()));
  }
  EXPECT_TRUE(noted);
  // Another right, or other stores, for the same subject: not a duplicate.
  v1::CreateRequestRequest access = create;
  access.set_type(v1::ACCESS);
  EXPECT_TRUE(Create(access).linked_to().empty());
  v1::CreateRequestRequest wider = create;
  wider.add_stores("c");
  EXPECT_TRUE(Create(wider).linked_to().empty());
  // The first completes: the linked one completes with it.
  ASSERT_TRUE(Finish(*task, "w1").ok());
  while (std::optional<v1::Task> next = Poll("w1", {"a", "c"}, 50)) {
    ASSERT_TRUE(Finish(*next, "w1").ok());
  }
  EXPECT_EQ(Get(first.id()).status(), v1::COMPLETED);
  v1::Request answered = Get(second.id());
  EXPECT_EQ(answered.status(), v1::COMPLETED);
  EXPECT_EQ(answered.linked_to(), first.id());
}

TEST_F(CoordinatorTest, VerifiedRequestIsNeverLinkedToAnUnverifiedOne) {
  ASSERT_NO_FATAL_FAILURE(StartWith(
      [](Coordinator::Options& options) { options.verify_unattested = true; }));
  v1::CreateRequestRequest unverified = NewCreate(v1::ERASURE, {"a"});
  v1::Request waiting = Create(unverified);
  ASSERT_EQ(waiting.status(), v1::VERIFYING);
  v1::CreateRequestRequest verified = unverified;
  verified.mutable_verified()->set_method("logged_in_session");
  v1::Request attested = Create(verified);
  EXPECT_TRUE(attested.linked_to().empty());
  EXPECT_EQ(attested.status(), v1::RUNNING);
  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());
  EXPECT_EQ(task->request_id(), attested.id());
}

TEST_F(CoordinatorTest, LinkedRequestRunsOnItsOwnWhenTheOriginalEnds) {
  ASSERT_NO_FATAL_FAILURE(StartWith(
      [](Coordinator::Options& options) { options.verify_unattested = true; }));
  // Two unverified requests: the second waits for the first.
  v1::CreateRequestRequest create = NewCreate(v1::ERASURE, {"a"});
  v1::Request first = Create(create);
  v1::Request second = Create(create);
  ASSERT_EQ(second.linked_to(), first.id());
  // The first is cancelled (or its codes run out): the second is unlinked
  // and asks its own subject for a code; nothing is COMPLETED.
  v1::CancelRequestRequest cancel;
  cancel.set_id(first.id());
  cancel.set_reason("sent by mistake");
  ASSERT_TRUE(coordinator_->CancelRequest(cancel).ok());
  v1::Request alone = Get(second.id());
  EXPECT_EQ(alone.status(), v1::VERIFYING);
  EXPECT_TRUE(alone.linked_to().empty());
  EXPECT_THAT(EventKinds(second.id()),
              IsSupersetOf({"linked_as_duplicate", "unlinked",
                            "verification_code_issued"}));
  // A third request now links to the second, which is open on its own.
  EXPECT_EQ(Create(create).linked_to(), second.id());
}

TEST_F(CoordinatorTest, UnservedStoreRaisesAnAlertOnTheEngineClock) {
  FakeClock clock(absl::ToUnixMillis(absl::Now()));
  ASSERT_NO_FATAL_FAILURE(StartWith([&](Coordinator::Options& options) {
    options.clock = &clock;
    options.unserved_alert_after = absl::Minutes(1);
    options.worker_silence_after = absl::Seconds(90);
  }));
  v1::Request created = Create(NewCreate(v1::ERASURE, {"a", "c"}));
  // A worker serves c, none serves a.
  std::optional<v1::Task> task = Poll("w1", {"c"});
  ASSERT_TRUE(task.has_value());
  clock.Advance(60'000);
  EXPECT_FALSE(Poll("w1", {"c"}, 10).has_value());
  EXPECT_TRUE(Get(created.id()).steps(0).alert().empty())
      << "dsard just started: workers get time to reconnect";
  clock.Advance(60'000);
  absl::StatusOr<v1::ListWorkersResponse> workers = coordinator_->ListWorkers();
  ASSERT_TRUE(workers.ok()) << workers.status();
  EXPECT_THAT(workers->unserved_stores(), ElementsAre("a", "b"));

  v1::Request alerted = Get(created.id());
  ASSERT_NE(Step(alerted, "a"), nullptr);
  EXPECT_THAT(Step(alerted, "a")->alert(),
              HasSubstr("no live worker serves store a"));
  EXPECT_EQ(Step(alerted, "a")->status(), v1::READY);
  EXPECT_TRUE(Step(alerted, "c")->alert().empty());
  std::vector<v1::Event> raised = EventsOf(created.id(), "store_unserved");
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(raised[0].store(), "a");
  // Raised once per wait, and cleared when a worker takes the task. (c's
  // lease expires meanwhile and w1 falls silent: c gets its own alert.)
  clock.Advance(600'000);
  ASSERT_TRUE(coordinator_->ListWorkers().ok());
  int alerts_for_a = 0;
  for (const v1::Event& event : EventsOf(created.id(), "store_unserved")) {
    alerts_for_a += event.store() == "a";
  }
  EXPECT_EQ(alerts_for_a, 1);
  ASSERT_TRUE(Poll("w2", {"a"}).has_value());
  EXPECT_TRUE(Step(Get(created.id()), "a")->alert().empty());
  // The coordinator reads `clock` until it stops: stop it while the clock
  // lives (UBSan caught the loop calling the destroyed clock).
  coordinator_.reset();
}

TEST_F(CoordinatorTest, StoreRemovedFromTheInventoryFailsItsStepsAtStart) {
  v1::Request created = Create(NewCreate(v1::ERASURE, {"a", "c"}));
  // Restarted with c gone from the inventory: c's step fails naming the
  // reason instead of waiting for a worker that can never poll for it.
  absl::StatusOr<Inventory> without_c = Inventory::Parse(R"yaml(
stores:
  - name: a
    kind: sqlite
    path: /nonexistent/a.db
    tables:
      - name: users
        identity_fields: {email: email, user_id: id}
)yaml",
                                                         dir_);
  ASSERT_TRUE(without_c.ok()) << without_c.status();
  auto smaller = std::make_shared<const Inventory>(std::move(*without_c));
  ASSERT_NO_FATAL_FAILURE(StartWith(
      [&](Coordinator::Options& options) { options.inventory = smaller; }));
  v1::Request after = Get(created.id());
  ASSERT_NE(Step(after, "c"), nullptr);
  EXPECT_EQ(Step(after, "c")->status(), v1::STEP_FAILED);
  EXPECT_EQ(Step(after, "c")->error(), kErrorStoreNotInInventory);
  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());
  ASSERT_TRUE(Finish(*task, "w1").ok());
  EXPECT_EQ(Get(created.id()).status(), v1::NEEDS_ATTENTION);

  // The store is back: a retry runs it.
  ASSERT_NO_FATAL_FAILURE(StartWith([](Coordinator::Options&) {}));
  absl::StatusOr<v1::Request> retried = Retry(created.id(), {}, "c restored");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(Step(*retried, "c")->status(), v1::READY);
}

TEST_F(CoordinatorTest, ScopeThatCannotBeSearchedIsRefused) {
  // b matches user ids only, which a would discover from the email.
  absl::StatusOr<v1::Request> refused =
      coordinator_->CreateRequest(NewCreate(v1::ERASURE, {"b"}));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("store \"b\""));
  absl::StatusOr<v1::ListRequestsResponse> listed =
      coordinator_->ListRequests(v1::ListRequestsRequest());
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->requests_size(), 0) << "nothing was stored";
  EXPECT_TRUE(
      coordinator_->CreateRequest(NewCreate(v1::ERASURE, {"a", "b"})).ok());
}

TEST_F(CoordinatorTest, PausedRequestGetsNoTaskUntilResumed) {
  v1::Request created = Create(NewCreate(v1::ERASURE, {"a"}));
  v1::PauseRequestRequest pause;
  pause.set_id(created.id());
  EXPECT_EQ(coordinator_->PauseRequest(pause).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "a reason is required";
  pause.set_reason("legal hold 2026-17");
  absl::StatusOr<v1::Request> paused =
      coordinator_->PauseRequest(pause, "operator-1");
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_EQ(paused->status(), v1::PAUSED);
  EXPECT_EQ(paused->deadline().seconds(), created.deadline().seconds())
      << "the statutory clock keeps running";
  EXPECT_FALSE(Poll("w1", {"a"}, 50).has_value());
  EXPECT_EQ(coordinator_->PauseRequest(pause).status().code(),
            absl::StatusCode::kFailedPrecondition);
  v1::ResumeRequestRequest resume;
  resume.set_id(created.id());
  absl::StatusOr<v1::Request> resumed =
      coordinator_->ResumeRequest(resume, "operator-1");
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->status(), v1::RUNNING);
  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());
  EXPECT_EQ(task->request_id(), created.id());
  EXPECT_EQ(coordinator_->ResumeRequest(resume).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CoordinatorTest, ErasureRunsDiscoveryThenEraseWithoutBundle) {
  v1::Request created = Create(NewCreate(v1::ERASURE));
  std::vector<std::string> operations;
  // Drain: each poll hands out whatever is ready; erase_after keeps c until
  // b is erased.
  for (int n = 0; n < 6; ++n) {
    std::optional<v1::Task> task = Poll("w1", {"a", "b", "c"}, 5000);
    ASSERT_TRUE(task.has_value()) << "task " << n;
    operations.push_back(absl::StrCat(task->operation(), ":", task->store()));
    if (task->operation() == "erase" && task->store() == "c") {
      EXPECT_THAT(operations, Contains("erase:b"));
    }
    ASSERT_TRUE(Finish(*task, "w1").ok());
  }
  EXPECT_THAT(operations, ::testing::UnorderedElementsAre(
                              "discover:a", "discover:b", "discover:c",
                              "erase:a", "erase:b", "erase:c"));
  v1::Request done = WaitForStatus(created.id(), v1::COMPLETED);
  EXPECT_FALSE(done.has_bundle());
  EXPECT_EQ(done.steps_size(), 6);
}

// The asynchronous create (DsarService.CreateRequest): `done` gets what
// CreateRequest returns, once the request is durable, and a refusal at once.
TEST_F(CoordinatorTest, AsyncCreateAnswersAsTheBlockingCallDoes) {
  auto create_async = [&](const v1::CreateRequestRequest& request) {
    auto answered =
        std::make_shared<std::promise<absl::StatusOr<v1::Request>>>();
    std::future<absl::StatusOr<v1::Request>> answer = answered->get_future();
    coordinator_->CreateRequestAsync(
        request, "operator:test",
        [answered](absl::StatusOr<v1::Request> created) {
          answered->set_value(std::move(created));
        });
    return answer.get();
  };
  const v1::CreateRequestRequest create =
      NewCreate(v1::ERASURE, {}, "async-create-1");
  absl::StatusOr<v1::Request> created = create_async(create);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(Get(created->id()).status(), created->status());
  EXPECT_THAT(EventKinds(created->id()), Contains("received"));
  // The same idempotency key answers the same request, as CreateRequest.
  absl::StatusOr<v1::Request> again = create_async(create);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id(), created->id());

  v1::CreateRequestRequest invalid =
      NewCreate(v1::ERASURE, {}, "async-create-2");
  invalid.clear_identities();
  absl::StatusOr<v1::Request> refused = create_async(invalid);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
}

// A command the stopping loop drops without running answers UNAVAILABLE;
// an answer given is given once.
TEST(AnswerOnceTest, ADroppedAnswerIsUnavailableAndAGivenOneIsGivenOnce) {
  std::vector<absl::StatusOr<int>> answers;
  auto record = [&](absl::StatusOr<int> answer) { answers.push_back(answer); };
  { coordinator_internal::AnswerOnce<int> dropped(record); }
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status().code(), absl::StatusCode::kUnavailable);

  answers.clear();
  {
    coordinator_internal::AnswerOnce<int> given(record);
    given.Give(7);
    given.Give(8);
  }
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].value_or(0), 7);
}

// The asynchronous report path (WorkerService.ReportTasks): `done` gets
// what the blocking calls return, the next task with a completion, and a
// refusal leaves nothing behind.
TEST_F(CoordinatorTest, AsyncReportsAnswerAsTheBlockingCallsDo) {
  v1::Request created = Create(NewCreate(v1::ERASURE));
  std::optional<v1::Task> first = Poll("w1", {"a", "b", "c"}, 5000);
  ASSERT_TRUE(first.has_value());
  const v1::PollTaskRequest next = PollRequest("w1", {"a", "b", "c"}, 5000);
  auto complete_async = [&](const v1::Task& task, uint32_t attempt) {
    std::vector<v1::TaskReport> reports(1);
    *reports[0].mutable_complete() = Completion(task, "w1", attempt);
    return Report(std::move(reports), &next);
  };
  Coordinator::ReportsAnswer second = complete_async(*first, first->attempt());
  ASSERT_EQ(second.statuses.size(), 1u);
  ASSERT_TRUE(second.statuses[0].ok()) << second.statuses[0];
  ASSERT_EQ(second.next_tasks.size(), 1u) << "the other discoveries were ready";
  const v1::Task& next_task = second.next_tasks[0];
  EXPECT_EQ(next_task.request_id(), created.id());
  EXPECT_EQ(next_task.operation(), "discover");
  // Durable before the answer: the completion is in the stored request.
  EXPECT_EQ(Step(Get(created.id()), first->store())->status(), v1::SUCCEEDED);

  size_t events_before = AllEvents(created.id()).size();
  Coordinator::ReportsAnswer again = complete_async(*first, first->attempt());
  EXPECT_EQ(again.statuses[0].code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(again.next_tasks.empty());
  EXPECT_EQ(AllEvents(created.id()).size(), events_before);

  auto fail_async = [&](const v1::Task& task, const std::string& worker_id) {
    std::vector<v1::TaskReport> reports(1);
    v1::FailTaskRequest& fail = *reports[0].mutable_fail();
    fail.set_worker_id(worker_id);
    fail.set_task_id(task.task_id());
    fail.set_attempt(task.attempt());
    fail.set_error("Connector.Unavailable");
    fail.set_cause("store is down");
    return Report(std::move(reports), nullptr).statuses[0];
  };
  EXPECT_EQ(fail_async(next_task, "w2").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AllEvents(created.id()).size(), events_before);
  ASSERT_TRUE(fail_async(next_task, "w1").ok());
  EXPECT_THAT(EventKinds(created.id()), Contains("task_failed"));
}

// A poll that takes several tasks gets them only when more are ready than
// polls wait: each waiting poll gets one first, and the rest go out in
// turns.
TEST_F(CoordinatorTest, APollTakesMoreTasksOnlyWhenMoreAreReadyThanPollsWait) {
  // Two polls wait before the work comes.
  auto poll_for = [&](const std::string& worker_id) {
    v1::PollTaskRequest poll = PollRequest(worker_id, {"a", "b", "c"}, 5000);
    poll.set_max_tasks(8);
    return std::async(std::launch::async, [this, poll] {
      return coordinator_->PollTask(poll, [] { return false; });
    });
  };
  auto polled_1 = poll_for("w1");
  auto polled_2 = poll_for("w2");
  // ListWorkers runs on the loop after both polls are registered (each
  // poll registers its worker as it is added).
  for (int seen = 0; seen < 2;) {
    absl::StatusOr<v1::ListWorkersResponse> workers =
        coordinator_->ListWorkers();
    ASSERT_TRUE(workers.ok()) << workers.status();
    seen = workers->workers_size();
  }
  v1::Request created = Create(NewCreate(v1::ERASURE, {"a", "b", "c"}));
  absl::StatusOr<Coordinator::LeasedTasks> tasks_1 = polled_1.get();
  absl::StatusOr<Coordinator::LeasedTasks> tasks_2 = polled_2.get();
  ASSERT_TRUE(tasks_1.ok()) << tasks_1.status();
  ASSERT_TRUE(tasks_2.ok()) << tasks_2.status();
  // Two discoveries are ready (b waits for a's identities): one to each
  // poll, not both to one.
  ASSERT_EQ(tasks_1->size(), 1u);
  ASSERT_EQ(tasks_2->size(), 1u);
  std::set<std::string> stores;
  for (const auto* tasks : {&*tasks_1, &*tasks_2}) {
    EXPECT_EQ(tasks->front().request_id(), created.id());
    stores.insert(tasks->front().store());
  }
  EXPECT_THAT(stores, testing::ElementsAre("a", "c"));

  // With nobody else waiting, one poll takes what is ready, up to its
  // max_tasks.
  Create(NewCreate(v1::ERASURE, {"a", "b", "c"}));
  Create(NewCreate(v1::ERASURE, {"a", "b", "c"}));
  v1::PollTaskRequest poll = PollRequest("w3", {"a", "b", "c"}, 5000);
  poll.set_max_tasks(3);
  absl::StatusOr<Coordinator::LeasedTasks> three =
      coordinator_->PollTask(poll, [] { return false; });
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_EQ(three->size(), 3u) << "four were ready";
}

TEST_F(CoordinatorTest, APollForTooManyTasksIsRefusedNamingMaxTasks) {
  for (int max_tasks : {-1, kMaxTasksPerPoll + 1}) {
    v1::PollTaskRequest poll = PollRequest("w1", {"a"}, 100);
    poll.set_max_tasks(max_tasks);
    absl::StatusOr<Coordinator::LeasedTasks> refused =
        coordinator_->PollTask(poll, [] { return false; });
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(refused.status().message(), HasSubstr("max_tasks"));
  }
}

// Reports sent together are recorded in one command, in order, each
// answered on its own: a refused one leaves the others standing, and the
// first completion's poll leases the tasks they made ready.
TEST_F(CoordinatorTest, ReportsSentTogetherAreAnsweredEachAndPollTogether) {
  // Three requests of store a: three discoveries, leased together.
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(Create(NewCreate(v1::ERASURE, {"a"})).id());
  }
  v1::PollTaskRequest take_three = PollRequest("w1", {"a"}, 5000);
  take_three.set_max_tasks(3);
  absl::StatusOr<Coordinator::LeasedTasks> discoveries =
      coordinator_->PollTask(take_three, [] { return false; });
  ASSERT_TRUE(discoveries.ok()) << discoveries.status();
  ASSERT_EQ(discoveries->size(), 3u);

  std::vector<v1::TaskReport> reports(3);
  for (size_t i = 0; i < 3; ++i) {
    const v1::Task& task = (*discoveries)[i];
    EXPECT_EQ(task.operation(), "discover");
    *reports[i].mutable_complete() = Completion(task, "w1", task.attempt());
  }
  // The second names an attempt the worker does not hold.
  reports[1].mutable_complete()->set_attempt(7);
  v1::PollTaskRequest next = PollRequest("w1", {"a"}, 5000);
  next.set_max_tasks(8);
  Coordinator::ReportsAnswer answer = Report(reports, &next);
  ASSERT_EQ(answer.statuses.size(), 3u);
  EXPECT_TRUE(answer.statuses[0].ok()) << answer.statuses[0];
  EXPECT_EQ(answer.statuses[1].code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(answer.statuses[2].ok()) << answer.statuses[2];
  const std::string& refused_request = (*discoveries)[1].request_id();
  // The erasures of the two requests whose discoveries were accepted,
  // leased to the first report's poll.
  std::set<std::string> erased;
  for (const v1::Task& task : answer.next_tasks) {
    EXPECT_EQ(task.operation(), "erase");
    erased.insert(task.request_id());
  }
  EXPECT_EQ(erased, (std::set<std::string>{(*discoveries)[0].request_id(),
                                           (*discoveries)[2].request_id()}));
  EXPECT_EQ(Step(Get(refused_request), "a")->status(), v1::LEASED);

  // The refused report, sent again right, stands on its own.
  reports[1].mutable_complete()->set_attempt((*discoveries)[1].attempt());
  answer = Report({reports[1]}, &next);
  ASSERT_TRUE(answer.statuses[0].ok()) << answer.statuses[0];
  ASSERT_EQ(answer.next_tasks.size(), 1u);
  EXPECT_EQ(answer.next_tasks[0].request_id(), refused_request);
  EXPECT_EQ(answer.next_tasks[0].operation(), "erase");
}

TEST_F(CoordinatorTest, AMalformedBatchOfReportsIsRefusedWhole) {
  v1::Request created = Create(NewCreate(v1::ERASURE, {"a"}));
  std::optional<v1::Task> task = Poll("w1", {"a"}, 5000);
  ASSERT_TRUE(task.has_value());
  size_t events_before = AllEvents(created.id()).size();

  Coordinator::ReportsAnswer none = Report({}, nullptr);
  ASSERT_EQ(none.statuses.size(), 1u);
  EXPECT_EQ(none.statuses[0].code(), absl::StatusCode::kInvalidArgument);

  std::vector<v1::TaskReport> too_many(kMaxReportsPerBatch + 1);
  for (v1::TaskReport& report : too_many) {
    *report.mutable_complete() = Completion(*task, "w1", task->attempt());
  }
  Coordinator::ReportsAnswer refused = Report(too_many, nullptr);
  ASSERT_EQ(refused.statuses.size(), too_many.size());
  for (const absl::Status& status : refused.statuses) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr("more"));
  }
  // A report that carries reports of its own, or none, is refused alone.
  std::vector<v1::TaskReport> nested(2);
  *nested[0].mutable_complete() = Completion(*task, "w1", task->attempt());
  *nested[0].add_more()->mutable_complete() =
      Completion(*task, "w1", task->attempt());
  Coordinator::ReportsAnswer answer = Report(nested, nullptr);
  ASSERT_EQ(answer.statuses.size(), 2u);
  EXPECT_EQ(answer.statuses[0].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(answer.statuses[1].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(answer.statuses[1].message(), HasSubstr("set complete or fail"));
  EXPECT_EQ(AllEvents(created.id()).size(), events_before);
}

// Reports still queued when the coordinator stops are answered
// UNAVAILABLE (they were not recorded), never left without an answer: a
// worker's ReportTasks call waits for that answer and nothing else ends it.
TEST_F(CoordinatorTest, ReportsTheStoppingLoopDropsAreAnsweredUnavailable) {
  StartWith([](Coordinator::Options& options) {
    options.max_commands_per_group = 1;
  });
  // Creates queued first keep the loop committing one command at a time
  // while the reports wait behind them and the coordinator stops.
  for (int i = 0; i < 200; ++i) {
    coordinator_->CreateRequestAsync(NewCreate(v1::ERASURE), "operator:test",
                                     [](absl::StatusOr<v1::Request>) {});
  }
  std::mutex mu;
  std::vector<absl::Status> completions, failures;
  constexpr int kReports = 20;
  for (int i = 0; i < kReports; ++i) {
    std::vector<v1::TaskReport> reports(2);
    v1::CompleteTaskRequest& complete = *reports[0].mutable_complete();
    complete.set_worker_id("w1");
    complete.set_task_id(absl::StrCat("dsr_unknown/0/", i));
    complete.set_attempt(1);
    v1::FailTaskRequest& fail = *reports[1].mutable_fail();
    fail.set_worker_id("w1");
    fail.set_task_id(absl::StrCat("dsr_unknown/1/", i));
    fail.set_attempt(1);
    const v1::PollTaskRequest next = PollRequest("w1", {"a"}, 5000);
    coordinator_->ReportTasksAsync(std::move(reports),
                                   i % 2 == 0 ? &next : nullptr,
                                   [&](Coordinator::ReportsAnswer answer) {
                                     std::lock_guard<std::mutex> lock(mu);
                                     ASSERT_EQ(answer.statuses.size(), 2u);
                                     completions.push_back(answer.statuses[0]);
                                     failures.push_back(answer.statuses[1]);
                                   });
  }
  coordinator_.reset();

  ASSERT_EQ(completions.size(), size_t{kReports});
  ASSERT_EQ(failures.size(), size_t{kReports});
  int dropped = 0;
  for (const std::vector<absl::Status>* answers : {&completions, &failures}) {
    for (const absl::Status& status : *answers) {
      // Run: the unknown task is refused. Dropped: UNAVAILABLE.
      EXPECT_THAT(status.code(), testing::AnyOf(absl::StatusCode::kNotFound,
                                                absl::StatusCode::kUnavailable))
          << status;
      if (status.code() == absl::StatusCode::kUnavailable) ++dropped;
    }
  }
  EXPECT_GT(dropped, 0) << "the loop ran every report before it stopped";
}

// A worker that hangs up while its completion waits for the next task is
// leased nothing: the task that becomes ready goes to the next poller.
TEST_F(CoordinatorTest, AWorkerThatHangsUpAfterItsCompletionIsLeasedNothing) {
  v1::Request first;
  std::optional<v1::Task> erase = LastTaskOfAnErasureOfStoreA(&first);
  ASSERT_TRUE(erase.has_value());

  // The request's last task: nothing is ready for `next`, so the call
  // waits, and its caller has gone.
  absl::StatusOr<Coordinator::LeasedTasks> answer =
      coordinator_->CompleteTaskAndPoll(
          Completion(*erase, "w1", erase->attempt()),
          PollRequest("w1", {"a"}, 30000), [] { return true; });
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_TRUE(answer->empty());

  v1::Request second = Create(NewCreate(v1::ERASURE, {"a"}));
  std::optional<v1::Task> leased = Poll("w2", {"a"}, 5000);
  ASSERT_TRUE(leased.has_value()) << "leased to the worker that hung up";
  EXPECT_EQ(leased->request_id(), second.id());
}

// The same for the asynchronous path (a ReportTasks stream cancelled while
// its completion waits): the abandoned poll gets nothing, its callback is
// not called, and the completion stands.
TEST_F(CoordinatorTest, AnAbandonedAsyncPollIsLeasedNothing) {
  v1::Request first;
  std::optional<v1::Task> erase = LastTaskOfAnErasureOfStoreA(&first);
  ASSERT_TRUE(erase.has_value());

  const v1::PollTaskRequest next = PollRequest("w1", {"a"}, 30000);
  auto answers = std::make_shared<std::atomic<int>>(0);
  std::vector<v1::TaskReport> reports(1);
  *reports[0].mutable_complete() = Completion(*erase, "w1", erase->attempt());
  std::function<void()> abandon = coordinator_->ReportTasksAsync(
      std::move(reports), &next,
      [answers](Coordinator::ReportsAnswer) { ++*answers; });
  abandon();

  WaitForStatus(first.id(), v1::COMPLETED);
  v1::Request second = Create(NewCreate(v1::ERASURE, {"a"}));
  std::optional<v1::Task> leased = Poll("w2", {"a"}, 5000);
  ASSERT_TRUE(leased.has_value()) << "leased to the abandoned poll";
  EXPECT_EQ(leased->request_id(), second.id());
  EXPECT_EQ(*answers, 0);
}

TEST_F(CoordinatorTest, EraseCountsPerTableAreKeptWithTheStep) {
  v1::Request created = Create(NewCreate(v1::ERASURE, {"a"}));
  for (int n = 0; n < 2; ++n) {
    std::optional<v1::Task> task = Poll("w1", {"a"}, 5000);
    ASSERT_TRUE(task.has_value()) << "task " << n;
    v1::CompleteTaskRequest complete;
    complete.set_worker_id("w1");
    complete.set_task_id(task->task_id());
    complete.set_attempt(task->attempt());
    if (task->operation() == "erase") {
      complete.set_record_count(3);
      v1::CollectionErasure* users = complete.add_erasures();
      users->set_collection("users");
      users->set_rows_deleted(2);
      v1::CollectionErasure* invoices = complete.add_erasures();
      invoices->set_collection("invoices");
      invoices->set_rows_masked(1);
      invoices->set_fields_masked(4);
      // Negative counts are refused.
      v1::CompleteTaskRequest negative = complete;
      negative.mutable_erasures(1)->set_fields_masked(-1);
      EXPECT_EQ(coordinator_->CompleteTask(negative).code(),
                absl::StatusCode::kInvalidArgument);
    }
    ASSERT_TRUE(coordinator_->CompleteTask(complete).ok());
  }
  WaitForStatus(created.id(), v1::COMPLETED);
  Start();  // The counts are persisted with the step, not only in memory.
  v1::Request done = Get(created.id());
  const v1::StoreStep* erase = nullptr;
  for (const v1::StoreStep& step : done.steps()) {
    if (step.erasures_size() > 0) erase = &step;
  }
  ASSERT_NE(erase, nullptr);
  EXPECT_EQ(erase->record_count(), 3);
  ASSERT_EQ(erase->erasures_size(), 2);
  EXPECT_EQ(erase->erasures(0).collection(), "users");
  EXPECT_EQ(erase->erasures(0).rows_deleted(), 2);
  EXPECT_EQ(erase->erasures(1).collection(), "invoices");
  EXPECT_EQ(erase->erasures(1).rows_masked(), 1);
  EXPECT_EQ(erase->erasures(1).fields_masked(), 4);
}

TEST(RetainedOnErasureTest, ListsEveryKeptFieldWithItsReason) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
stores:
  - name: billing
    kind: sqlite
    path: /nonexistent/billing.db
    tables:
      - name: customers
        identity_fields: {user_id: id}
      - name: invoices
        identity_fields: {user_id: customer_id}
        pii_fields: {full_name: identity, amount: financial}
        erase:
          mode: mask
          fields:
            customer_id: null
            full_name: {fixed: "[erased]"}
            amount: {keep: "Tax law: HGB 257, 10 years"}
)yaml",
                                                         "/");
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  std::vector<BundleExemption> retained =
      coordinator_internal::RetainedOnErasure(inventory->stores()[0]);
  ASSERT_EQ(retained.size(), 1u);
  EXPECT_EQ(retained[0].store, "billing");
  EXPECT_EQ(retained[0].reason,
            "invoices.amount is kept when your data is erased");
  EXPECT_EQ(retained[0].legal_basis, "Tax law: HGB 257, 10 years");
}

TEST_F(CoordinatorTest, StaleAttemptOrOtherWorkerIsRefused) {
  v1::Request created = Create(NewCreate(v1::ACCESS, {"a"}));
  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());
  ASSERT_EQ(task->attempt(), 1u);
  absl::StatusOr<std::string> sha256 = Upload(*task, "w1");
  ASSERT_TRUE(sha256.ok()) << sha256.status();
  size_t events_before = AllEvents(created.id()).size();

  EXPECT_EQ(CompleteWith(*task, "w1", 2, *sha256).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CompleteWith(*task, "w1", 0, *sha256).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CompleteWith(*task, "w2", 1, *sha256).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Fail(*task, "w2", 1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Fail(*task, "w1", 2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Heartbeat(*task, "w2", 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  v1::Task stale = *task;
  stale.set_attempt(2);
  EXPECT_EQ(Upload(stale, "w1").status().code(),
            absl::StatusCode::kFailedPrecondition);
  v1::Task other_worker = *task;
  EXPECT_EQ(Upload(other_worker, "w2").status().code(),
            absl::StatusCode::kFailedPrecondition);
  // An export needs its upload: no sha, or no file for that attempt.
  EXPECT_EQ(CompleteWith(*task, "w1", 1, "").code(),
            absl::StatusCode::kInvalidArgument);

  v1::Request unchanged = Get(created.id());
  EXPECT_EQ(unchanged.status(), v1::RUNNING);
  EXPECT_EQ(Step(unchanged, "a")->status(), v1::LEASED);
  EXPECT_EQ(Step(unchanged, "a")->attempts(), 1u);
  EXPECT_EQ(Step(unchanged, "a")->worker_id(), "w1");
  EXPECT_EQ(AllEvents(created.id()).size(), events_before);

  // The holder still can.
  ASSERT_TRUE(CompleteWith(*task, "w1", 1, *sha256).ok());
  EXPECT_EQ(Step(Get(created.id()), "a")->status(), v1::SUCCEEDED);
  // And only once.
  EXPECT_EQ(CompleteWith(*task, "w1", 1, *sha256).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CoordinatorTest, ExportWithoutUploadedArtifactIsRefused) {
  Create(NewCreate(v1::ACCESS, {"a"}));
  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());
  std::string made_up(64, 'a');
  EXPECT_EQ(CompleteWith(*task, "w1", 1, made_up).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Step(Get(task->request_id()), "a")->status(), v1::LEASED);
}

TEST_F(CoordinatorTest, UnknownTaskIsNotFound) {
  v1::Request created = Create(NewCreate(v1::ACCESS, {"a"}));
  for (const std::string& task_id :
       {std::string("dsr_000000000000000000000000/0/0"),
        absl::StrCat(created.id(), "/0/7"),
        absl::StrCat(created.id(), "/3/0")}) {
    SCOPED_TRACE(task_id);
    v1::Task task;
    task.set_task_id(task_id);
    task.set_attempt(1);
    EXPECT_EQ(CompleteWith(task, "w1", 1, "").code(),
              absl::StatusCode::kNotFound);
    EXPECT_EQ(Fail(task, "w1", 1).code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(Heartbeat(task, "w1", 1).status().code(),
              absl::StatusCode::kNotFound);
  }
  v1::Task garbage;
  garbage.set_task_id("not-a-task");
  EXPECT_EQ(CompleteWith(garbage, "w1", 1, "").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get(created.id()).status(), v1::RUNNING);
  EXPECT_EQ(coordinator_->GetRequest("dsr_missing").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CoordinatorTest, InvalidCreateStoresNothing) {
  v1::CreateRequestRequest no_identity = NewCreate(v1::ACCESS, {}, "key-1");
  no_identity.clear_identities();
  EXPECT_EQ(coordinator_->CreateRequest(no_identity).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status no_corrections =
      coordinator_->CreateRequest(NewCreate(v1::RECTIFICATION, {}, "k"))
          .status();
  EXPECT_EQ(no_corrections.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_corrections.message()),
              ::testing::StartsWith("corrections:"));
  absl::Status unknown_store =
      coordinator_->CreateRequest(NewCreate(v1::ACCESS, {"a", "zzz"}, "k"))
          .status();
  EXPECT_EQ(unknown_store.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown_store.message()), HasSubstr("stores[1]"));

  absl::StatusOr<v1::ListRequestsResponse> listed =
      coordinator_->ListRequests(v1::ListRequestsRequest());
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->requests_size(), 0);
  EXPECT_TRUE(listed->next_page_token().empty());
  // Nothing was queued either.
  EXPECT_FALSE(Poll("w1", {"a", "b", "c"}, 50).has_value());
  // A rejected request does not claim its idempotency key.
  v1::Request created = Create(NewCreate(v1::ACCESS, {}, "key-1"));
  EXPECT_FALSE(created.id().empty());
}

TEST_F(CoordinatorTest, IdempotencyKeyReturnsTheFirstRequest) {
  v1::Request first = Create(NewCreate(v1::ACCESS, {"a"}, "order-77"));
  // Same subject, written differently: still the same request.
  v1::CreateRequestRequest retry = NewCreate(v1::ACCESS, {"a"}, "order-77");
  retry.mutable_identities(0)->set_value(" Subject-Order-77@Example.COM ");
  v1::Request again = Create(retry);
  EXPECT_EQ(again.id(), first.id());

  absl::Status other_type =
      coordinator_->CreateRequest(NewCreate(v1::ERASURE, {"a"}, "order-77"))
          .status();
  EXPECT_EQ(other_type.code(), absl::StatusCode::kAlreadyExists) << other_type;
  EXPECT_THAT(std::string(other_type.message()),
              ::testing::StartsWith("idempotency_key:"));
  v1::CreateRequestRequest other_subject =
      NewCreate(v1::ACCESS, {"a"}, "order-77");
  other_subject.mutable_identities(0)->set_value("john@example.com");
  EXPECT_EQ(coordinator_->CreateRequest(other_subject).status().code(),
            absl::StatusCode::kAlreadyExists);

  absl::StatusOr<v1::ListRequestsResponse> listed =
      coordinator_->ListRequests(v1::ListRequestsRequest());
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->requests_size(), 1);
  // One request, so one task.
  EXPECT_TRUE(Poll("w1", {"a"}).has_value());
  EXPECT_FALSE(Poll("w1", {"a"}, 50).has_value());

  // Still honoured once the request is finished and after a restart.
  v1::CancelRequestRequest cancel;
  cancel.set_id(first.id());
  ASSERT_TRUE(coordinator_->CancelRequest(cancel).ok());
  EXPECT_EQ(Create(NewCreate(v1::ACCESS, {"a"}, "order-77")).id(), first.id());
  Start();
  EXPECT_EQ(Create(NewCreate(v1::ACCESS, {"a"}, "order-77")).id(), first.id());
  EXPECT_NE(Create(NewCreate(v1::ACCESS, {"a"}, "order-78")).id(), first.id());
}

TEST_F(CoordinatorTest, ExpiredLeaseIsRequeuedWithTheNextAttempt) {
  Start(absl::Milliseconds(200));
  v1::Request created = Create(NewCreate(v1::ACCESS, {"a"}));
  std::optional<v1::Task> first = Poll("w1", {"a"});
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->attempt(), 1u);
  EXPECT_EQ(first->lease_duration_ms(), 200);

  // w1 goes silent. The lease expires, the retry back-off (at most 1 s)
  // passes, and the task goes to the next poller.
  std::optional<v1::Task> second = Poll("w2", {"a"}, 10000);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->task_id(), first->task_id());
  EXPECT_EQ(second->attempt(), 2u);

  // The fencing token refuses the old holder.
  EXPECT_EQ(CompleteWith(*first, "w1", 1, "").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Heartbeat(*first, "w1", 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Upload(*first, "w1").status().code(),
            absl::StatusCode::kFailedPrecondition);

  std::vector<v1::Event> events = AllEvents(created.id());
  bool saw_expiry = false;
  for (const v1::Event& event : events) {
    if (event.kind() != "lease_expired") continue;
    saw_expiry = true;
    EXPECT_EQ(event.attempt(), 1u);
    EXPECT_EQ(event.worker_id(), "w1");
    EXPECT_EQ(event.store(), "a");
  }
  EXPECT_TRUE(saw_expiry);
  EXPECT_THAT(EventKinds(created.id()), Contains("retry_scheduled"));

  ASSERT_TRUE(Finish(*second, "w2").ok());
  v1::Request done = WaitForStatus(created.id(), v1::COMPLETED);
  EXPECT_EQ(Step(done, "a")->attempts(), 2u);
  EXPECT_EQ(Step(done, "a")->worker_id(), "w2");
}

TEST_F(CoordinatorTest, HeartbeatsKeepTheLease) {
  Start(absl::Milliseconds(200));
  v1::Request created = Create(NewCreate(v1::ACCESS, {"a"}));
  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());

  absl::Time end = absl::Now() + absl::Milliseconds(600);
  int64_t last_expiry = task->lease_expires_unix_ms();
  while (absl::Now() < end) {
    // Pacing the worker's heartbeats, not synchronisation.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    absl::StatusOr<int64_t> expiry = Heartbeat(*task, "w1", 1);
    ASSERT_TRUE(expiry.ok()) << expiry.status();
    EXPECT_GE(*expiry, last_expiry);
    last_expiry = *expiry;
  }
  v1::Request still = Get(created.id());
  EXPECT_EQ(Step(still, "a")->status(), v1::LEASED);
  EXPECT_EQ(Step(still, "a")->attempts(), 1u);
  EXPECT_THAT(EventKinds(created.id()), Not(Contains("lease_expired")));
  ASSERT_TRUE(Finish(*task, "w1").ok());
  EXPECT_EQ(Step(Get(created.id()), "a")->status(), v1::SUCCEEDED);
}

TEST_F(CoordinatorTest, FailedTaskIsRetriedWithTheNextAttempt) {
  v1::Request created = Create(NewCreate(v1::ACCESS, {"a"}));
  std::optional<v1::Task> first = Poll("w1", {"a"});
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(Fail(*first, "w1", 1).ok());
  v1::Request waiting = Get(created.id());
  EXPECT_EQ(Step(waiting, "a")->status(), v1::RETRY_WAIT);
  EXPECT_EQ(Step(waiting, "a")->error(), "");
  // Only once.
  EXPECT_EQ(Fail(*first, "w1", 1).code(),
            absl::StatusCode::kFailedPrecondition);

  std::optional<v1::Task> second = Poll("w1", {"a"}, 10000);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->attempt(), 2u);
  ASSERT_TRUE(Finish(*second, "w1").ok());
  WaitForStatus(created.id(), v1::COMPLETED);
}

TEST_F(CoordinatorTest, CancelEndsTheRequestAndRefusesItsTasks) {
  v1::Request created = Create(NewCreate(v1::ACCESS));
  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());
  absl::StatusOr<std::string> sha256 = Upload(*task, "w1");
  ASSERT_TRUE(sha256.ok()) << sha256.status();

  v1::CancelRequestRequest cancel;
  cancel.set_id(created.id());
  cancel.set_reason("withdrawn by the subject");
  absl::StatusOr<v1::Request> cancelled = coordinator_->CancelRequest(cancel);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->status(), v1::CANCELLED);
  EXPECT_EQ(cancelled->cause(), "withdrawn by the subject");
  v1::Request stored = Get(created.id());
  EXPECT_EQ(stored.status(), v1::CANCELLED);
  for (const std::string store : {"a", "b", "c"}) {
    EXPECT_EQ(Step(stored, store)->status(), v1::SKIPPED) << store;
  }

  absl::Status late = CompleteWith(*task, "w1", 1, *sha256);
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition) << late;
  EXPECT_THAT(std::string(late.message()), HasSubstr("CANCELLED"));
  EXPECT_EQ(Heartbeat(*task, "w1", 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // c was queued before the cancel; it is not handed out after.
  EXPECT_FALSE(Poll("w1", {"a", "b", "c"}, 50).has_value());
  EXPECT_EQ(coordinator_->CancelRequest(cancel).status().code(),
            absl::StatusCode::kFailedPrecondition);
  cancel.set_id("dsr_missing");
  EXPECT_EQ(coordinator_->CancelRequest(cancel).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Get(created.id()).status(), v1::CANCELLED);
  EXPECT_EQ(EventKinds(created.id()).back(), "cancelled");
}

TEST_F(CoordinatorTest, RecoversLiveRequestsAfterRestart) {
  // r1: a leased (export uploaded, not completed), c completed, b waiting.
  v1::Request r1 = Create(NewCreate(v1::ACCESS, {}, "r1"));
  std::optional<v1::Task> r1_a = Poll("w1", {"a"});
  ASSERT_TRUE(r1_a.has_value());
  absl::StatusOr<std::string> r1_a_sha = Upload(*r1_a, "w1");
  ASSERT_TRUE(r1_a_sha.ok()) << r1_a_sha.status();
  std::optional<v1::Task> r1_c = Poll("w1", {"c"});
  ASSERT_TRUE(r1_c.has_value());
  ASSERT_TRUE(Finish(*r1_c, "w1").ok());
  // r2: c failed once and waits for its retry.
  v1::Request r2 = Create(NewCreate(v1::ACCESS, {"c"}));
  std::optional<v1::Task> r2_c = Poll("w1", {"c"});
  ASSERT_TRUE(r2_c.has_value());
  ASSERT_TRUE(Fail(*r2_c, "w1", 1).ok());
  // r3: b ready, never polled.
  // b alone is searched by user id (by email it would need a, which
  // supplies the user id).
  v1::CreateRequestRequest only_b = NewCreate(v1::ERASURE, {"b"});
  only_b.clear_identities();
  v1::SubjectIdentity* user_id = only_b.add_identities();
  user_id->set_type(v1::USER_ID);
  user_id->set_value("r3");
  v1::Request r3 = Create(only_b);
  // r4: finished before the restart.
  v1::Request r4 = Create(NewCreate(v1::ACCESS, {"a"}));
  v1::CancelRequestRequest cancel;
  cancel.set_id(r4.id());
  ASSERT_TRUE(coordinator_->CancelRequest(cancel).ok());
  size_t r1_events = AllEvents(r1.id()).size();

  Start();

  v1::Request r1_back = Get(r1.id());
  EXPECT_EQ(r1_back.status(), v1::RUNNING);
  EXPECT_EQ(Step(r1_back, "a")->status(), v1::LEASED);
  EXPECT_EQ(Step(r1_back, "a")->attempts(), 1u);
  EXPECT_EQ(Step(r1_back, "b")->status(), v1::WAITING);
  EXPECT_EQ(Step(r1_back, "c")->status(), v1::SUCCEEDED);
  EXPECT_EQ(AllEvents(r1.id()).size(), r1_events);
  EXPECT_EQ(Get(r4.id()).status(), v1::CANCELLED);

  // The leased task is not handed out again; its holder completes it with
  // the same fencing token.
  std::optional<v1::Task> r3_b = Poll("w2", {"a", "b"});
  ASSERT_TRUE(r3_b.has_value());
  EXPECT_EQ(r3_b->request_id(), r3.id());
  EXPECT_EQ(r3_b->operation(), "discover");
  EXPECT_EQ(r3_b->attempt(), 1u);
  EXPECT_FALSE(Poll("w2", {"a", "b"}, 50).has_value());
  EXPECT_TRUE(Heartbeat(*r1_a, "w1", 1).ok());
  ASSERT_TRUE(CompleteWith(*r1_a, "w1", 1, *r1_a_sha).ok());

  std::optional<v1::Task> r1_b = Poll("w2", {"b"});
  ASSERT_TRUE(r1_b.has_value());
  EXPECT_EQ(r1_b->request_id(), r1.id());
  ASSERT_TRUE(Finish(*r1_b, "w2").ok());
  v1::Request r1_done = WaitForStatus(r1.id(), v1::COMPLETED);
  EXPECT_TRUE(fs::exists(r1_done.bundle().path()));

  // The retry timer came back too.
  std::optional<v1::Task> r2_retry = Poll("w2", {"c"}, 10000);
  ASSERT_TRUE(r2_retry.has_value());
  EXPECT_EQ(r2_retry->request_id(), r2.id());
  EXPECT_EQ(r2_retry->attempt(), 2u);
  ASSERT_TRUE(Finish(*r2_retry, "w2").ok());
  WaitForStatus(r2.id(), v1::COMPLETED);

  // r3 continues into its erase pass.
  ASSERT_TRUE(Finish(*r3_b, "w2").ok());
  std::optional<v1::Task> r3_erase = Poll("w2", {"b"});
  ASSERT_TRUE(r3_erase.has_value());
  EXPECT_EQ(r3_erase->operation(), "erase");
  ASSERT_TRUE(Finish(*r3_erase, "w2").ok());
  EXPECT_EQ(Get(r3.id()).status(), v1::COMPLETED);

  // The event log went on where it stopped: no sequence reused or skipped.
  std::vector<v1::Event> events = AllEvents(r1.id());
  ASSERT_GT(events.size(), r1_events);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), i + 1);
  }
}

TEST_F(CoordinatorTest, BuiltinInterruptedByRestartRunsAgain) {
  v1::Request created = Create(NewCreate(v1::ACCESS, {"c"}));
  std::optional<v1::Task> task = Poll("w1", {"c"});
  ASSERT_TRUE(task.has_value());
  ASSERT_TRUE(Finish(*task, "w1").ok());
  // The bundle may or may not have run before the restart; either way the
  // request completes afterwards.
  Start();
  v1::Request done = WaitForStatus(created.id(), v1::COMPLETED);
  EXPECT_TRUE(fs::exists(done.bundle().path()));
}

TEST_F(CoordinatorTest, ListRequestsFiltersAndPaginates) {
  std::vector<std::string> ids;
  for (v1::RequestType type :
       {v1::ACCESS, v1::ERASURE, v1::ACCESS, v1::ERASURE, v1::ACCESS}) {
    ids.push_back(Create(NewCreate(type, {"a"})).id());
  }
  v1::CancelRequestRequest cancel;
  cancel.set_id(ids[2]);
  ASSERT_TRUE(coordinator_->CancelRequest(cancel).ok());

  auto list_ids = [&](v1::RequestStatus status, v1::RequestType type) {
    v1::ListRequestsRequest list;
    list.set_status(status);
    list.set_type(type);
    absl::StatusOr<v1::ListRequestsResponse> listed =
        coordinator_->ListRequests(list);
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::set<std::string> out;
    if (!listed.ok()) return out;
    for (const v1::Request& request : listed->requests()) {
      EXPECT_TRUE(status == v1::REQUEST_STATUS_UNSPECIFIED ||
                  request.status() == status);
      EXPECT_TRUE(type == v1::REQUEST_TYPE_UNSPECIFIED ||
                  request.type() == type);
      out.insert(request.id());
    }
    return out;
  };
  using Ids = std::set<std::string>;
  EXPECT_EQ(
      list_ids(v1::REQUEST_STATUS_UNSPECIFIED, v1::REQUEST_TYPE_UNSPECIFIED),
      Ids(ids.begin(), ids.end()));
  EXPECT_EQ(list_ids(v1::CANCELLED, v1::REQUEST_TYPE_UNSPECIFIED),
            Ids({ids[2]}));
  EXPECT_EQ(list_ids(v1::RUNNING, v1::REQUEST_TYPE_UNSPECIFIED),
            Ids({ids[0], ids[1], ids[3], ids[4]}));
  EXPECT_EQ(list_ids(v1::REQUEST_STATUS_UNSPECIFIED, v1::ERASURE),
            Ids({ids[1], ids[3]}));
  EXPECT_EQ(list_ids(v1::RUNNING, v1::ACCESS), Ids({ids[0], ids[4]}));
  EXPECT_EQ(list_ids(v1::COMPLETED, v1::REQUEST_TYPE_UNSPECIFIED), Ids());

  // Pages of 2 over 5: 2, 2, 1, oldest first, no duplicates, no gaps.
  std::vector<std::string> paged;
  std::vector<int> page_sizes;
  v1::ListRequestsRequest list;
  list.set_page_size(2);
  int64_t last_created_ms = 0;
  for (int page = 0; page < 10; ++page) {
    absl::StatusOr<v1::ListRequestsResponse> listed =
        coordinator_->ListRequests(list);
    ASSERT_TRUE(listed.ok()) << listed.status();
    page_sizes.push_back(listed->requests_size());
    for (const v1::Request& request : listed->requests()) {
      paged.push_back(request.id());
      int64_t created_ms = request.created_at().seconds() * 1000 +
                           request.created_at().nanos() / 1000000;
      EXPECT_GE(created_ms, last_created_ms);
      last_created_ms = created_ms;
    }
    if (listed->next_page_token().empty()) break;
    list.set_page_token(listed->next_page_token());
  }
  EXPECT_THAT(page_sizes, ElementsAre(2, 2, 1));
  EXPECT_EQ(paged.size(), 5u);
  EXPECT_EQ(Ids(paged.begin(), paged.end()), Ids(ids.begin(), ids.end()));

  // Filtered pages of 1 over the three ACCESS requests.
  std::vector<std::string> access;
  v1::ListRequestsRequest by_type;
  by_type.set_type(v1::ACCESS);
  by_type.set_page_size(1);
  for (int page = 0; page < 10; ++page) {
    absl::StatusOr<v1::ListRequestsResponse> listed =
        coordinator_->ListRequests(by_type);
    ASSERT_TRUE(listed.ok()) << listed.status();
    for (const v1::Request& request : listed->requests())
      access.push_back(request.id());
    if (listed->next_page_token().empty()) break;
    by_type.set_page_token(listed->next_page_token());
  }
  EXPECT_EQ(Ids(access.begin(), access.end()), Ids({ids[0], ids[2], ids[4]}));
  EXPECT_EQ(access.size(), 3u);

  v1::ListRequestsRequest bad;
  bad.set_page_token("not a token");
  EXPECT_EQ(coordinator_->ListRequests(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A token of the RUNNING listing does not continue the full listing.
  v1::ListRequestsRequest running;
  running.set_status(v1::RUNNING);
  running.set_page_size(1);
  absl::StatusOr<v1::ListRequestsResponse> first_running =
      coordinator_->ListRequests(running);
  ASSERT_TRUE(first_running.ok());
  ASSERT_FALSE(first_running->next_page_token().empty());
  bad.set_page_token(first_running->next_page_token());
  EXPECT_EQ(coordinator_->ListRequests(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad.clear_page_token();
  bad.set_page_size(1001);
  EXPECT_EQ(coordinator_->ListRequests(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorTest, ListEventsInSequenceOrderWithPagination) {
  v1::Request created = Create(NewCreate(v1::ACCESS, {"a", "c"}));
  for (int n = 0; n < 2; ++n) {
    std::optional<v1::Task> task = Poll("w1", {"a", "c"});
    ASSERT_TRUE(task.has_value());
    ASSERT_TRUE(Finish(*task, "w1").ok());
  }
  WaitForStatus(created.id(), v1::COMPLETED);
  std::vector<v1::Event> all = AllEvents(created.id());
  ASSERT_GE(all.size(), 10u);

  std::vector<v1::Event> paged;
  v1::ListEventsRequest list;
  list.set_request_id(created.id());
  list.set_page_size(3);
  for (int page = 0; page < 100; ++page) {
    absl::StatusOr<v1::ListEventsResponse> events =
        coordinator_->ListEvents(list);
    ASSERT_TRUE(events.ok()) << events.status();
    EXPECT_LE(events->events_size(), 3);
    for (const v1::Event& event : events->events()) paged.push_back(event);
    if (events->next_page_token().empty()) break;
    list.set_page_token(events->next_page_token());
  }
  ASSERT_EQ(paged.size(), all.size());
  for (size_t i = 0; i < paged.size(); ++i) {
    EXPECT_EQ(paged[i].sequence(), i + 1);
    EXPECT_EQ(paged[i].request_id(), created.id());
    EXPECT_EQ(paged[i].kind(), all[i].kind());
  }
  EXPECT_EQ(paged.front().kind(), "received");
  // verify_unattested is off: verified by configuration at receipt.
  EXPECT_EQ(paged[1].kind(), "identity_verified");
  EXPECT_EQ(paged[1].detail(), "method=not_required_by_configuration");
  EXPECT_EQ(paged[2].kind(), "state_entered");
  EXPECT_EQ(paged[2].state(), "VerifyIdentity");
  EXPECT_EQ(paged[3].kind(), "state_entered");
  EXPECT_EQ(paged[3].state(), "ChooseRight");
  EXPECT_EQ(paged.back().kind(), "completed");

  v1::ListEventsRequest unknown;
  unknown.set_request_id("dsr_missing");
  EXPECT_EQ(coordinator_->ListEvents(unknown).status().code(),
            absl::StatusCode::kNotFound);
  list.set_page_token("x");
  EXPECT_EQ(coordinator_->ListEvents(list).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorTest, PollValidatesAndTimesOutEmpty) {
  v1::PollTaskRequest poll;
  poll.add_stores("a");
  auto never = [] { return false; };
  EXPECT_EQ(coordinator_->PollTask(poll, never).status().code(),
            absl::StatusCode::kInvalidArgument);
  poll.set_worker_id("w1");
  poll.clear_stores();
  EXPECT_EQ(coordinator_->PollTask(poll, never).status().code(),
            absl::StatusCode::kInvalidArgument);
  poll.add_stores("zzz");
  EXPECT_EQ(coordinator_->PollTask(poll, never).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Poll("w1", {"a"}, 50).has_value());
}

// --- Identity verification -------------------------------------------------

class VerificationTest : public CoordinatorTest {
 protected:
  void SetUp() override {
    CoordinatorTest::SetUp();
    ASSERT_NO_FATAL_FAILURE(StartVerifying([](Coordinator::Options&) {}));
  }

  // Requests without `verified` wait for the subject's code, sent through
  // the file sink.
  void StartVerifying(std::function<void(Coordinator::Options&)> more) {
    StartWith([this, more](Coordinator::Options& options) {
      options.verify_unattested = true;
      options.notify_file = NotifyPath();
      more(options);
    });
  }

  // A code that is not `code` (same shape).
  static std::string WrongCode(const std::string& code) {
    std::string wrong = code.empty() ? "00000000" : code;
    wrong[0] = wrong[0] == '9' ? '0' : static_cast<char>(wrong[0] + 1);
    return wrong;
  }
};

TEST_F(VerificationTest, TheOneTimeCodeStartsTheWorkflow) {
  v1::Request created = Create(NewCreate(v1::ACCESS, {"a"}));
  EXPECT_EQ(created.status(), v1::VERIFYING);
  EXPECT_EQ(created.current_state(), "VerifyIdentity");
  EXPECT_EQ(created.steps_size(), 0);
  EXPECT_FALSE(created.has_verification());
  // Default TTL: 72 hours from receipt.
  EXPECT_EQ(created.verification_expires_at().seconds() -
                created.created_at().seconds(),
            72 * 3600);
  EXPECT_EQ(Get(created.id()).status(), v1::VERIFYING);
  // No work before the subject proved who they are.
  EXPECT_FALSE(Poll("w1", {"a", "b", "c"}, 50).has_value());

  std::string code = WaitForCode(created.id());
  ASSERT_EQ(code.size(), 8u) << code;
  // The code reaches the subject only: neither the request nor its audited
  // events carry it.
  EXPECT_THAT(Get(created.id()).DebugString(), Not(HasSubstr(code)));
  for (const v1::Event& event : AllEvents(created.id())) {
    EXPECT_THAT(event.detail(), Not(HasSubstr(code))) << event.kind();
  }
  EXPECT_EQ(EventsOf(created.id(), "verification_code_issued").size(), 1u);
  // Nor does any file of the state store (the outbox holds it sealed):
  // raw bytes of every SST, WAL and log file.
  const std::string in_clear = absl::StrCat("\"verification_code\":\"", code);
  for (const fs::directory_entry& file :
       fs::recursive_directory_iterator(fs::path(dir_) / "state")) {
    if (!file.is_regular_file()) continue;
    absl::StatusOr<std::string> bytes = ReadFile(file.path().string());
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ(bytes->find(in_clear), std::string::npos) << file.path();
  }

  absl::StatusOr<v1::Request> wrong = Verify(created.id(), WrongCode(code));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kPermissionDenied)
      << wrong.status();
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("4 attempts"));
  EXPECT_EQ(Get(created.id()).status(), v1::VERIFYING);
  std::vector<v1::Event> failures =
      EventsOf(created.id(), "verification_failed");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].detail(), "wrong code, attempt 1 of 5");
  EXPECT_FALSE(Poll("w1", {"a"}, 50).has_value());

  absl::StatusOr<v1::Request> verified = Verify(created.id(), code);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->status(), v1::RUNNING);
  EXPECT_EQ(verified->current_state(), "ExportStores");
  EXPECT_EQ(verified->verification().method(), "one_time_code");
  EXPECT_TRUE(verified->verification().has_verified_at());
  EXPECT_FALSE(verified->has_verification_expires_at());
  ASSERT_NE(Step(*verified, "a"), nullptr);
  EXPECT_EQ(Step(*verified, "a")->status(), v1::READY);
  std::vector<v1::Event> identity_verified =
      EventsOf(created.id(), "identity_verified");
  ASSERT_EQ(identity_verified.size(), 1u);
  EXPECT_EQ(identity_verified[0].detail(), "method=one_time_code");

  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());
  EXPECT_EQ(task->request_id(), created.id());
  WaitForNotification(created.id(), "started");

  // Used up: the request no longer waits for a code.
  EXPECT_EQ(Verify(created.id(), code).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(VerificationTest, TooManyWrongCodesCloseTheRequest) {
  ASSERT_NO_FATAL_FAILURE(StartVerifying([](Coordinator::Options& options) {
    options.verification_attempts = 2;
  }));
  v1::Request created = Create(NewCreate(v1::ERASURE, {"a"}));
  std::string code = WaitForCode(created.id());

  absl::Status first = Verify(created.id(), WrongCode(code)).status();
  EXPECT_EQ(first.code(), absl::StatusCode::kPermissionDenied) << first;
  EXPECT_THAT(std::string(first.message()), HasSubstr("1 attempt left"));
  EXPECT_EQ(Get(created.id()).status(), v1::VERIFYING);
  absl::Status second = Verify(created.id(), WrongCode(code)).status();
  EXPECT_EQ(second.code(), absl::StatusCode::kPermissionDenied) << second;

  v1::Request closed = Get(created.id());
  EXPECT_EQ(closed.status(), v1::FAILED);
  EXPECT_EQ(closed.error(), "Identity.NotVerified");
  EXPECT_TRUE(closed.has_completed_at());
  EXPECT_EQ(EventsOf(created.id(), "verification_failed").size(), 2u);
  EXPECT_EQ(EventKinds(created.id()).back(), "failed");
  nlohmann::json failed = WaitForNotification(created.id(), "failed");
  EXPECT_EQ(failed.value("error", ""), "Identity.NotVerified");

  // Even the right code is too late now, and no task was ever queued.
  EXPECT_EQ(Verify(created.id(), code).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Get(created.id()).status(), v1::FAILED);
  EXPECT_FALSE(Poll("w1", {"a"}, 50).has_value());
}

TEST_F(VerificationTest, AnExpiredCodeFailsTheRequest) {
  ASSERT_NO_FATAL_FAILURE(StartVerifying([](Coordinator::Options& options) {
    options.verification_ttl = absl::Milliseconds(300);
  }));
  v1::Request created = Create(NewCreate(v1::ACCESS, {"a"}));
  ASSERT_EQ(created.status(), v1::VERIFYING);
  auto millis = [](const google::protobuf::Timestamp& t) {
    return t.seconds() * 1000 + t.nanos() / 1000000;
  };
  EXPECT_EQ(
      millis(created.verification_expires_at()) - millis(created.created_at()),
      300);
  std::string code = WaitForCode(created.id());

  v1::Request expired = WaitForStatus(created.id(), v1::FAILED);
  EXPECT_EQ(expired.error(), "Identity.VerificationExpired");
  EXPECT_GE(millis(expired.completed_at()),
            millis(created.verification_expires_at()));
  EXPECT_EQ(Verify(created.id(), code).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(Poll("w1", {"a"}, 50).has_value());
  WaitForNotification(created.id(), "failed");
}

TEST_F(VerificationTest, ACallerAttestedRequestRunsAtOnce) {
  v1::CreateRequestRequest create = NewCreate(v1::ACCESS, {"a"});
  create.mutable_verified()->set_method("logged_in_session");
  create.mutable_verified()->set_evidence_ref("session-7f3a");
  v1::Request created = Create(create);
  EXPECT_EQ(created.status(), v1::RUNNING);
  EXPECT_EQ(created.verification().method(), "logged_in_session");
  EXPECT_EQ(created.verification().evidence_ref(), "session-7f3a");
  EXPECT_TRUE(created.verification().has_verified_at());
  std::vector<v1::Event> verified = EventsOf(created.id(), "identity_verified");
  ASSERT_EQ(verified.size(), 1u);
  // The evidence reference is the caller's text: beside the request, with
  // only a keyed commitment in the audit leaf.
  EXPECT_THAT(verified[0].detail(),
              ::testing::MatchesRegex(
                  "method=logged_in_session note_hmac=[0-9a-f]{64}"));
  EXPECT_EQ(verified[0].note(), "session-7f3a");
  EXPECT_TRUE(EventsOf(created.id(), "verification_code_issued").empty());
  EXPECT_TRUE(Poll("w1", {"a"}).has_value());

  // Not waiting for a code; unknown ids and empty codes are refused too.
  EXPECT_EQ(Verify(created.id(), "12345678").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Verify("dsr_missing", "12345678").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Verify(created.id(), "").status().code(),
            absl::StatusCode::kInvalidArgument);
  // No code was sent for it.
  WaitForNotification(created.id(), "started");
  EXPECT_THAT(Kinds(Notifications(created.id())),
              Not(Contains("verification_needed")));
}

// --- Statutory deadlines ---------------------------------------------------

int64_t Millis(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000 + t.nanos() / 1000000;
}

absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMillis(Millis(t));
}

// The last millisecond of `day` in `zone`.
absl::Time EndOf(absl::CivilDay day, absl::TimeZone zone) {
  return absl::FromCivil(day + 1, zone) - absl::Milliseconds(1);
}

// `day` plus `months` calendar months, clamped to the end of the month.
absl::CivilDay PlusMonths(absl::CivilDay day, int months) {
  absl::CivilMonth month = absl::CivilMonth(day) + months;
  int last = (absl::CivilDay(month + 1) - 1).day();
  return absl::CivilDay(month.year(), month.month(), std::min(day.day(), last));
}

class DeadlineTest : public CoordinatorTest {
 protected:
  // UTC+14 all year: the receipt day and the end of the day differ from
  // UTC's.
  static constexpr char kZone[] = "Pacific/Kiritimati";

  void SetUp() override {
    CoordinatorTest::SetUp();
    ASSERT_TRUE(absl::LoadTimeZone(kZone, &zone_));
    ASSERT_NO_FATAL_FAILURE(StartWith(
        [](Coordinator::Options& options) { options.time_zone = kZone; }));
  }

  v1::CreateRequestRequest Under(const std::string& regulation) {
    v1::CreateRequestRequest create = NewCreate(v1::ACCESS, {"a"});
    create.set_regulation(regulation);
    return create;
  }

  absl::TimeZone zone_;
};

TEST_F(DeadlineTest, OneCalendarMonthForGdprAnd45DaysForCcpa) {
  v1::Request gdpr = Create(Under("GDPR"));
  absl::CivilDay received = absl::ToCivilDay(TimeOf(gdpr.created_at()), zone_);
  EXPECT_EQ(TimeOf(gdpr.deadline()), EndOf(PlusMonths(received, 1), zone_))
      << absl::FormatTime(TimeOf(gdpr.deadline()), zone_);
  EXPECT_EQ(Millis(gdpr.original_deadline()), Millis(gdpr.deadline()));
  EXPECT_TRUE(gdpr.extension_reason().empty());
  EXPECT_EQ(Millis(Get(gdpr.id()).deadline()), Millis(gdpr.deadline()));

  v1::Request ccpa = Create(Under("CCPA"));
  received = absl::ToCivilDay(TimeOf(ccpa.created_at()), zone_);
  EXPECT_EQ(TimeOf(ccpa.deadline()), EndOf(received + 45, zone_))
      << absl::FormatTime(TimeOf(ccpa.deadline()), zone_);
  EXPECT_EQ(Millis(ccpa.original_deadline()), Millis(ccpa.deadline()));
}

TEST_F(DeadlineTest, ExtendsOnceWithAReason) {
  v1::Request created = Create(Under("GDPR"));
  absl::Status no_reason = Extend(created.id(), 2, "").status();
  EXPECT_EQ(no_reason.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_reason.message()),
              ::testing::StartsWith("reason:"));
  absl::Status too_long = Extend(created.id(), 3, "complex").status();
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument) << too_long;
  EXPECT_THAT(std::string(too_long.message()),
              ::testing::StartsWith("extension"));
  EXPECT_EQ(Extend("dsr_missing", 2, "complex").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Millis(Get(created.id()).deadline()), Millis(created.deadline()));
  EXPECT_TRUE(EventsOf(created.id(), "deadline_extended").empty());

  absl::StatusOr<v1::Request> extended =
      Extend(created.id(), 2, "many systems to search", "dpo@example.com");
  ASSERT_TRUE(extended.ok()) << extended.status();
  absl::CivilDay original_day =
      absl::ToCivilDay(TimeOf(created.deadline()), zone_);
  EXPECT_EQ(TimeOf(extended->deadline()),
            EndOf(PlusMonths(original_day, 2), zone_));
  EXPECT_EQ(Millis(extended->original_deadline()), Millis(created.deadline()));
  EXPECT_EQ(extended->extension_reason(), "many systems to search");
  v1::Request stored = Get(created.id());
  EXPECT_EQ(Millis(stored.deadline()), Millis(extended->deadline()));
  EXPECT_EQ(stored.extension_reason(), "many systems to search");
  std::vector<v1::Event> events = EventsOf(created.id(), "deadline_extended");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].actor(), "dpo@example.com");
  EXPECT_THAT(events[0].detail(), HasSubstr("by=2 month(s)"));

  // Once only.
  absl::Status again = Extend(created.id(), 1, "still more").status();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_EQ(Millis(Get(created.id()).deadline()), Millis(extended->deadline()));

  // CCPA counts days.
  v1::Request ccpa = Create(Under("CCPA"));
  absl::StatusOr<v1::Request> ccpa_extended =
      Extend(ccpa.id(), 45, "many systems to search");
  ASSERT_TRUE(ccpa_extended.ok()) << ccpa_extended.status();
  EXPECT_EQ(
      TimeOf(ccpa_extended->deadline()),
      EndOf(absl::ToCivilDay(TimeOf(ccpa.deadline()), zone_) + 45, zone_));

  // A finished request has no deadline to move.
  v1::CancelRequestRequest cancel;
  cancel.set_id(ccpa.id());
  ASSERT_TRUE(coordinator_->CancelRequest(cancel).ok());
  EXPECT_EQ(Extend(ccpa.id(), 1, "late").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(DeadlineTest, DueBeforeListsUnfinishedRequestsByDeadline) {
  v1::Request extended = Create(Under("GDPR"));
  ASSERT_TRUE(Extend(extended.id(), 2, "complex").ok());  // ~3 months.
  v1::Request ccpa = Create(Under("CCPA"));               // 45 days.
  v1::Request gdpr = Create(Under("GDPR"));               // ~1 month.
  v1::Request cancelled = Create(Under("GDPR"));
  v1::CancelRequestRequest cancel;
  cancel.set_id(cancelled.id());
  ASSERT_TRUE(coordinator_->CancelRequest(cancel).ok());

  auto due_before = [&](absl::Time when) {
    v1::ListRequestsRequest list;
    list.mutable_due_before()->set_seconds(absl::ToUnixSeconds(when));
    absl::StatusOr<v1::ListRequestsResponse> listed =
        coordinator_->ListRequests(list);
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::vector<std::string> ids;
    if (!listed.ok()) return ids;
    EXPECT_TRUE(listed->next_page_token().empty());
    for (const v1::Request& request : listed->requests()) {
      ids.push_back(request.id());
    }
    return ids;
  };
  absl::Time now = absl::Now();
  EXPECT_THAT(due_before(now + absl::Hours(24 * 400)),
              ElementsAre(gdpr.id(), ccpa.id(), extended.id()));
  EXPECT_THAT(due_before(now + absl::Hours(24 * 40)), ElementsAre(gdpr.id()));
  EXPECT_THAT(due_before(now), ElementsAre());

  v1::ListRequestsRequest with_token;
  with_token.mutable_due_before()->set_seconds(absl::ToUnixSeconds(now));
  with_token.set_page_token("x");
  EXPECT_EQ(coordinator_->ListRequests(with_token).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Notifications ---------------------------------------------------------

TEST_F(CoordinatorTest, NotifiesReceiptStartAndCompletion) {
  ASSERT_NO_FATAL_FAILURE(StartWith([this](Coordinator::Options& options) {
    options.notify_file = NotifyPath();
  }));
  v1::Request created = Create(NewCreate(v1::ACCESS, {"c"}));
  std::optional<v1::Task> task = Poll("w1", {"c"});
  ASSERT_TRUE(task.has_value());
  ASSERT_TRUE(Finish(*task, "w1").ok());
  WaitForStatus(created.id(), v1::COMPLETED);
  WaitForNotification(created.id(), "completed");

  std::vector<nlohmann::json> lines = Notifications(created.id());
  EXPECT_THAT(Kinds(lines), ElementsAre("received", "started", "completed"));
  std::set<std::string> ids;
  for (const nlohmann::json& line : lines) {
    std::string id = line.value("id", "");
    EXPECT_THAT(id, ::testing::StartsWith(created.id() + "/")) << line.dump();
    EXPECT_TRUE(ids.insert(id).second) << "duplicate id " << id;
    EXPECT_EQ(line.value("type", ""), "ACCESS");
    EXPECT_EQ(line.value("regulation", ""), "GDPR");
    EXPECT_FALSE(line.value("deadline", "").empty()) << line.dump();
  }
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2].value("status", ""), "COMPLETED");
}

TEST_F(CoordinatorTest, UndeliveredNotificationsSurviveARestart) {
  // A loopback port nothing listens on: every webhook delivery fails.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length),
            0);
  int port = ntohs(address.sin_port);
  ::close(fd);
  std::string url = absl::StrCat("http://127.0.0.1:", port, "/dsar");

  // The webhook's body is signed: a short secret is refused.
  coordinator_.reset();
  Coordinator::Options weak;
  weak.data_dir = dir_;
  weak.definition = definition_;
  weak.inventory = inventory_;
  weak.webhook_url = url;
  weak.webhook_secret = "short";
  EXPECT_EQ(Coordinator::Create(weak).status().code(),
            absl::StatusCode::kInvalidArgument);

  ASSERT_NO_FATAL_FAILURE(StartWith([url](Coordinator::Options& options) {
    options.webhook_url = url;
    options.webhook_secret = "0123456789abcdef0123";
  }));
  v1::Request created = Create(NewCreate(v1::ACCESS, {"a"}));
  v1::CancelRequestRequest cancel;
  cancel.set_id(created.id());
  ASSERT_TRUE(coordinator_->CancelRequest(cancel).ok());

  // The request is finished: whatever the file receives after the restart
  // comes from the outbox.
  ASSERT_NO_FATAL_FAILURE(StartWith([this](Coordinator::Options& options) {
    options.notify_file = NotifyPath();
  }));
  WaitForNotification(created.id(), "cancelled");
  std::vector<nlohmann::json> lines = Notifications(created.id());
  EXPECT_THAT(Kinds(lines), ::testing::UnorderedElementsAre(
                                "received", "started", "cancelled"));
  std::set<std::string> ids;
  for (const nlohmann::json& line : lines) {
    EXPECT_TRUE(ids.insert(line.value("id", "")).second) << line.dump();
  }
  EXPECT_EQ(ids.size(), 3u);
}

// --- Retry -----------------------------------------------------------------

// Exports catch any failure at once (no Retry), then bundle.
constexpr char kCatchingExport[] = R"json({
  "Name": "catching-export",
  "StartAt": "ExportStores",
  "States": {
    "ExportStores": {
      "Type": "Map", "ItemsPath": "$.stores", "ItemOrder": "IdentityFlow",
      "Iterator": {"StartAt": "Export", "States": {
        "Export": {"Type": "Task", "Resource": "dsar:worker.export",
                   "Catch": [{"ErrorEquals": ["States.ALL"],
                              "Next": "StoreFailed"}],
                   "End": true},
        "StoreFailed": {"Type": "Pass", "End": true}}},
      "Next": "Bundle"
    },
    "Bundle": {"Type": "Task", "Resource": "dsar:bundle", "Next": "Done"},
    "Done": {"Type": "Succeed"}
  }
})json";

TEST_F(CoordinatorTest, RetryRerunsTheStoreThatFailed) {
  absl::StatusOr<std::shared_ptr<const WorkflowDefinition>> custom =
      WorkflowDefinition::Parse(kCatchingExport);
  ASSERT_TRUE(custom.ok()) << custom.status();
  ASSERT_NO_FATAL_FAILURE(StartWith(
      [&](Coordinator::Options& options) { options.definition = *custom; }));

  v1::Request created = Create(NewCreate(v1::ACCESS, {"a", "c"}));
  std::optional<v1::Task> first = Poll("w1", {"a"});
  std::optional<v1::Task> other = Poll("w1", {"c"});
  ASSERT_TRUE(first && other);
  ASSERT_TRUE(Fail(*first, "w1", first->attempt()).ok());
  ASSERT_TRUE(Finish(*other, "w1").ok());
  // A store failed for good: not COMPLETED, no bundle, no "completed"; the
  // request stops for an operator, naming the store.
  v1::Request done = Get(created.id());
  ASSERT_EQ(done.status(), v1::NEEDS_ATTENTION);
  EXPECT_EQ(done.error(), kErrorNeedsAttention);
  EXPECT_THAT(done.cause(), HasSubstr("a (Connector.Unavailable)"));
  EXPECT_FALSE(done.has_completed_at());
  EXPECT_FALSE(done.has_bundle());
  ASSERT_EQ(Step(done, "a")->status(), v1::STEP_FAILED);
  EXPECT_EQ(Step(done, "a")->error(), "Connector.Unavailable");
  EXPECT_EQ(Step(done, "c")->status(), v1::SUCCEEDED);
  EXPECT_THAT(EventKinds(created.id()), Not(Contains("completed")));
  EXPECT_THAT(EventKinds(created.id()), Contains("needs_attention"));
  // It is still open: listed as unfinished, with its deadline running.
  v1::ListRequestsRequest attention;
  attention.set_status(v1::NEEDS_ATTENTION);
  absl::StatusOr<v1::ListRequestsResponse> listed =
      coordinator_->ListRequests(attention);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->requests_size(), 1);
  EXPECT_EQ(listed->requests(0).id(), created.id());

  EXPECT_EQ(Retry(created.id(), {"zzz"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // c did not fail: nothing to retry there.
  EXPECT_EQ(Retry(created.id(), {"c"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Retry("dsr_missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Get(created.id()).status(), v1::NEEDS_ATTENTION);

  absl::StatusOr<v1::Request> retried =
      Retry(created.id(), {}, "store a is back", "ops@example.com");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->status(), v1::RUNNING);
  EXPECT_EQ(retried->current_state(), "ExportStores");
  EXPECT_TRUE(retried->error().empty());
  EXPECT_FALSE(retried->has_completed_at());
  // A second run of the Map: only a is to do, c keeps its export. The
  // steps show the current run only; the events keep the first.
  EXPECT_EQ(retried->steps_size(), 2);
  EXPECT_EQ(Step(*retried, "a")->status(), v1::READY);
  EXPECT_EQ(Step(*retried, "c")->status(), v1::SUCCEEDED);
  EXPECT_EQ(Get(created.id()).status(), v1::RUNNING);
  std::vector<v1::Event> retried_events = EventsOf(created.id(), "retried");
  ASSERT_EQ(retried_events.size(), 1u);
  EXPECT_EQ(retried_events[0].actor(), "ops@example.com");
  EXPECT_THAT(retried_events[0].detail(),
              ::testing::MatchesRegex("stores=a note_hmac=[0-9a-f]{64}"));
  EXPECT_EQ(retried_events[0].note(), "store a is back");
  // The audit log itself never holds the text (it could not be erased).
  v1::GetRequestEntriesRequest leaves;
  leaves.set_request_id(created.id());
  absl::StatusOr<v1::GetRequestEntriesResponse> entries =
      coordinator_->audit_log().GetRequestEntries(leaves);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_GT(entries->entries_size(), 0);
  for (const std::string& entry : entries->entries()) {
    EXPECT_EQ(entry.find("store a is back"), std::string::npos);
  }

  // Running again: not retried twice.
  EXPECT_EQ(Retry(created.id()).status().code(),
            absl::StatusCode::kFailedPrecondition);

  std::optional<v1::Task> again = Poll("w2", {"a", "c"});
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->store(), "a");
  EXPECT_EQ(again->attempt(), first->attempt() + 1);
  EXPECT_NE(again->task_id(), first->task_id());
  EXPECT_FALSE(Poll("w2", {"a", "c"}, 50).has_value());
  ASSERT_TRUE(Finish(*again, "w2").ok());

  v1::Request redone = WaitForStatus(created.id(), v1::COMPLETED);
  EXPECT_EQ(Step(redone, "a")->status(), v1::SUCCEEDED);
  EXPECT_EQ(Step(redone, "c")->status(), v1::SUCCEEDED);
  EXPECT_THAT(redone.bundle().files(),
              IsSupersetOf({"data/a.json", "data/c.json"}));
  // Nothing failed any more.
  EXPECT_EQ(Retry(created.id()).status().code(),
            absl::StatusCode::kFailedPrecondition);

  // A cancelled request is not re-opened.
  v1::Request withdrawn = Create(NewCreate(v1::ACCESS, {"a"}));
  v1::CancelRequestRequest cancel;
  cancel.set_id(withdrawn.id());
  ASSERT_TRUE(coordinator_->CancelRequest(cancel).ok());
  EXPECT_EQ(Retry(withdrawn.id()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// --- Rectification, restriction, objection -----------------------------------

v1::FieldCorrection Correction(const std::string& store,
                               const std::string& field,
                               const std::string& value) {
  v1::FieldCorrection correction;
  correction.set_store(store);
  correction.set_field(field);
  correction.set_value(value);
  return correction;
}

TEST_F(CoordinatorTest, ChangeRightsDiscoverThenRunTheirOperation) {
  struct Case {
    v1::RequestType type;
    std::string operation;
  };
  for (const Case& c :
       {Case{v1::RECTIFICATION, "rectify"}, Case{v1::RESTRICTION, "restrict"},
        Case{v1::OBJECTION, "object"}}) {
    SCOPED_TRACE(c.operation);
    v1::CreateRequestRequest create = NewCreate(c.type);
    if (c.type == v1::RECTIFICATION) {
      *create.add_corrections() = Correction("a", "full_name", "Jane Roe");
      *create.add_corrections() = Correction("", "email", "jane@example.org");
    }
    v1::Request created = Create(create);
    ASSERT_EQ(created.status(), v1::RUNNING);
    EXPECT_EQ(created.corrections_size(), create.corrections_size());

    std::vector<std::string> order;
    std::map<std::string, v1::Task> changes;  // By store.
    for (int n = 0; n < 6; ++n) {
      std::optional<v1::Task> task = Poll("w1", {"a", "b", "c"}, 5000);
      ASSERT_TRUE(task.has_value()) << "task " << n;
      EXPECT_EQ(task->request_id(), created.id());
      EXPECT_EQ(task->request_type(), c.type);
      order.push_back(absl::StrCat(task->operation(), ":", task->store()));
      if (task->operation() == "discover") {
        EXPECT_EQ(task->corrections_size(), 0);
      } else {
        changes[task->store()] = *task;
      }
      ASSERT_TRUE(Finish(*task, "w1").ok());
    }
    // Every store is discovered before any is changed.
    ASSERT_EQ(order.size(), 6u);
    for (int n = 0; n < 3; ++n) {
      EXPECT_THAT(order[n], ::testing::StartsWith("discover:")) << n;
      EXPECT_THAT(order[n + 3], ::testing::StartsWith(c.operation + ":")) << n;
    }
    ASSERT_EQ(changes.size(), 3u);
    for (const auto& [store, task] : changes) {
      std::vector<std::string> fields;
      for (const v1::FieldCorrection& correction : task.corrections()) {
        fields.push_back(
            absl::StrCat(correction.field(), "=", correction.value()));
      }
      if (c.type != v1::RECTIFICATION) {
        EXPECT_THAT(fields, ElementsAre()) << store;
      } else if (store == "a") {
        EXPECT_THAT(fields, ElementsAre("full_name=Jane Roe",
                                        "email=jane@example.org"));
      } else {
        // Only the correction that names no store reaches the others.
        EXPECT_THAT(fields, ElementsAre("email=jane@example.org")) << store;
      }
    }
    v1::Request done = WaitForStatus(created.id(), v1::COMPLETED);
    EXPECT_EQ(done.current_state(), "Finalize");
    EXPECT_FALSE(done.has_bundle());
    EXPECT_EQ(done.steps_size(), 6);
  }
}

// --- Workers -----------------------------------------------------------------

TEST_F(CoordinatorTest, ListWorkersShowsStoresAndLeases) {
  absl::StatusOr<v1::ListWorkersResponse> none = coordinator_->ListWorkers();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->workers_size(), 0);

  Create(NewCreate(v1::ACCESS, {"a", "c"}));
  int64_t before_ms = absl::ToUnixMillis(absl::Now());
  std::optional<v1::Task> task_a = Poll("w1", {"a"});
  ASSERT_TRUE(task_a.has_value());
  std::optional<v1::Task> task_c = Poll("w2", {"c", "b"});
  ASSERT_TRUE(task_c.has_value());
  EXPECT_FALSE(Poll("w3", {"b"}, 20).has_value());

  auto workers = [&] {
    std::map<std::string, v1::WorkerInfo> by_id;
    absl::StatusOr<v1::ListWorkersResponse> listed =
        coordinator_->ListWorkers();
    EXPECT_TRUE(listed.ok()) << listed.status();
    if (!listed.ok()) return by_id;
    for (const v1::WorkerInfo& info : listed->workers()) {
      EXPECT_TRUE(by_id.emplace(info.worker_id(), info).second)
          << info.worker_id();
    }
    return by_id;
  };
  std::map<std::string, v1::WorkerInfo> seen = workers();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_THAT(seen["w1"].stores(), ElementsAre("a"));
  EXPECT_THAT(seen["w1"].leased_tasks(), ElementsAre(task_a->task_id()));
  EXPECT_GE(Millis(seen["w1"].last_seen()), before_ms);
  EXPECT_THAT(seen["w2"].stores(), ElementsAre("c", "b"));
  EXPECT_THAT(seen["w2"].leased_tasks(), ElementsAre(task_c->task_id()));
  EXPECT_THAT(seen["w3"].stores(), ElementsAre("b"));
  EXPECT_THAT(seen["w3"].leased_tasks(), ElementsAre());

  // A finished task is no longer held.
  ASSERT_TRUE(Finish(*task_a, "w1").ok());
  seen = workers();
  EXPECT_THAT(seen["w1"].leased_tasks(), ElementsAre());
  EXPECT_THAT(seen["w2"].leased_tasks(), ElementsAre(task_c->task_id()));
}

// --- Delivery (engine/coordinator_delivery.cc) -------------------------------

// The DownloadBundle request a download URL names.
v1::DownloadBundleRequest DownloadRequestOf(const std::string& url) {
  v1::DownloadBundleRequest request;
  std::string path = url.substr(0, url.find('?'));
  request.set_id(path.substr(path.rfind('/') + 1));
  for (absl::string_view pair :
       absl::StrSplit(url.substr(url.find('?') + 1), '&')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(pair, '=');
    if (kv.first == "expires") request.set_expires(std::stoll(kv.second));
    if (kv.first == "generation") request.set_generation(std::stoul(kv.second));
    if (kv.first == "nonce") request.set_nonce(kv.second);
    if (kv.first == "sig") request.set_sig(kv.second);
  }
  return request;
}

class DeliveryTest : public CoordinatorTest {
 protected:
  // A COMPLETED access request of store c.
  v1::Request Completed() {
    v1::Request created = Create(NewCreate(v1::ACCESS, {"c"}));
    std::optional<v1::Task> task = Poll("w1", {"c"});
    EXPECT_TRUE(task.has_value());
    if (task) {
      EXPECT_TRUE(Finish(*task, "w1").ok());
    }
    return WaitForStatus(created.id(), v1::COMPLETED);
  }

  absl::StatusOr<v1::CreateDownloadUrlResponse> Url(const std::string& id) {
    v1::CreateDownloadUrlRequest create;
    create.set_id(id);
    return coordinator_->CreateDownloadUrl(create, "service:helpdesk");
  }

  // Every byte the download of `url` gives, read as DownloadBundle does.
  absl::StatusOr<std::string> Download(const std::string& url) {
    v1::DownloadBundleRequest request = DownloadRequestOf(url);
    absl::StatusOr<Coordinator::BundleDownload> download =
        coordinator_->OpenDownload(request);
    if (!download.ok()) return download.status();
    std::string bytes(download->header.size_bytes(), '\0');
    absl::StatusOr<size_t> read =
        download->reader->ReadAt(0, bytes.data(), bytes.size());
    if (!read.ok()) return read.status();
    bytes.resize(*read);
    absl::Status recorded =
        coordinator_->RecordDownload(request, *read, "signed-url");
    if (!recorded.ok()) return recorded;
    return bytes;
  }

  FakeClock clock_{absl::ToUnixMillis(absl::Now())};
};

TEST_F(DeliveryTest, SignedUrlDownloadsTheBundleAndIsAudited) {
  v1::Request done = Completed();
  absl::StatusOr<v1::CreateDownloadUrlResponse> url = Url(done.id());
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_THAT(url->url(), ::testing::StartsWith(absl::StrCat(
                              "/v1/downloads/", done.id(), "?expires=")));
  EXPECT_EQ(url->sha256(), done.bundle().sha256());
  EXPECT_EQ(url->size_bytes(), done.bundle().size_bytes());
  // Default lifetime: one hour.
  EXPECT_NEAR(url->expires_at().seconds(),
              absl::ToUnixSeconds(absl::Now() + absl::Hours(1)), 5);

  absl::StatusOr<std::string> bytes = Download(url->url());
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(Sha256Hex(*bytes), done.bundle().sha256());

  std::vector<v1::Event> events = AllEvents(done.id());
  ASSERT_GE(events.size(), 2u);
  const v1::Event& issued = events[events.size() - 2];
  const v1::Event& downloaded = events.back();
  EXPECT_EQ(issued.kind(), "download_url_issued");
  EXPECT_EQ(issued.actor(), "service:helpdesk");
  EXPECT_THAT(issued.detail(), HasSubstr("expires="));
  EXPECT_EQ(downloaded.kind(), "bundle_downloaded");
  EXPECT_THAT(
      downloaded.detail(),
      HasSubstr(absl::StrCat("nonce=", DownloadRequestOf(url->url()).nonce())));
  EXPECT_THAT(downloaded.detail(), HasSubstr(done.bundle().sha256()));
  // The URL itself (its signature) is in no event.
  for (const v1::Event& event : events) {
    EXPECT_THAT(event.detail(),
                Not(HasSubstr(DownloadRequestOf(url->url()).sig())));
  }
  // The request stays as it was.
  EXPECT_EQ(Get(done.id()).status(), v1::COMPLETED);
}

TEST_F(DeliveryTest, ExpiredUrlIsRefusedOnTheEngineClock) {
  ASSERT_NO_FATAL_FAILURE(StartWith([this](Coordinator::Options& options) {
    options.clock = &clock_;
    options.download_url_ttl = absl::Minutes(10);
  }));
  v1::Request done = Completed();
  absl::StatusOr<v1::CreateDownloadUrlResponse> url = Url(done.id());
  ASSERT_TRUE(url.ok()) << url.status();
  clock_.Advance(absl::ToInt64Milliseconds(absl::Minutes(9)));
  EXPECT_TRUE(Download(url->url()).ok());
  clock_.Advance(absl::ToInt64Milliseconds(absl::Minutes(1)));
  absl::StatusOr<std::string> expired = Download(url->url());
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(expired.status().message(), HasSubstr("expired"));
}

TEST_F(DeliveryTest, TamperedOrOtherRequestsUrlIsPermissionDenied) {
  v1::Request a = Completed();
  v1::Request b = Completed();
  absl::StatusOr<v1::CreateDownloadUrlResponse> url = Url(a.id());
  ASSERT_TRUE(url.ok()) << url.status();
  v1::DownloadBundleRequest for_b = DownloadRequestOf(url->url());
  for_b.set_id(b.id());
  absl::StatusOr<Coordinator::BundleDownload> other =
      coordinator_->OpenDownload(for_b);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kPermissionDenied);
  v1::DownloadBundleRequest later = DownloadRequestOf(url->url());
  later.set_expires(later.expires() + 86400);
  EXPECT_EQ(coordinator_->OpenDownload(later).status().code(),
            absl::StatusCode::kPermissionDenied);
  // A forged URL for an id that does not exist says the same.
  v1::DownloadBundleRequest unknown = DownloadRequestOf(url->url());
  unknown.set_id("dsr_000000000000000000000000");
  EXPECT_EQ(coordinator_->OpenDownload(unknown).status().code(),
            absl::StatusCode::kPermissionDenied);
  v1::DownloadBundleRequest malformed = DownloadRequestOf(url->url());
  malformed.set_nonce("short");
  absl::Status bad = coordinator_->OpenDownload(malformed).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), ::testing::StartsWith("nonce:"));
}

TEST_F(DeliveryTest, RevokedUrlsAreRefusedNewOnesWork) {
  v1::Request done = Completed();
  absl::StatusOr<v1::CreateDownloadUrlResponse> old_url = Url(done.id());
  ASSERT_TRUE(old_url.ok()) << old_url.status();
  v1::RevokeDownloadUrlsRequest revoke;
  revoke.set_id(done.id());
  EXPECT_EQ(coordinator_->RevokeDownloadUrls(revoke).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "a reason is required";
  revoke.set_reason("link sent to a wrong address");
  absl::StatusOr<v1::RevokeDownloadUrlsResponse> revoked =
      coordinator_->RevokeDownloadUrls(revoke, "operator:alice");
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->generation(), 1u);

  absl::StatusOr<std::string> refused = Download(old_url->url());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("revocation"));
  absl::StatusOr<v1::CreateDownloadUrlResponse> new_url = Url(done.id());
  ASSERT_TRUE(new_url.ok()) << new_url.status();
  EXPECT_TRUE(Download(new_url->url()).ok());

  std::vector<v1::Event> events = AllEvents(done.id());
  auto it = std::find_if(events.begin(), events.end(), [](const v1::Event& e) {
    return e.kind() == "download_urls_revoked";
  });
  ASSERT_NE(it, events.end());
  EXPECT_EQ(it->actor(), "operator:alice");
  EXPECT_EQ(it->note(), "link sent to a wrong address");
  // Survives a restart: the generation is on the stored request.
  Start();
  EXPECT_EQ(Download(old_url->url()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Download(new_url->url()).ok());
}

TEST_F(DeliveryTest, OnlyACompletedRequestWithABundleGetsAUrl) {
  v1::Request running = Create(NewCreate(v1::ACCESS, {"c"}));
  absl::Status early = Url(running.id()).status();
  EXPECT_EQ(early.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(early.message(), HasSubstr("RUNNING"));
  v1::Request erasure = Create(NewCreate(v1::ERASURE, {"c"}));
  absl::Status no_bundle = Url(erasure.id()).status();
  EXPECT_EQ(no_bundle.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_bundle.message(), HasSubstr("ERASURE"));
  EXPECT_EQ(Url("dsr_nope").status().code(), absl::StatusCode::kNotFound);
  // No event was added for a refusal.
  for (const std::string& kind : EventKinds(running.id())) {
    EXPECT_NE(kind, "download_url_issued");
  }
}

// A duplicate completed with the request it was linked to shares that
// one's bundle, encrypted under that one's data key: it downloads the same
// bytes.
TEST_F(DeliveryTest, LinkedDuplicateDownloadsTheSharedBundle) {
  v1::CreateRequestRequest create = NewCreate(v1::ACCESS, {"c"});
  v1::Request original = Create(create);
  v1::Request duplicate = Create(create);
  ASSERT_EQ(duplicate.linked_to(), original.id());
  std::optional<v1::Task> task = Poll("w1", {"c"});
  ASSERT_TRUE(task.has_value());
  ASSERT_TRUE(Finish(*task, "w1").ok());
  v1::Request done = WaitForStatus(original.id(), v1::COMPLETED);
  v1::Request answered = WaitForStatus(duplicate.id(), v1::COMPLETED);
  EXPECT_EQ(answered.bundle().sha256(), done.bundle().sha256());
  absl::StatusOr<v1::CreateDownloadUrlResponse> url = Url(duplicate.id());
  ASSERT_TRUE(url.ok()) << url.status();
  absl::StatusOr<std::string> bytes = Download(url->url());
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(Sha256Hex(*bytes), done.bundle().sha256());
}

TEST_F(DeliveryTest, CompletedNotificationNamesTheRouteNotAUrl) {
  ASSERT_NO_FATAL_FAILURE(StartWith([this](Coordinator::Options& options) {
    options.notify_file = NotifyPath();
  }));
  v1::Request done = Completed();
  WaitForNotification(done.id(), "completed");
  std::vector<nlohmann::json> lines = Notifications(done.id());
  ASSERT_FALSE(lines.empty());
  const nlohmann::json& completed = lines.back();
  ASSERT_EQ(completed.value("kind", ""), "completed") << completed.dump();
  ASSERT_TRUE(completed.contains("download")) << completed.dump();
  EXPECT_EQ(completed["download"]["method"], "POST");
  EXPECT_EQ(completed["download"]["path"],
            absl::StrCat("/v1/requests/", done.id(), ":createDownloadUrl"));
  EXPECT_EQ(completed["download"]["sha256"], done.bundle().sha256());
  EXPECT_THAT(completed.dump(), Not(HasSubstr("sig=")));
}

class RetentionTest : public CoordinatorTest {
 protected:
  void StartRetaining(absl::Duration bundle, absl::Duration record,
                      absl::Duration interval = absl::ZeroDuration()) {
    ASSERT_NO_FATAL_FAILURE(
        StartWith([this, bundle, record, interval](Coordinator::Options& o) {
          o.clock = &clock_;
          o.bundle_retention = bundle;
          o.record_retention = record;
          o.purge_interval = interval;
        }));
  }

  // Runs `create` to completion, answering every task it hands out.
  v1::Request RunToCompletion(const v1::CreateRequestRequest& create) {
    v1::Request created = Create(create);
    for (int n = 0; n < 12; ++n) {
      v1::Request now = Get(created.id());
      if (now.status() == v1::COMPLETED) break;
      std::optional<v1::Task> task = Poll("w1", {"a", "b", "c"}, 200);
      if (task) {
        EXPECT_TRUE(Finish(*task, "w1").ok());
      }
    }
    return WaitForStatus(created.id(), v1::COMPLETED);
  }

  absl::StatusOr<v1::PurgeResponse> Purge(bool dry_run) {
    v1::PurgeRequest purge;
    purge.set_dry_run(dry_run);
    return coordinator_->Purge(purge, "operator:test");
  }

  static std::vector<std::string> Items(const v1::PurgeResponse& response) {
    std::vector<std::string> items;
    for (const v1::PurgedItem& item : response.items())
      items.push_back(absl::StrCat(item.request_id(), ":", item.what()));
    return items;
  }

  FakeClock clock_{absl::ToUnixMillis(absl::Now())};
};

TEST_F(RetentionTest, BundleGoesFirstThenThePersonalData) {
  StartRetaining(absl::Hours(1), absl::Hours(2));
  v1::Request done = RunToCompletion(NewCreate(v1::ACCESS, {"c"}));
  ASSERT_TRUE(fs::exists(done.bundle().path()));
  EXPECT_EQ(done.bundle().expires_at().seconds(),
            done.completed_at().seconds() + 3600);
  EXPECT_THAT(Items(*Purge(false)), IsEmpty());

  clock_.Advance(absl::ToInt64Milliseconds(absl::Hours(1)));
  // A dry run reports and changes nothing.
  absl::StatusOr<v1::PurgeResponse> dry = Purge(true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_TRUE(dry->dry_run());
  EXPECT_THAT(Items(*dry), ElementsAre(absl::StrCat(done.id(), ":bundle")));
  EXPECT_THAT(dry->items(0).reason(), HasSubstr("bundle retention 1h"));
  EXPECT_FALSE(Get(done.id()).bundle().has_purged_at());
  EXPECT_TRUE(fs::exists(done.bundle().path()));

  EXPECT_THAT(Items(*Purge(false)),
              ElementsAre(absl::StrCat(done.id(), ":bundle")));
  v1::Request purged = Get(done.id());
  EXPECT_TRUE(purged.bundle().has_purged_at());
  EXPECT_TRUE(WaitUntil([&] { return !fs::exists(done.bundle().path()); }));
  // Identities stay until the record retention.
  EXPECT_EQ(purged.identities_size(), 1);
  EXPECT_TRUE(coordinator_->RequestDataKey(done.id()).ok());
  EXPECT_THAT(EventKinds(done.id()), Contains("bundle_purged"));
  // Done once: the next run has nothing for the bundle.
  EXPECT_THAT(Items(*Purge(false)), IsEmpty());

  clock_.Advance(absl::ToInt64Milliseconds(absl::Hours(1)));
  EXPECT_THAT(Items(*Purge(false)),
              ElementsAre(absl::StrCat(done.id(), ":personal_data")));
  for (bool restarted : {false, true}) {
    if (restarted) Start();
    v1::Request destroyed = Get(done.id());
    EXPECT_TRUE(destroyed.has_personal_data_destroyed_at());
    EXPECT_THAT(destroyed.identities(), IsEmpty());
    EXPECT_EQ(destroyed.status(), v1::COMPLETED);
    EXPECT_EQ(destroyed.type(), v1::ACCESS);
    EXPECT_EQ(coordinator_->RequestDataKey(done.id()).status().code(),
              absl::StatusCode::kNotFound);
  }
  std::vector<v1::Event> events = AllEvents(done.id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind(), "personal_data_destroyed");
  EXPECT_EQ(events.back().actor(), "operator:test");
  EXPECT_THAT(events.back().detail(), HasSubstr("record retention 2h"));
  EXPECT_THAT(Items(*Purge(false)), IsEmpty());
}

TEST_F(RetentionTest, ErasureDestroysTheSamePersonsEarlierAnswerOnly) {
  StartRetaining(absl::Hours(100), absl::Hours(200));
  v1::CreateRequestRequest mine = NewCreate(v1::ACCESS, {"c"});
  v1::Request answered = RunToCompletion(mine);
  v1::Request other = RunToCompletion(NewCreate(v1::ACCESS, {"c"}));
  ASSERT_TRUE(fs::exists(answered.bundle().path()));

  v1::CreateRequestRequest erase = mine;
  erase.set_type(v1::ERASURE);
  v1::Request erased = RunToCompletion(erase);
  ASSERT_EQ(erased.status(), v1::COMPLETED);

  v1::Request destroyed = Get(answered.id());
  EXPECT_TRUE(destroyed.has_personal_data_destroyed_at());
  EXPECT_TRUE(destroyed.bundle().has_purged_at());
  EXPECT_THAT(destroyed.identities(), IsEmpty());
  EXPECT_TRUE(WaitUntil([&] { return !fs::exists(answered.bundle().path()); }));
  std::vector<v1::Event> events = AllEvents(answered.id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind(), "personal_data_destroyed");
  EXPECT_THAT(events.back().detail(), HasSubstr(erased.id()));

  // Another person's answer, and the erasure itself, are untouched.
  v1::Request kept = Get(other.id());
  EXPECT_FALSE(kept.has_personal_data_destroyed_at());
  EXPECT_TRUE(fs::exists(kept.bundle().path()));
  EXPECT_EQ(Get(erased.id()).identities_size(), 1);
}

TEST_F(RetentionTest, DailyPurgeRunsOnTheEngineClock) {
  StartRetaining(absl::ZeroDuration(), absl::Hours(1000), absl::Hours(24));
  v1::Request done = RunToCompletion(NewCreate(v1::ACCESS, {"c"}));
  EXPECT_FALSE(Get(done.id()).bundle().has_purged_at());
  clock_.Advance(absl::ToInt64Milliseconds(absl::Hours(24)));
  // A call through the loop wakes it; it fires the due purge first.
  ASSERT_TRUE(coordinator_->ListWorkers().ok());
  EXPECT_TRUE(Get(done.id()).bundle().has_purged_at());
  std::vector<v1::Event> events = AllEvents(done.id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind(), "bundle_purged");
  EXPECT_EQ(events.back().actor(), "dsard:purge");
}

TEST_F(RetentionTest, RotatedKeysKeepEarlierRequestsReadable) {
  StartRetaining(absl::Hours(100), absl::Hours(200));
  v1::Request before = Create(NewCreate(v1::ACCESS, {"c"}));
  v1::RotateKeysRequest rotate;
  absl::StatusOr<v1::RotateKeysResponse> rotated =
      coordinator_->RotateKeys(rotate);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->active_key_id(), "2");
  v1::Request after = Create(NewCreate(v1::ACCESS, {"c"}));
  Start();
  EXPECT_EQ(Get(before.id()).identities(0).value(),
            before.identities(0).value());
  EXPECT_EQ(Get(after.id()).identities(0).value(), after.identities(0).value());
  rotate.set_rewrap(true);
  rotated = coordinator_->RotateKeys(rotate);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->active_key_id(), "3");
  EXPECT_EQ(rotated->rewrapped(), 2);
  // Only the active key is needed now.
  coordinator_.reset();
  fs::remove(fs::path(dir_) / "keys/kek/kek-1.key");
  fs::remove(fs::path(dir_) / "keys/kek/kek-2.key");
  Start();
  EXPECT_EQ(Get(before.id()).identities(0).value(),
            before.identities(0).value());
}

constexpr char kManualInventoryYaml[] = R"yaml(
stores:
  - name: a
    kind: sqlite
    path: /nonexistent/a.db
    tables:
      - name: users
        identity_fields: {email: email}
  - name: archive
    kind: manual
    owner: records-office@example.com
    instructions: "Search the paper archive by email; shred what matches."
    identity_kinds: [email]
    due_within: 2d
)yaml";

// Manual stores (docs/manual-stores.md): steps answered by the store's
// owner through CompleteWorkItem / FailWorkItem instead of a worker.
class ManualStoreTest : public CoordinatorTest {
 protected:
  void SetUp() override {
    CoordinatorTest::SetUp();
    absl::StatusOr<Inventory> inventory =
        Inventory::Parse(kManualInventoryYaml, dir_);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = std::make_shared<const Inventory>(std::move(*inventory));
    ASSERT_NO_FATAL_FAILURE(StartWith([this](Coordinator::Options& options) {
      options.clock = &clock_;
      options.notify_file = NotifyPath();
    }));
  }

  std::vector<v1::WorkItem> OpenItems() {
    absl::StatusOr<v1::ListWorkItemsResponse> items =
        coordinator_->ListWorkItems(v1::ListWorkItemsRequest());
    EXPECT_TRUE(items.ok()) << items.status();
    if (!items.ok()) return {};
    return {items->items().begin(), items->items().end()};
  }

  static v1::CompleteWorkItemRequest Answer(const std::string& id,
                                            const std::string& evidence,
                                            const std::string& export_json) {
    v1::CompleteWorkItemRequest answer;
    answer.set_request_id(id);
    answer.set_store("archive");
    answer.set_evidence(evidence);
    answer.set_export_(export_json);
    return answer;
  }

  FakeClock clock_{absl::ToUnixMillis(absl::Now())};
};

TEST_F(ManualStoreTest, OwnersExportReachesTheBundleWithItsEvidence) {
  v1::Request created = Create(NewCreate(v1::ACCESS, {"a", "archive"}));
  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());
  ASSERT_TRUE(Finish(*task, "w1").ok());
  // No worker may take the manual store's step.
  v1::PollTaskRequest poll;
  poll.set_worker_id("w1");
  poll.add_stores("archive");
  absl::StatusOr<Coordinator::LeasedTasks> refused =
      coordinator_->PollTask(poll, [] { return false; });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("manual store"));

  std::vector<v1::WorkItem> items = OpenItems();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].request_id(), created.id());
  EXPECT_EQ(items[0].store(), "archive");
  EXPECT_EQ(items[0].operation(), "export");
  EXPECT_EQ(items[0].owner(), "records-office@example.com");
  EXPECT_THAT(items[0].instructions(), HasSubstr("paper archive"));
  EXPECT_EQ(Millis(items[0].due()) - Millis(items[0].ready_since()),
            absl::ToInt64Milliseconds(absl::Hours(48)));

  // Refused before anything is leased: no evidence, no export, a document
  // of another store.
  const std::string records =
      R"({"store":"archive","records":[{"collection":"forms",)"
      R"("data":{"box":"12","form":"newsletter signup 2019"}}]})";
  EXPECT_THAT(coordinator_
                  ->CompleteWorkItem(Answer(created.id(), "", records),
                                     "operator:alice")
                  .status()
                  .message(),
              HasSubstr("evidence: required"));
  EXPECT_THAT(coordinator_
                  ->CompleteWorkItem(Answer(created.id(), "box 12", ""),
                                     "operator:alice")
                  .status()
                  .message(),
              HasSubstr("export: required"));
  EXPECT_THAT(coordinator_
                  ->CompleteWorkItem(Answer(created.id(), "box 12",
                                            R"({"store":"a","records":[]})"),
                                     "operator:alice")
                  .status()
                  .message(),
              HasSubstr("export.store"));
  ASSERT_EQ(OpenItems().size(), 1u) << "a refused answer leases nothing";

  absl::StatusOr<v1::Request> answered = coordinator_->CompleteWorkItem(
      Answer(created.id(), "box 12 scanned, ticket OPS-7", records),
      "operator:alice");
  ASSERT_TRUE(answered.ok()) << answered.status();
  v1::Request done = WaitForStatus(created.id(), v1::COMPLETED);
  EXPECT_THAT(done.bundle().files(), Contains("data/archive.json"));
  ASSERT_NE(Step(done, "archive"), nullptr);
  EXPECT_EQ(Step(done, "archive")->record_count(), 1);
  EXPECT_EQ(Step(done, "archive")->worker_id(), "work-item:operator:alice");
  std::vector<v1::Event> evidence =
      EventsOf(created.id(), "work_item_answered");
  ASSERT_EQ(evidence.size(), 1u);
  EXPECT_EQ(evidence[0].actor(), "work-item:operator:alice");
  EXPECT_EQ(evidence[0].note(), "box 12 scanned, ticket OPS-7");
  EXPECT_THAT(evidence[0].detail(), HasSubstr("outcome=completed"));
  EXPECT_TRUE(OpenItems().empty());
  EXPECT_EQ(coordinator_
                ->CompleteWorkItem(Answer(created.id(), "again", records),
                                   "operator:alice")
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ManualStoreTest, OwnersFailureNamesTheReasonInTheOutcome) {
  v1::Request created = Create(NewCreate(v1::ERASURE, {"archive"}));
  // An erasure first finds what there is, then erases it: two items.
  ASSERT_EQ(OpenItems().size(), 1u);
  EXPECT_EQ(OpenItems()[0].operation(), "discover");
  v1::CompleteWorkItemRequest found =
      Answer(created.id(), "3 forms, box 12", "");
  found.set_record_count(3);
  ASSERT_TRUE(coordinator_->CompleteWorkItem(found, "operator:bob").ok());
  ASSERT_TRUE(WaitUntil([&] {
    std::vector<v1::WorkItem> items = OpenItems();
    return items.size() == 1 && items[0].operation() == "erase";
  }));
  // An erase takes no records.
  EXPECT_THAT(
      coordinator_
          ->CompleteWorkItem(Answer(created.id(), "shredded",
                                    R"({"store":"archive","records":[]})"),
                             "operator:bob")
          .status()
          .message(),
      HasSubstr("only an export work item"));
  v1::FailWorkItemRequest fail;
  fail.set_request_id(created.id());
  fail.set_store("archive");
  EXPECT_EQ(coordinator_->FailWorkItem(fail, "operator:bob").status().code(),
            absl::StatusCode::kInvalidArgument);
  fail.set_reason("the archive is held by the tax office until 2027");
  ASSERT_TRUE(coordinator_->FailWorkItem(fail, "operator:bob").ok());
  v1::Request ended = WaitFor(created.id(), [](const v1::Request& request) {
    return request.status() != v1::RUNNING && request.status() != v1::RECEIVED;
  });
  ASSERT_NE(Step(ended, "archive"), nullptr);
  EXPECT_EQ(Step(ended, "archive")->status(), v1::STEP_FAILED);
  EXPECT_EQ(Step(ended, "archive")->error(), "Operator.Failed");
  EXPECT_THAT(Step(ended, "archive")->cause(), HasSubstr("tax office"));
  EXPECT_NE(ended.status(), v1::COMPLETED);
}

TEST_F(ManualStoreTest, OverdueWorkItemAlertsItsOwnerOnTheEngineClock) {
  v1::Request created = Create(NewCreate(v1::ERASURE, {"archive"}));
  clock_.Advance(absl::ToInt64Milliseconds(absl::Hours(48) - absl::Minutes(1)));
  ASSERT_EQ(OpenItems().size(), 1u);
  EXPECT_TRUE(OpenItems()[0].alert().empty());
  clock_.Advance(absl::ToInt64Milliseconds(absl::Minutes(2)));
  OpenItems();  // A turn of the loop fires the due timer.
  std::vector<v1::WorkItem> items = OpenItems();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_THAT(items[0].alert(), HasSubstr("overdue"));
  EXPECT_THAT(items[0].alert(), HasSubstr("records-office@example.com"));
  EXPECT_THAT(Step(Get(created.id()), "archive")->alert(),
              HasSubstr("overdue"));
  ASSERT_EQ(EventsOf(created.id(), "work_item_overdue").size(), 1u);
  EXPECT_TRUE(WaitUntil([&] {
    for (const nlohmann::json& line : Notifications(created.id())) {
      if (line.value("kind", "") == "work_item_overdue" &&
          line.value("audience", "") == "owner" &&
          line.value("owner", "") == "records-office@example.com") {
        return true;
      }
    }
    return false;
  }));
}

// OpenDSR status callbacks (docs/opendsr.md): dsard finds the task whose
// processor request the callback names, records it on the request's audit
// log and tells the task's next heartbeat, once.
TEST_F(CoordinatorTest, ProcessorStatusCallbackIsRecordedAndHintsTheTask) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
stores:
  - name: billing
    kind: opendsr
    identity_fields: {email: email}
    opendsr:
      url: https://billing.test/v1
      processor_domain: opendsr.billing.test
      signing_ca: /nonexistent/ca.pem
)yaml",
                                                         dir_);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  inventory_ = std::make_shared<const Inventory>(std::move(*inventory));
  Start();
  v1::Request created = Create(NewCreate(v1::ERASURE));
  std::optional<v1::Task> discover = Poll("w1", {"billing"});
  ASSERT_TRUE(discover.has_value());
  ASSERT_EQ(discover->operation(), "discover");
  EXPECT_EQ(discover->regulation(), created.regulation());
  EXPECT_EQ(discover->submitted_unix_ms(),
            created.created_at().seconds() * 1000 +
                created.created_at().nanos() / 1000000);
  ASSERT_TRUE(Finish(*discover, "w1").ok());
  std::optional<v1::Task> erase = Poll("w1", {"billing"});
  ASSERT_TRUE(erase.has_value());
  ASSERT_EQ(erase->operation(), "erase");

  v1::RecordProcessorStatusRequest callback;
  callback.set_processor_domain("OpenDSR.billing.test");
  callback.set_subject_request_id(opendsr::SubjectRequestId(
      created.id(), "billing", TaskOperation::kErase));
  callback.set_request_status("completed");
  callback.set_results_count(4);
  // Another processor's domain, another id, a malformed status: refused.
  v1::RecordProcessorStatusRequest stranger = callback;
  stranger.set_processor_domain("opendsr.other.test");
  EXPECT_EQ(coordinator_->RecordProcessorStatus(stranger).status().code(),
            absl::StatusCode::kNotFound);
  v1::RecordProcessorStatusRequest other_id = callback;
  other_id.set_subject_request_id(opendsr::SubjectRequestId(
      created.id(), "billing", TaskOperation::kExport));
  EXPECT_EQ(coordinator_->RecordProcessorStatus(other_id).status().code(),
            absl::StatusCode::kNotFound);
  v1::RecordProcessorStatusRequest shouting = callback;
  shouting.set_request_status("COMPLETED <b>");
  EXPECT_EQ(coordinator_->RecordProcessorStatus(shouting).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(coordinator_->TakeProcessorStatusHint(erase->task_id()));

  absl::StatusOr<v1::RecordProcessorStatusResponse> recorded =
      coordinator_->RecordProcessorStatus(callback);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(recorded->request_id(), created.id());
  EXPECT_EQ(recorded->store(), "billing");
  EXPECT_TRUE(coordinator_->TakeProcessorStatusHint(erase->task_id()));
  EXPECT_FALSE(coordinator_->TakeProcessorStatusHint(erase->task_id()));
  std::vector<v1::Event> events = AllEvents(created.id());
  auto found = std::find_if(events.begin(), events.end(), [](const auto& e) {
    return e.kind() == "processor_status";
  });
  ASSERT_NE(found, events.end());
  EXPECT_EQ(found->store(), "billing");
  EXPECT_THAT(found->detail(), HasSubstr("status=completed"));
  EXPECT_THAT(found->detail(), HasSubstr("results_count=4"));
}

// Executor groups (seed 001): g1 and g2 are erased in group order; when g2
// fails transiently, g1 runs again first, then g2's retry. A store outside
// the group is not run again.
TEST_F(CoordinatorTest, ATransientFailureRestartsTheGroupFromItsFirstStore) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
stores:
  - {name: g1, kind: jsonl, path: /nonexistent/g1, identity_fields: {email: email}, group: services}
  - {name: solo, kind: jsonl, path: /nonexistent/solo, identity_fields: {email: email}}
  - {name: g2, kind: jsonl, path: /nonexistent/g2, identity_fields: {email: email}, group: services}
)yaml",
                                                         dir_);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  inventory_ = std::make_shared<const Inventory>(std::move(*inventory));
  Start();
  v1::Request created = Create(NewCreate(v1::ERASURE));
  for (int i = 0; i < 3; ++i) {
    std::optional<v1::Task> discover = Poll("w1", {"g1", "g2", "solo"});
    ASSERT_TRUE(discover.has_value());
    ASSERT_EQ(discover->operation(), "discover");
    ASSERT_TRUE(Finish(*discover, "w1").ok());
  }
  // g2 waits for g1 (the group's order); solo runs alongside.
  std::optional<v1::Task> g1 = Poll("w1", {"g1", "g2"});
  ASSERT_TRUE(g1.has_value());
  ASSERT_EQ(g1->store(), "g1");
  EXPECT_FALSE(Poll("w1", {"g2"}, 10).has_value());
  std::optional<v1::Task> solo = Poll("w1", {"solo"});
  ASSERT_TRUE(solo.has_value());
  ASSERT_TRUE(Finish(*solo, "w1").ok());
  ASSERT_TRUE(Finish(*g1, "w1").ok());
  std::optional<v1::Task> g2 = Poll("w1", {"g2"});
  ASSERT_TRUE(g2.has_value());
  ASSERT_TRUE(Fail(*g2, "w1", g2->attempt()).ok());

  // The group restarts: g1 runs again before g2's retry.
  v1::Request restarted = Get(created.id());
  EXPECT_EQ(Step(restarted, "g2")->status(), v1::WAITING);
  EXPECT_EQ(Step(restarted, "solo")->status(), v1::SUCCEEDED);
  EXPECT_THAT(EventKinds(created.id()), Contains("group_restarted"));
  EXPECT_FALSE(Poll("w1", {"g2", "solo"}, 10).has_value());
  std::optional<v1::Task> g1_again = Poll("w1", {"g1"});
  ASSERT_TRUE(g1_again.has_value());
  EXPECT_EQ(g1_again->operation(), "erase");
  EXPECT_GT(g1_again->attempt(), g1->attempt());
  ASSERT_TRUE(Finish(*g1_again, "w1").ok());
  std::optional<v1::Task> g2_again = Poll("w1", {"g2"});
  ASSERT_TRUE(g2_again.has_value());
  ASSERT_TRUE(Finish(*g2_again, "w1").ok());
  EXPECT_EQ(WaitForStatus(created.id(), v1::COMPLETED).status(), v1::COMPLETED);
}

TEST_F(CoordinatorTest, AGroupRestartCountsAgainstTheRetryLimit) {
  absl::StatusOr<Inventory> inventory = Inventory::Parse(R"yaml(
stores:
  - {name: g1, kind: jsonl, path: /nonexistent/g1, identity_fields: {email: email}, group: services}
  - {name: g2, kind: jsonl, path: /nonexistent/g2, identity_fields: {email: email}, group: services}
)yaml",
                                                         dir_);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  inventory_ = std::make_shared<const Inventory>(std::move(*inventory));
  Start();
  v1::Request created = Create(NewCreate(v1::ERASURE));
  for (int i = 0; i < 2; ++i) {
    std::optional<v1::Task> discover = Poll("w1", {"g1", "g2"});
    ASSERT_TRUE(discover.has_value());
    ASSERT_TRUE(Finish(*discover, "w1").ok());
  }
  // g2 fails every time; each failure re-runs g1 first, until g2's retries
  // are spent and it fails for good.
  int g2_failures = 0;
  while (true) {
    std::optional<v1::Task> task = Poll("w1", {"g1", "g2"});
    if (!task.has_value()) break;
    if (task->store() == "g1") {
      ASSERT_TRUE(Finish(*task, "w1").ok());
    } else {
      ASSERT_TRUE(Fail(*task, "w1", task->attempt()).ok());
      ++g2_failures;
      ASSERT_LT(g2_failures, 50) << "the restarts do not end";
    }
  }
  v1::Request stopped = WaitForStatus(created.id(), v1::NEEDS_ATTENTION);
  EXPECT_EQ(Step(stopped, "g2")->status(), v1::STEP_FAILED);
  EXPECT_EQ(Step(stopped, "g1")->status(), v1::SUCCEEDED);
  EXPECT_GT(g2_failures, 1);
}

// A heartbeat refused because the task's request ended says so (the worker
// then withdraws work at an OpenDSR processor); one refused because another
// attempt holds the lease does not.
TEST_F(CoordinatorTest, HeartbeatRefusalSaysWhenTheRequestEnded) {
  v1::Request created = Create(NewCreate(v1::ACCESS, {"a"}));
  std::optional<v1::Task> task = Poll("w1", {"a"});
  ASSERT_TRUE(task.has_value());
  absl::Status stale = Heartbeat(*task, "w2", task->attempt()).status();
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(stale.GetPayload(Coordinator::kRequestEndedPayload).has_value());

  v1::CancelRequestRequest cancel;
  cancel.set_id(created.id());
  cancel.set_reason("withdrawn");
  ASSERT_TRUE(coordinator_->CancelRequest(cancel, "operator:test").ok());
  absl::Status ended = Heartbeat(*task, "w1", task->attempt()).status();
  EXPECT_EQ(ended.code(), absl::StatusCode::kFailedPrecondition);
  auto payload = ended.GetPayload(Coordinator::kRequestEndedPayload);
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(std::string(*payload), "CANCELLED");
}

// Scheduled audit scans (docs/audit-scan-runs.md) on the engine's clock:
// a run starts at the cron time and not before; after downtime the missed
// run starts once at start-up, and only once.
class AuditScheduleTest : public CoordinatorTest {
 protected:
  void StartScheduled() {
    std::ofstream(dir_ + "/masking.key") << std::string(40, 'k');
    absl::StatusOr<Inventory> inventory = Inventory::Parse(
        absl::StrCat("masking_key_file: masking.key\n", kInventoryYaml), dir_);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = std::make_shared<const Inventory>(std::move(*inventory));
    ASSERT_NO_FATAL_FAILURE(StartWith([this](Coordinator::Options& o) {
      o.clock = &clock_;
      o.audit_scan_schedule = "0 1 * * *";
      o.purge_interval = absl::ZeroDuration();  // Purges when asked only.
    }));
  }

  std::vector<v1::Request> Runs() {
    v1::ListRequestsRequest list;
    list.set_type(v1::AUDIT_SCAN);
    absl::StatusOr<v1::ListRequestsResponse> runs =
        coordinator_->ListRequests(list);
    EXPECT_TRUE(runs.ok()) << runs.status();
    return runs.ok() ? std::vector<v1::Request>(runs->requests().begin(),
                                                runs->requests().end())
                     : std::vector<v1::Request>();
  }

  static int64_t At(const std::string& rfc3339) {
    absl::Time time;
    std::string error;
    EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &time, &error));
    return absl::ToUnixMillis(time);
  }

  FakeClock clock_{At("2026-11-30T00:30:00Z")};
};

TEST_F(AuditScheduleTest, ARunStartsAtItsTimeAndAMissedOneOnceAtStart) {
  ASSERT_NO_FATAL_FAILURE(StartScheduled());
  EXPECT_THAT(Runs(), IsEmpty()) << "a first start has missed nothing";
  clock_.Set(At("2026-11-30T00:59:59Z"));
  ASSERT_TRUE(coordinator_->ListWorkers().ok());  // Wakes the loop.
  EXPECT_THAT(Runs(), IsEmpty());
  clock_.Set(At("2026-11-30T01:00:00Z"));
  ASSERT_TRUE(coordinator_->ListWorkers().ok());
  std::vector<v1::Request> runs = Runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].stores_size(), 3);
  std::vector<v1::Event> events = AllEvents(runs[0].id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().actor(), "dsard:schedule");
  // One run at a time: the manual one is refused while it has not ended.
  absl::StatusOr<v1::Request> manual = coordinator_->RunAuditScan("op");
  EXPECT_EQ(manual.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(manual.status().message(), HasSubstr(runs[0].id()));
  v1::CancelRequestRequest cancel;
  cancel.set_id(runs[0].id());
  cancel.set_reason("test");
  ASSERT_TRUE(coordinator_->CancelRequest(cancel).ok());

  // Down over the next day's 01:00: the missed run starts at start-up.
  coordinator_.reset();
  clock_.Set(At("2026-12-01T03:00:00Z"));
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_TRUE(coordinator_->ListWorkers().ok());  // Its first turn.
  EXPECT_EQ(Runs().size(), 2u);
  ASSERT_TRUE(coordinator_
                  ->CancelRequest([&] {
                    v1::CancelRequestRequest c;
                    c.set_id(Runs().back().id());
                    c.set_reason("test");
                    return c;
                  }())
                  .ok());
  // Restarted again before the next due time: nothing was missed.
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_TRUE(coordinator_->ListWorkers().ok());
  EXPECT_EQ(Runs().size(), 2u);
}

// A run's report lives 90 days: the purge destroys its findings with its
// data key, audited on the run, and the report then answers that it is
// gone. Other requests' retention is not shortened by it.
TEST_F(AuditScheduleTest, AReportOlderThan90DaysIsPurged) {
  ASSERT_NO_FATAL_FAILURE(StartScheduled());
  absl::StatusOr<v1::Request> run = coordinator_->RunAuditScan("op");
  ASSERT_TRUE(run.ok()) << run.status();
  v1::CancelRequestRequest cancel;
  cancel.set_id(run->id());
  cancel.set_reason("ended for the test");
  ASSERT_TRUE(coordinator_->CancelRequest(cancel).ok());
  v1::Request other = Create(NewCreate(v1::ACCESS, {"c"}));

  clock_.Advance(absl::ToInt64Milliseconds(absl::Hours(89 * 24)));
  v1::PurgeRequest purge;
  absl::StatusOr<v1::PurgeResponse> early = coordinator_->Purge(purge, "op");
  ASSERT_TRUE(early.ok());
  EXPECT_THAT(early->items(), IsEmpty());

  clock_.Advance(absl::ToInt64Milliseconds(absl::Hours(24)));
  absl::StatusOr<v1::PurgeResponse> purged = coordinator_->Purge(purge, "op");
  ASSERT_TRUE(purged.ok());
  ASSERT_EQ(purged->items_size(), 1) << purged->ShortDebugString();
  EXPECT_EQ(purged->items(0).request_id(), run->id());
  EXPECT_EQ(purged->items(0).what(), "audit_report");
  std::vector<v1::Event> events = AllEvents(run->id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind(), "personal_data_destroyed");
  EXPECT_THAT(events.back().detail(), HasSubstr("audit report retention"));
  v1::GetAuditReportRequest ask;
  ask.set_id(run->id());
  absl::StatusOr<v1::GetAuditReportResponse> report =
      coordinator_->GetAuditReport(ask);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(), HasSubstr("purged"));
  EXPECT_FALSE(Get(other.id()).has_personal_data_destroyed_at());
}

}  // namespace
}  // namespace dsar
