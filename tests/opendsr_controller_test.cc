// dsar as an OpenDSR processor, over the wire (docs/opendsr.md, "dsar as a
// processor"): dsard, a worker and dsar-gateway as processes, a SQLite
// store, and a test controller on loopback HTTPS that posts requests to the
// gateway's /opendsr/v1 endpoints with a bearer token and receives status
// callbacks. The requests complete, every answer and callback verifies
// against the processor's certificate from its discovery, and a controller
// reaches only its own requests.

#include <httplib.h>
#include <sqlite3.h>

#include <condition_variable>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/testing/gateway_process.h"
#include "gateway/testing/test_tokens.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "opendsr/signature.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"
#include "tests/testing/sqlite_exec.h"
#include "tests/testing/test_pki.h"

namespace dsar::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kDomain[] = "dsar.processor.test";
constexpr char kController[] = "controller-acme";

int64_t RowsOf(const std::string& path, const std::string& email) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM users WHERE email = ?", -1,
                     &stmt, nullptr);
  sqlite3_bind_text(stmt, 1, email.c_str(), -1, SQLITE_TRANSIENT);
  int64_t count =
      sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return count;
}

// The controller's callback endpoint: HTTPS on loopback, keeps every
// callback it receives.
class TestController {
 public:
  struct Callback {
    std::string body;
    std::string domain;
    std::string signature;
  };

  TestController(const IssuedCertificate& certificate)
      : server_(certificate.cert_file.c_str(), certificate.key_file.c_str()) {
    server_.Post("/opendsr/callbacks", [this](const httplib::Request& request,
                                              httplib::Response& response) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        callbacks_.push_back(
            {request.body,
             request.get_header_value(dsar::opendsr::kDomainHeader),
             request.get_header_value(dsar::opendsr::kSignatureHeader)});
      }
      changed_.notify_all();
      response.status = 204;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~TestController() {
    server_.stop();
    thread_.join();
  }

  std::string url() const {
    return absl::StrCat("https://127.0.0.1:", port_, "/opendsr/callbacks");
  }

  // Waits until a callback with `status` arrived for `subject_request_id`;
  // every callback received so far, or an empty vector after `timeout`.
  std::vector<Callback> WaitFor(const std::string& subject_request_id,
                                const std::string& status,
                                absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    bool arrived =
        changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
          for (const Callback& callback : callbacks_) {
            json body = json::parse(callback.body, nullptr, false);
            if (body.is_object() &&
                body.value("subject_request_id", "") == subject_request_id &&
                body.value("request_status", "") == status) {
              return true;
            }
          }
          return false;
        });
    return arrived ? callbacks_ : std::vector<Callback>();
  }

 private:
  httplib::SSLServer server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Callback> callbacks_;
};

class OpenDsrControllerTest : public ::testing::Test {
 protected:
  OpenDsrControllerTest() : dir_("dsar-opendsr-controller") {}

  void SetUp() override {
    absl::StatusOr<TestPki> pki = TestPki::Create(dir_.path());
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_.emplace(*std::move(pki));
    absl::StatusOr<IssuedCertificate> signing =
        pki_->Issue("processor", {kDomain});
    ASSERT_TRUE(signing.ok()) << signing.status();
    absl::StatusOr<IssuedCertificate> https =
        pki_->Issue("gateway-https", {"localhost"});
    ASSERT_TRUE(https.ok()) << https.status();
    absl::StatusOr<IssuedCertificate> controller_https =
        pki_->Issue("controller-https", {"localhost"});
    ASSERT_TRUE(controller_https.ok()) << controller_https.status();
    controller_ = std::make_unique<TestController>(*controller_https);

    users_db_ = dir_.Join("users.db");
    ASSERT_NO_FATAL_FAILURE(ExecSqlite(
        users_db_,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT);"
        "INSERT INTO users VALUES (1, 'ann@example.com', 'Ann');"
        "INSERT INTO users VALUES (2, 'bob@example.com', 'Bob');"));
    const std::string inventory = dir_.Join("inventory.yaml");
    std::ofstream(inventory) << R"yaml(controller: "Processor Ltd"
stores:
  - name: users
    kind: sqlite
    path: users.db
    purpose: "Accounts we keep for our controllers"
    tables:
      - name: users
        identity_fields: {email: email}
        pii_fields: {email: contact, name: identity}
)yaml";

    DsardOptions options;
    options.data_dir = dir_.Join("data");
    options.inventory = inventory;
    options.lease_seconds = 5;
    options.extra_args = {"--opendsr_processor_key=" + signing->key_file,
                          absl::StrCat("--opendsr_processor_domain=", kDomain),
                          "--opendsr_callback_ca=" + pki_->ca_file()};
    absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir_.path());
    ASSERT_TRUE(dsard.ok()) << dsard.status();
    dsard_ = std::move(*dsard);
    stub_ = v1::DsarService::NewStub(LoopbackChannel(dsard_.port));

    WorkerOptions worker;
    worker.coordinator_port = dsard_.port;
    worker.inventory = inventory;
    worker.worker_id = "worker-1";
    worker.poll_wait_ms = 200;
    absl::StatusOr<std::unique_ptr<Process>> started =
        StartWorker(worker, dir_.path());
    ASSERT_TRUE(started.ok()) << started.status();
    worker_ = std::move(*started);

    const int port = ReserveLoopbackPort();
    ASSERT_GT(port, 0);
    base_url_ = absl::StrCat("https://127.0.0.1:", port);
    const std::string secret_file = dir_.Join("jwt.secret");
    std::ofstream(secret_file) << keys_.hs256_secret();
    absl::StatusOr<gateway::testing::RunningGateway> gateway =
        gateway::testing::StartGateway(
            DSAR_TEST_GATEWAY_PATH, dsard_.port,
            {absl::StrCat("--listen=127.0.0.1:", port),
             "--tls_cert=" + https->cert_file, "--tls_key=" + https->key_file,
             "--jwt_hs256_secret_file=" + secret_file,
             "--issuer=https://issuer.test", "--audience=dsar-gateway",
             "--opendsr_processor_cert=" + signing->cert_file,
             "--opendsr_processor_key=" + signing->key_file,
             absl::StrCat("--opendsr_processor_domain=", kDomain),
             "--opendsr_public_url=" + base_url_,
             "--opendsr_callback_hosts=127.0.0.1"},
            dir_.path());
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = std::move(gateway->process);
    http_ = std::make_unique<httplib::Client>(base_url_);
    http_->set_ca_cert_path(pki_->ca_file());
    http_->enable_server_certificate_verification(true);
    http_->set_read_timeout(30, 0);

    // The controller trusts what discovery points at, once it checked it.
    httplib::Result discovery = http_->Get("/opendsr/v1/discovery");
    ASSERT_TRUE(discovery) << httplib::to_string(discovery.error());
    ASSERT_EQ(discovery->status, 200) << discovery->body;
    const std::string certificate_url =
        json::parse(discovery->body)["processor_certificate"];
    ASSERT_EQ(certificate_url,
              base_url_ + "/opendsr/v1/processor-certificate.pem");
    httplib::Result pem = http_->Get("/opendsr/v1/processor-certificate.pem");
    ASSERT_TRUE(pem && pem->status == 200);
    absl::StatusOr<dsar::opendsr::ProcessorCertificate> certificate =
        dsar::opendsr::ProcessorCertificate::Verify(pem->body, pki_->ca_file(),
                                                    kDomain);
    ASSERT_TRUE(certificate.ok()) << certificate.status();
    certificate_.emplace(*std::move(certificate));
    ExpectSigned(discovery->body,
                 discovery->get_header_value(dsar::opendsr::kSignatureHeader),
                 discovery->get_header_value(dsar::opendsr::kDomainHeader));
  }

  void TearDown() override {
    if (HasFailure()) {
      for (Process* process :
           {dsard_.process.get(), worker_.get(), gateway_.get()}) {
        if (process != nullptr) {
          std::cerr << "--- " << process->log_path() << "\n"
                    << ReadFileOrEmpty(process->log_path());
        }
      }
    }
  }

  void ExpectSigned(const std::string& body, const std::string& signature,
                    const std::string& domain) {
    EXPECT_EQ(domain, kDomain);
    EXPECT_TRUE(certificate_->CheckSignature(body, signature).ok()) << body;
  }

  std::string Token(const std::string& subject,
                    const std::string& scope = "opendsr.controller") {
    return keys_.Mint("HS256", "",
                      gateway::testing::ValidClaims(subject, scope));
  }

  httplib::Result Send(const std::string& method, const std::string& path,
                       const std::string& token, const std::string& body = "") {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    if (method == "POST") {
      return http_->Post(path, headers, body, "application/json");
    }
    if (method == "DELETE") return http_->Delete(path, headers);
    return http_->Get(path, headers);
  }

  json CreateBody(const std::string& id, const std::string& type) {
    return {{"subject_request_id", id},
            {"subject_request_type", type},
            {"regulation", "gdpr"},
            {"submitted_time", "2026-11-20T10:00:00Z"},
            {"api_version", "2.0"},
            {"subject_identities",
             json::array({{{"identity_type", "email"},
                           {"identity_value", "ann@example.com"},
                           {"identity_format", "raw"}}})},
            {"status_callback_urls", json::array({controller_->url()})}};
  }

  // Every callback about `id` verifies, names this controller and the URL
  // it was sent to; returns their statuses in order.
  std::vector<std::string> CheckCallbacks(
      const std::vector<TestController::Callback>& callbacks,
      const std::string& id) {
    std::vector<std::string> statuses;
    for (const TestController::Callback& callback : callbacks) {
      json body = json::parse(callback.body);
      if (body["subject_request_id"] != id) continue;
      ExpectSigned(callback.body, callback.signature, callback.domain);
      EXPECT_EQ(body["controller_id"], kController);
      EXPECT_EQ(body["status_callback_url"], controller_->url());
      statuses.push_back(body["request_status"]);
    }
    return statuses;
  }

  TempDir dir_;
  std::optional<TestPki> pki_;
  gateway::testing::TestKeys keys_;
  std::unique_ptr<TestController> controller_;
  std::string users_db_;
  RunningDsard dsard_;
  std::unique_ptr<v1::DsarService::Stub> stub_;
  std::unique_ptr<Process> worker_;
  std::unique_ptr<Process> gateway_;
  std::string base_url_;
  std::unique_ptr<httplib::Client> http_;
  std::optional<dsar::opendsr::ProcessorCertificate> certificate_;
};

TEST_F(OpenDsrControllerTest,
       AnErasureFromAControllerCompletesWithSignedCallbacks) {
  const std::string id = "0b8f2a57-3c1d-4e6f-9a2b-5d7c8e9f0a1b";
  const std::string body = CreateBody(id, "erasure").dump();
  httplib::Result created =
      Send("POST", "/opendsr/v1/requests", Token(kController), body);
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  ExpectSigned(created->body,
               created->get_header_value(dsar::opendsr::kSignatureHeader),
               created->get_header_value(dsar::opendsr::kDomainHeader));
  EXPECT_EQ(json::parse(created->body)["subject_request_id"], id);

  std::vector<TestController::Callback> callbacks =
      controller_->WaitFor(id, "completed", absl::Seconds(90));
  ASSERT_FALSE(callbacks.empty()) << "no completed callback";
  std::vector<std::string> statuses = CheckCallbacks(callbacks, id);
  EXPECT_EQ(statuses.back(), "completed");
  EXPECT_EQ(RowsOf(users_db_, "ann@example.com"), 0);
  EXPECT_EQ(RowsOf(users_db_, "bob@example.com"), 1);

  httplib::Result status =
      Send("GET", "/opendsr/v1/requests/" + id, Token(kController));
  ASSERT_TRUE(status);
  ASSERT_EQ(status->status, 200) << status->body;
  ExpectSigned(status->body,
               status->get_header_value(dsar::opendsr::kSignatureHeader),
               status->get_header_value(dsar::opendsr::kDomainHeader));
  json answer = json::parse(status->body);
  EXPECT_EQ(answer["request_status"], "completed");
  EXPECT_GE(answer["results_count"].get<int64_t>(), 1);

  // The same POST again finds the same request: still one in dsard.
  httplib::Result again =
      Send("POST", "/opendsr/v1/requests", Token(kController), body);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 201) << again->body;
  absl::StatusOr<std::vector<v1::Request>> all = ListAllRequests(*stub_);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].opendsr_origin().controller_id(), kController);
  EXPECT_EQ((*all)[0].verification().method(), "opendsr_controller");

  // Another controller does not see it; too late to cancel it.
  httplib::Result other =
      Send("GET", "/opendsr/v1/requests/" + id, Token("controller-other"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
  httplib::Result cancel =
      Send("DELETE", "/opendsr/v1/requests/" + id, Token(kController));
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->status, 400);
  EXPECT_THAT(cancel->body, HasSubstr("already completed"));
}

TEST_F(OpenDsrControllerTest, AnAccessResultIsDownloadableFromItsResultsUrl) {
  const std::string id = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
  httplib::Result created =
      Send("POST", "/opendsr/v1/requests", Token(kController),
           CreateBody(id, "access").dump());
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  ASSERT_FALSE(
      controller_->WaitFor(id, "completed", absl::Seconds(90)).empty());
  httplib::Result status =
      Send("GET", "/opendsr/v1/requests/" + id, Token(kController));
  ASSERT_TRUE(status && status->status == 200);
  const std::string results_url = json::parse(status->body)["results_url"];
  ASSERT_THAT(results_url, ::testing::StartsWith(base_url_ + "/v1/downloads/"));
  httplib::Result bundle = http_->Get(results_url.substr(base_url_.size()));
  ASSERT_TRUE(bundle);
  EXPECT_EQ(bundle->status, 200);
  EXPECT_EQ(bundle->body.substr(0, 2), "PK");  // A ZIP.
  EXPECT_EQ(RowsOf(users_db_, "ann@example.com"),
            1);  // Access changes nothing.
}

TEST_F(OpenDsrControllerTest, RefusalsNameTheirReasonAndChangeNothing) {
  const std::string id = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
  const std::string body = CreateBody(id, "erasure").dump();
  httplib::Result no_token = Send("POST", "/opendsr/v1/requests", "", body);
  ASSERT_TRUE(no_token);
  EXPECT_EQ(no_token->status, 401);
  httplib::Result no_scope = Send("POST", "/opendsr/v1/requests",
                                  Token(kController, "dsar.read"), body);
  ASSERT_TRUE(no_scope);
  EXPECT_EQ(no_scope->status, 403);
  json elsewhere = CreateBody(id, "erasure");
  elsewhere["status_callback_urls"] = json::array({"https://10.0.0.1/cb"});
  httplib::Result refused = Send("POST", "/opendsr/v1/requests",
                                 Token(kController), elsewhere.dump());
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_THAT(refused->body, HasSubstr("status_callback_urls[0]"));
  absl::StatusOr<std::vector<v1::Request>> all = ListAllRequests(*stub_);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all->empty());
  EXPECT_EQ(RowsOf(users_db_, "ann@example.com"), 1);
}

}  // namespace
}  // namespace dsar::testing
