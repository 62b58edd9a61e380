// OpenDSR services over the wire (docs/opendsr.md): dsard, dsar-worker and
// dsar-gateway as processes, a SQLite store and two test OpenDSR processors
// (tests/testing/opendsr_processor.h) on loopback HTTPS. An access request
// completes with every store's records in the bundle; an erasure that one
// service denies stops with the denial named in that store's step; with
// status callbacks through the gateway, a worker whose poll interval is an
// hour finishes as soon as the processors call back.

#include <sqlite3.h>

#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/testing/gateway_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/task_operation.h"
#include "nlohmann/json.hpp"
#include "opendsr/processor.h"
#include "tests/bundle_download.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"
#include "tests/testing/opendsr_processor.h"
#include "tests/testing/test_pki.h"
#include "tests/zip_entries.h"

namespace dsar::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kEmail[] = "ann@example.com";

// users.db with one table; `ann` has one row, someone else another.
void MakeUsersDatabase(const std::string& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(
      db,
      "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT);"
      "INSERT INTO users VALUES (1, 'ann@example.com', 'Ann');"
      "INSERT INTO users VALUES (2, 'bob@example.com', 'Bob');",
      nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

int64_t UserRows(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM users", -1, &stmt, nullptr);
  int64_t count =
      sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return count;
}

class OpenDsrServicesTest : public ::testing::Test {
 protected:
  OpenDsrServicesTest() : dir_("dsar-opendsr") {}

  // With callbacks: the processors finish on their own and call the
  // gateway back; the worker polls them only once an hour.
  bool callbacks_ = false;
  // support accepts erasures but answers its first POST with a 503, so the
  // group (billing, then support) restarts from billing.
  bool support_fails_once_ = false;
  // billing keeps every request "pending"; billing_polled_ is fulfilled at
  // its first status poll.
  bool billing_never_finishes_ = false;
  std::shared_ptr<std::promise<void>> billing_polled_ =
      std::make_shared<std::promise<void>>();

  void SetUp() override {
    absl::StatusOr<TestPki> pki = TestPki::Create(dir_.path());
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_.emplace(*std::move(pki));
    ASSERT_NO_FATAL_FAILURE(MakeUsersDatabase(dir_.Join("users.db")));

    // billing: slow (three polls), refuses the first POST with a 503.
    OpenDsrProcessor::Options billing;
    billing.domain = "opendsr.billing.test";
    billing.polls_before_completion = 3;
    billing.fail_first_post = true;
    billing.records[kEmail] = {{{"invoice", "INV-1"}, {"amount", 12}},
                               {{"invoice", "INV-2"}, {"amount", 30}}};
    // support: quick, and denies erasures with a reason.
    OpenDsrProcessor::Options support;
    support.domain = "opendsr.support.test";
    support.polls_before_completion = 1;
    support.deny_erasure = OpenDsrProcessor::Denial::kAsStatus;
    support.deny_reason = "open dispute: tickets kept until it is settled";
    support.records[kEmail] = {{{"ticket", "T-9"}, {"subject", "refund"}}};
    if (billing_never_finishes_) {
      billing.fail_first_post = false;
      billing.polls_before_completion = 1 << 30;
      billing.report_in_progress = false;
      auto polled = billing_polled_;
      auto once = std::make_shared<std::once_flag>();
      billing.on_status_poll = [polled, once](const std::string&, int) {
        std::call_once(*once, [&] { polled->set_value(); });
      };
    }
    if (support_fails_once_) {
      support.deny_erasure = OpenDsrProcessor::Denial::kNone;
      support.fail_first_post = true;
    }
    int gateway_port = 0;
    std::string callback_url;
    if (callbacks_) {
      gateway_port = ReserveLoopbackPort();
      ASSERT_GT(gateway_port, 0);
      callback_url = absl::StrCat("https://127.0.0.1:", gateway_port,
                                  "/opendsr/v1/callbacks");
      for (auto* options : {&billing, &support}) {
        options->complete_in_background = true;
        options->callback_ca_file = pki_->ca_file();
      }
    }
    for (auto* options : {&billing, &support}) {
      absl::StatusOr<std::unique_ptr<OpenDsrProcessor>> processor =
          OpenDsrProcessor::Start(*options, *pki_, dir_.path());
      ASSERT_TRUE(processor.ok()) << processor.status();
      processors_[options == &billing ? "billing" : "support"] =
          *std::move(processor);
    }

    std::string yaml = R"yaml(controller: "Example Ltd"
stores:
  - name: users
    kind: sqlite
    path: users.db
    purpose: "Accounts"
    tables:
      - name: users
        identity_fields: {email: email}
        pii_fields: {email: contact, name: identity}
)yaml";
    for (const auto& [name, processor] : processors_) {
      absl::StrAppend(&yaml, "  - name: ", name, R"(
    kind: opendsr
    purpose: "Outsourced )",
                      name, R"("
    group: services
    identity_fields: {email: email}
    opendsr:
      url: )",
                      processor->base_url(), R"(
      processor_domain: opendsr.)",
                      name, R"(.test
      signing_ca: )",
                      pki_->ca_file(), R"(
      tls_ca: )",
                      pki_->ca_file(), R"(
      poll_interval_ms: )",
                      callbacks_ ? 3600 * 1000 : 50, "\n");
      if (callbacks_) {
        absl::StrAppend(&yaml, "      status_callback_url: ", callback_url,
                        "\n");
      }
    }
    inventory_ = dir_.Join("inventory.yaml");
    ASSERT_TRUE(WriteFileForTest(inventory_, yaml));

    DsardOptions options;
    options.data_dir = dir_.Join("data");
    options.inventory = inventory_;
    options.lease_seconds = 5;
    absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir_.path());
    ASSERT_TRUE(dsard.ok()) << dsard.status();
    dsard_ = std::move(*dsard);
    stub_ = v1::DsarService::NewStub(LoopbackChannel(dsard_.port));

    WorkerOptions worker;
    worker.coordinator_port = dsard_.port;
    worker.inventory = inventory_;
    worker.worker_id = "worker-1";
    worker.poll_wait_ms = 200;
    absl::StatusOr<std::unique_ptr<Process>> started =
        StartWorker(worker, dir_.path());
    ASSERT_TRUE(started.ok()) << started.status();
    worker_ = std::move(*started);

    if (callbacks_) {
      // The gateway serves HTTPS with a certificate of the test CA, which
      // the processors trust for callbacks.
      absl::StatusOr<IssuedCertificate> https =
          pki_->Issue("gateway-https", {"localhost"});
      ASSERT_TRUE(https.ok()) << https.status();
      ASSERT_TRUE(WriteFileForTest(dir_.Join("hs256.secret"),
                                   "not used: callbacks carry signatures"));
      absl::StatusOr<gateway::testing::RunningGateway> gateway =
          gateway::testing::StartGateway(
              DSAR_TEST_GATEWAY_PATH, dsard_.port,
              {absl::StrCat("--listen=127.0.0.1:", gateway_port),
               absl::StrCat("--tls_cert=", https->cert_file),
               absl::StrCat("--tls_key=", https->key_file),
               absl::StrCat("--jwt_hs256_secret_file=",
                            dir_.Join("hs256.secret")),
               absl::StrCat("--opendsr_inventory=", inventory_)},
              dir_.path());
      ASSERT_TRUE(gateway.ok()) << gateway.status();
      gateway_ = std::move(gateway->process);
    }
  }

  void TearDown() override {
    if (HasFailure()) {
      if (dsard_.process != nullptr) {
        std::cerr << "--- dsard\n"
                  << ReadFileOrEmpty(dsard_.process->log_path());
      }
      if (worker_ != nullptr) {
        std::cerr << "--- worker\n" << ReadFileOrEmpty(worker_->log_path());
      }
      if (gateway_ != nullptr) {
        std::cerr << "--- gateway\n" << ReadFileOrEmpty(gateway_->log_path());
      }
    }
  }

  static bool WriteFileForTest(const std::string& path,
                               const std::string& text) {
    FILE* file = fopen(path.c_str(), "w");
    if (file == nullptr) return false;
    bool ok = fwrite(text.data(), 1, text.size(), file) == text.size();
    return fclose(file) == 0 && ok;
  }

  std::string Submit(v1::RequestType type, const std::string& key) {
    v1::CreateRequestRequest request = RequestForEmail(type, kEmail, key);
    request.mutable_verified()->set_method("logged_in_session");
    request.mutable_verified()->set_evidence_ref("session-test");
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::Request created;
    grpc::Status status = stub_->CreateRequest(&context, request, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return created.id();
  }

  v1::Request WaitUntilStopped(const std::string& id) {
    absl::StatusOr<v1::Request> request = WaitForRequest(
        *stub_, id, "stopped",
        [](const v1::Request& request) {
          return IsTerminal(request.status()) ||
                 request.status() == v1::NEEDS_ATTENTION;
        },
        absl::Seconds(90));
    EXPECT_TRUE(request.ok()) << request.status();
    return request.ok() ? *request : v1::Request();
  }

  TempDir dir_;
  std::optional<TestPki> pki_;
  std::map<std::string, std::unique_ptr<OpenDsrProcessor>> processors_;
  std::string inventory_;
  RunningDsard dsard_;
  std::unique_ptr<v1::DsarService::Stub> stub_;
  std::unique_ptr<Process> worker_;
  std::unique_ptr<Process> gateway_;
};

TEST_F(OpenDsrServicesTest, AccessBundlesTheRecordsOfEveryStore) {
  const std::string id = Submit(v1::ACCESS, "access-1");
  v1::Request done = WaitUntilStopped(id);
  ASSERT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString();

  absl::StatusOr<std::string> zip = DownloadBundleBytes(*stub_, id);
  ASSERT_TRUE(zip.ok()) << zip.status();
  absl::StatusOr<std::map<std::string, std::string>> entries =
      ReadZipBytes(*zip);
  ASSERT_TRUE(entries.ok()) << entries.status();
  std::map<std::string, std::vector<std::string>> expected = {
      {"users", {"Ann"}},
      {"billing", {"INV-1", "INV-2"}},
      {"support", {"T-9"}}};
  for (const auto& [store, values] : expected) {
    const std::string name = absl::StrCat("data/", store, ".json");
    ASSERT_TRUE(entries->count(name)) << name << " missing from the bundle";
    json data = json::parse((*entries)[name], nullptr, false);
    ASSERT_TRUE(data.is_object()) << (*entries)[name];
    ASSERT_EQ(data["records"].size(), values.size()) << data.dump();
    for (const std::string& value : values) {
      EXPECT_THAT(data.dump(), HasSubstr(value)) << store;
    }
  }
  // billing's first POST met a 503: the retried task made one request.
  EXPECT_EQ(processors_["billing"]->requests_created(), 1);
  EXPECT_EQ(processors_["billing"]->posts(), 2);
  EXPECT_EQ(processors_["billing"]->last_request()["regulation"], "gdpr");
}

TEST_F(OpenDsrServicesTest, DeniedErasureIsNamedInTheOutcome) {
  const std::string id = Submit(v1::ERASURE, "erase-1");
  v1::Request stopped = WaitUntilStopped(id);
  ASSERT_EQ(stopped.status(), v1::NEEDS_ATTENTION)
      << stopped.ShortDebugString();
  const v1::StoreStep* denied = nullptr;
  for (const v1::StoreStep& step : stopped.steps()) {
    if (step.map_state() == "EraseStores" && step.store() == "support") {
      denied = &step;
    }
  }
  ASSERT_NE(denied, nullptr) << stopped.ShortDebugString();
  EXPECT_EQ(denied->error(), "Connector.Denied");
  EXPECT_THAT(denied->cause(),
              HasSubstr("open dispute: tickets kept until it is settled"));
  EXPECT_THAT(stopped.cause(), HasSubstr("support"));
  // The other stores did their part.
  EXPECT_EQ(UserRows(dir_.Join("users.db")), 1);
  for (const v1::StoreStep& step : stopped.steps()) {
    if (step.map_state() == "EraseStores" && step.store() != "support") {
      EXPECT_EQ(step.status(), v1::SUCCEEDED) << step.ShortDebugString();
    }
  }
  EXPECT_EQ(processors_["billing"]->last_request()["subject_request_type"],
            "erasure");
}

class OpenDsrCallbacksTest : public OpenDsrServicesTest {
 protected:
  OpenDsrCallbacksTest() { callbacks_ = true; }
};

TEST_F(OpenDsrCallbacksTest, CallbacksEndTheWorkersWaitEarly) {
  // The worker polls each processor once, sees "pending" and would wait an
  // hour: only the callbacks (processor -> gateway -> dsard -> heartbeat)
  // can finish this request within the test's time.
  const std::string id = Submit(v1::ACCESS, "access-callbacks");
  v1::Request done = WaitUntilStopped(id);
  ASSERT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString();
  for (const std::string store : {"billing", "support"}) {
    EXPECT_THAT(processors_[store]->callback_answers(),
                ::testing::Contains(202))
        << store;
  }
  absl::StatusOr<std::vector<v1::Event>> events = ListAllEvents(*stub_, id);
  ASSERT_TRUE(events.ok()) << events.status();
  std::set<std::string> called_back;
  for (const v1::Event& event : *events) {
    if (event.kind() == "processor_status") {
      EXPECT_THAT(event.detail(), HasSubstr("status=completed"));
      called_back.insert(event.store());
    }
  }
  EXPECT_EQ(called_back, (std::set<std::string>{"billing", "support"}));
  absl::StatusOr<std::string> zip = DownloadBundleBytes(*stub_, id);
  ASSERT_TRUE(zip.ok()) << zip.status();
  absl::StatusOr<std::map<std::string, std::string>> entries =
      ReadZipBytes(*zip);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_THAT((*entries)["data/billing.json"], HasSubstr("INV-2"));
  EXPECT_THAT((*entries)["data/support.json"], HasSubstr("T-9"));
}

class OpenDsrGroupTest : public OpenDsrServicesTest {
 protected:
  OpenDsrGroupTest() { support_fails_once_ = true; }
};

TEST_F(OpenDsrGroupTest, AFailureInTheGroupRestartsItFromItsFirstService) {
  // billing and support are the executor group "services", in that order.
  // support's first POST fails (503): billing is asked again first, and
  // re-attaches to the erasure it already made; then support's retry.
  const std::string id = Submit(v1::ERASURE, "erase-group");
  v1::Request done = WaitUntilStopped(id);
  ASSERT_EQ(done.status(), v1::COMPLETED) << done.ShortDebugString();
  absl::StatusOr<std::vector<v1::Event>> events = ListAllEvents(*stub_, id);
  ASSERT_TRUE(events.ok()) << events.status();
  std::vector<std::string> erase_order;
  bool restarted = false;
  for (const v1::Event& event : *events) {
    if (event.kind() == "group_restarted") {
      restarted = true;
      EXPECT_EQ(event.store(), "support");
      EXPECT_THAT(event.detail(), HasSubstr("group=services stores=billing"));
    }
    if (event.kind() == "task_completed" && event.state() != "" &&
        (event.store() == "billing" || event.store() == "support") &&
        event.state().find("Erase") != std::string::npos) {
      erase_order.push_back(event.store());
    }
  }
  EXPECT_TRUE(restarted);
  EXPECT_EQ(erase_order,
            (std::vector<std::string>{"billing", "billing", "support"}));
  // Idempotency: billing saw its erasure twice but made it once.
  EXPECT_EQ(processors_["billing"]->requests_created(), 1);
  EXPECT_EQ(processors_["support"]->requests_created(), 1);
  EXPECT_EQ(UserRows(dir_.Join("users.db")), 1);
}

class OpenDsrCancelTest : public OpenDsrServicesTest {
 protected:
  OpenDsrCancelTest() { billing_never_finishes_ = true; }
};

TEST_F(OpenDsrCancelTest,
       CancellingTheRequestWithdrawsThePendingProcessorRequest) {
  const std::string id = Submit(v1::ACCESS, "access-cancel");
  // The worker has made billing's request and polls it.
  ASSERT_EQ(billing_polled_->get_future().wait_for(std::chrono::seconds(60)),
            std::future_status::ready);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::CancelRequestRequest cancel;
  cancel.set_id(id);
  cancel.set_reason("withdrawn by the subject");
  v1::Request cancelled;
  grpc::Status status = stub_->CancelRequest(&context, cancel, &cancelled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // The worker's next heartbeat is refused (the request ended): it sends
  // DELETE for the processor request, which is still pending.
  const std::string processor_id =
      opendsr::SubjectRequestId(id, "billing", TaskOperation::kExport);
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (processors_["billing"]->deletes().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));  // Polling a condition.
  }
  EXPECT_THAT(processors_["billing"]->deletes(),
              ::testing::ElementsAre(processor_id));
  EXPECT_EQ(processors_["billing"]->status_of(processor_id), "cancelled");
}

}  // namespace
}  // namespace dsar::testing
