// The gateway over the wire: real dsard, dsar-worker and dsar-gateway on
// loopback, driven with an HTTP client. Every route family, every error
// class and every authentication failure is shown with its status code; a
// test-only annotated service (testdata/echo.proto) gets REST routes with no
// gateway code; the gateway stays up while the coordinator is down.

#include <httplib.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/sha256.h"
#include "gateway/testing/gateway_process.h"
#include "gateway/testing/test_tokens.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::gateway {
namespace {

using dsar::testing::Process;
using dsar::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::TestKeys;
using testing::ValidClaims;

constexpr char kIssuer[] = "https://issuer.test";
constexpr char kAudience[] = "dsar-gateway";
constexpr size_t kMaxBody = 16 * 1024;
constexpr char kAllScopes[] = "dsar.submit dsar.read dsar.admin";

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

// One HTTP exchange's outcome; status 0 when there was no answer.
struct Reply {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  nlohmann::json json;  // Parsed body (discarded when not JSON).

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class Http {
 public:
  explicit Http(int port) : client_("127.0.0.1", port) {
    client_.set_connection_timeout(5);
    client_.set_read_timeout(30);
  }

  Reply Get(const std::string& path, const std::string& token) {
    return Done(client_.Get(path.c_str(), Auth(token)));
  }
  Reply Post(const std::string& path, const std::string& token,
             const std::string& body,
             const std::string& content_type = "application/json",
             httplib::Headers extra = {}) {
    httplib::Headers headers = Auth(token);
    headers.insert(extra.begin(), extra.end());
    return Done(
        client_.Post(path.c_str(), headers, body, content_type.c_str()));
  }
  Reply Delete(const std::string& path, const std::string& token) {
    return Done(client_.Delete(path.c_str(), Auth(token)));
  }

 private:
  static httplib::Headers Auth(const std::string& token) {
    if (token.empty()) return {};
    return {{"Authorization", absl::StrCat("Bearer ", token)}};
  }
  static Reply Done(const httplib::Result& result) {
    Reply reply;
    if (!result) return reply;
    reply.status = result->status;
    reply.body = result->body;
    reply.headers = result->headers;
    reply.json = nlohmann::json::parse(result->body, nullptr, false);
    return reply;
  }

  httplib::Client client_;
};

// The field of the first google.rpc.BadRequest violation, or "".
std::string ViolationField(const Reply& reply) {
  if (!reply.json.is_object() || !reply.json.contains("details")) return "";
  return reply.json["details"][0]["fieldViolations"][0].value("field", "");
}

class GatewayClusterTest : public ::testing::Test {
 protected:
  GatewayClusterTest() : dir_("gateway-test") {}

  void SetUp() override {
    keys_ = std::make_unique<TestKeys>();
    WriteFile(dir_.Join("hs256.secret"), keys_->hs256_secret());
    WriteFile(dir_.Join("jwks.json"), keys_->JwksJson());
    absl::StatusOr<std::string> inventory =
        dsar::testing::GenerateSampleStores(dir_.Join("stores"), 30);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = *inventory;
    StartCoordinator(0);
    absl::StatusOr<testing::RunningGateway> gateway = testing::StartGateway(
        DSAR_TEST_GATEWAY_PATH, dsard_port_, GatewayArgs(), dir_.path());
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = std::move(gateway->process);
    http_ = std::make_unique<Http>(gateway->port);
  }

  std::vector<std::string> GatewayArgs() const {
    return {absl::StrCat("--jwt_hs256_secret_file=", dir_.Join("hs256.secret")),
            absl::StrCat("--jwks_file=", dir_.Join("jwks.json")),
            absl::StrCat("--issuer=", kIssuer),
            absl::StrCat("--audience=", kAudience),
            absl::StrCat("--max_body_bytes=", kMaxBody),
            "--backend_timeout_ms=5000"};
  }

  void StartCoordinator(int port) {
    dsar::testing::DsardOptions options;
    options.data_dir = dir_.Join("data");
    options.inventory = inventory_;
    options.port = port;
    // Unattested requests wait for the subject's one-time code, as in
    // production: the gateway decides which requests count as verified.
    options.extra_args = {"--verify_unattested=true",
                          absl::StrCat("--listen_unix=", SocketPath())};
    absl::StatusOr<dsar::testing::RunningDsard> dsard =
        dsar::testing::StartDsard(options, dir_.path());
    ASSERT_TRUE(dsard.ok()) << dsard.status();
    dsard_ = std::move(dsard->process);
    dsard_port_ = dsard->port;
  }

  // dsard's Unix socket, beside its TCP port.
  std::string SocketPath() const { return dir_.Join("dsard.sock"); }

  void StartWorker() {
    dsar::testing::WorkerOptions options;
    options.coordinator_port = dsard_port_;
    options.inventory = inventory_;
    options.worker_id = "worker-1";
    options.poll_wait_ms = 200;
    absl::StatusOr<std::unique_ptr<Process>> worker =
        dsar::testing::StartWorker(options, dir_.path());
    ASSERT_TRUE(worker.ok()) << worker.status();
    worker_ = *std::move(worker);
  }

  // An operator's or back-end service's token: `scope` plus dsar.service,
  // which reaches every request (docs/gateway.md, "Who sees what").
  std::string Token(const std::string& scope, const std::string& alg = "RS256",
                    const std::string& subject = "alice") {
    std::string kid = alg == "RS256" ? "rsa-1" : alg == "ES256" ? "ec-1" : "";
    return keys_->Mint(
        alg, kid,
        ValidClaims(subject, absl::StrCat(scope, " dsar.service"), kIssuer,
                    kAudience));
  }

  // A data subject's token: no dsar.admin or dsar.service, an `email` claim
  // and `email_verified` as given (omitted when null).
  std::string SubjectToken(const std::string& email,
                           const nlohmann::json& email_verified,
                           const std::string& scope = "dsar.read dsar.submit") {
    nlohmann::json claims =
        ValidClaims(absl::StrCat("subject-", email), scope, kIssuer, kAudience);
    claims["email"] = email;
    if (!email_verified.is_null()) claims["email_verified"] = email_verified;
    return keys_->Mint("ES256", "ec-1", claims);
  }

  // Creates an unattested ACCESS request for `email` with a service token;
  // it waits in VERIFYING. Returns its id ("" on failure).
  std::string CreateFor(const std::string& email) {
    Reply created = http_->Post(
        "/v1/requests", Token("dsar.submit"),
        absl::StrCat(R"({"type":"ACCESS","identities":[{"type":"EMAIL",)",
                     R"("value":")", email, R"("}]})"));
    EXPECT_EQ(created.status, 200) << created.body;
    return created.json.is_object() ? created.json.value("id", "") : "";
  }

  // The ids of the requests GET /v1/requests lists for `token`.
  std::set<std::string> ListedIds(const std::string& token) {
    Reply listed = http_->Get("/v1/requests?pageSize=1000", token);
    EXPECT_EQ(listed.status, 200) << listed.body;
    std::set<std::string> ids;
    if (listed.json.is_object() && listed.json.contains("requests")) {
      for (const nlohmann::json& request : listed.json["requests"]) {
        ids.insert(request["id"].get<std::string>());
      }
    }
    return ids;
  }

  // Polls GET /v1/requests/{id} until the request is terminal.
  nlohmann::json WaitTerminal(const std::string& id) {
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    Reply reply;
    while (absl::Now() < deadline) {
      reply = http_->Get(absl::StrCat("/v1/requests/", id), Token("dsar.read"));
      std::string status =
          reply.json.is_object() ? reply.json.value("status", "") : "";
      if (status == "COMPLETED" || status == "FAILED" ||
          status == "CANCELLED") {
        return reply.json;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    ADD_FAILURE() << "request " << id << " not terminal: " << reply.body;
    return reply.json;
  }

  TempDir dir_;
  std::unique_ptr<TestKeys> keys_;
  std::string inventory_;
  std::unique_ptr<Process> dsard_;
  int dsard_port_ = 0;
  std::unique_ptr<Process> worker_;
  std::unique_ptr<Process> gateway_;
  std::unique_ptr<Http> http_;
};

constexpr char kAccessBody[] =
    R"({"type":"ACCESS","identities":[{"type":"EMAIL","value":"person3@example.com"}],)"
    R"("stores":["accounts"],"idempotencyKey":"gw-access-1",)"
    R"("verified":{"method":"logged_in_session","evidenceRef":"test"}})";

TEST_F(GatewayClusterTest, TranscodedRoutesServeTheWholeApi) {
  StartWorker();
  // Attesting verification (the "verified" field) takes dsar.admin too.
  Reply refused =
      http_->Post("/v1/requests", Token("dsar.submit"), kAccessBody);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_THAT(refused.body, ::testing::HasSubstr("verified"));
  Reply created =
      http_->Post("/v1/requests", Token("dsar.submit dsar.admin"), kAccessBody);
  ASSERT_EQ(created.status, 200) << created.body;
  std::string id = created.json["id"];
  EXPECT_EQ(created.json["type"], "ACCESS");
  EXPECT_EQ(created.Header("Content-Type"), "application/json");
  // The idempotency key makes a retry return the same request.
  Reply again =
      http_->Post("/v1/requests", Token("dsar.submit dsar.admin"), kAccessBody);
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.json["id"], id);

  Reply got = http_->Get(absl::StrCat("/v1/requests/", id), Token("dsar.read"));
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.json["id"], id);

  nlohmann::json done = WaitTerminal(id);
  EXPECT_EQ(done["status"], "COMPLETED");

  Reply listed =
      http_->Get("/v1/requests?type=ACCESS&pageSize=10", Token("dsar.read"));
  ASSERT_EQ(listed.status, 200) << listed.body;
  ASSERT_TRUE(listed.json.contains("requests"));
  EXPECT_EQ(listed.json["requests"][0]["id"], id);
  Reply none = http_->Get("/v1/requests?status=FAILED", Token("dsar.read"));
  ASSERT_EQ(none.status, 200);
  EXPECT_FALSE(none.json.contains("requests"));

  Reply events = http_->Get(absl::StrCat("/v1/requests/", id, "/events"),
                            Token("dsar.read"));
  ASSERT_EQ(events.status, 200) << events.body;
  ASSERT_FALSE(events.json["events"].empty());
  EXPECT_EQ(events.json["events"][0]["kind"], "received");
  // The caller reached the coordinator as x-dsar-actor, which records it.
  EXPECT_EQ(events.json["events"][0].value("actor", ""), "alice")
      << events.json["events"][0].dump();

  Reply checkpoint = http_->Get("/v1/audit/checkpoint", Token("dsar.read"));
  EXPECT_EQ(checkpoint.status, 200) << checkpoint.body;
  Reply entries = http_->Get(
      absl::StrCat("/v1/audit/requests/", id, "/entries"), Token("dsar.read"));
  EXPECT_EQ(entries.status, 200) << entries.body;
  Reply workers = http_->Get("/v1/workers", Token("dsar.admin"));
  EXPECT_EQ(workers.status, 200) << workers.body;

  // Retry of a request with nothing to retry: FAILED_PRECONDITION → 400.
  Reply retry = http_->Post(absl::StrCat("/v1/requests/", id, ":retry"),
                            Token("dsar.admin"), "{}");
  EXPECT_EQ(retry.status, 400) << retry.body;
  EXPECT_EQ(retry.json["code"], 9);
}

TEST_F(GatewayClusterTest, CancelThroughTheVerbRoute) {
  // No worker: the request stays RUNNING until cancelled.
  Reply created = http_->Post(
      "/v1/requests", Token("dsar.submit dsar.admin", "ES256"), kAccessBody);
  ASSERT_EQ(created.status, 200) << created.body;
  std::string id = created.json["id"];
  Reply cancelled =
      http_->Post(absl::StrCat("/v1/requests/", id, ":cancel"),
                  Token("dsar.admin", "HS256"), R"({"reason":"withdrawn"})");
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(cancelled.json["status"], "CANCELLED");
  Reply twice = http_->Post(absl::StrCat("/v1/requests/", id, ":cancel"),
                            Token("dsar.admin"), "{}");
  EXPECT_EQ(twice.status, 400) << twice.body;
  EXPECT_EQ(twice.json["code"], 9);  // FAILED_PRECONDITION.
}

TEST_F(GatewayClusterTest, EachErrorClassHasItsStatus) {
  std::string submit = Token("dsar.submit");
  std::string read = Token("dsar.read");

  Reply bad_json = http_->Post("/v1/requests", submit, R"({"type": )");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(bad_json.json["code"], 3);
  EXPECT_THAT(bad_json.json["message"].get<std::string>(),
              StartsWith("request body is not a valid JSON object"));

  Reply unknown_field = http_->Post("/v1/requests", submit,
                                    R"({"type":"ACCESS","colour":"blue"})");
  EXPECT_EQ(unknown_field.status, 400);
  EXPECT_EQ(ViolationField(unknown_field), "colour");

  Reply wrong_type = http_->Post(
      "/v1/requests", submit,
      R"({"type":"ACCESS","identities":[{"type":"EMAIL","value":7}]})");
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_EQ(ViolationField(wrong_type), "identities[0].value");

  Reply bad_enum = http_->Post("/v1/requests", submit, R"({"type":"SNOOP"})");
  EXPECT_EQ(bad_enum.status, 400);
  EXPECT_EQ(ViolationField(bad_enum), "type");

  // Missing required fields are the coordinator's verdict, with its path.
  Reply missing = http_->Post("/v1/requests", submit, R"({"type":"ACCESS"})");
  EXPECT_EQ(missing.status, 400) << missing.body;
  EXPECT_EQ(ViolationField(missing), "identities");
  Reply bad_email = http_->Post(
      "/v1/requests", submit,
      R"({"type":"ERASURE","identities":[{"type":"EMAIL","value":"nope"}]})");
  EXPECT_EQ(bad_email.status, 400) << bad_email.body;
  EXPECT_EQ(ViolationField(bad_email), "identities[0].value");

  Reply bad_query = http_->Get("/v1/requests?colour=blue", read);
  EXPECT_EQ(bad_query.status, 400);
  EXPECT_EQ(ViolationField(bad_query), "colour");
  Reply bad_page = http_->Get("/v1/requests?pageSize=5000", read);
  EXPECT_EQ(bad_page.status, 400) << bad_page.body;
  EXPECT_EQ(ViolationField(bad_page), "page_size");

  Reply not_found = http_->Get("/v1/requests/no-such-request", read);
  EXPECT_EQ(not_found.status, 404) << not_found.body;
  EXPECT_EQ(not_found.json["code"], 5);

  Reply no_route = http_->Get("/v2/anything", read);
  EXPECT_EQ(no_route.status, 404);
  EXPECT_EQ(no_route.json["code"], 5);
  Reply wrong_method = http_->Delete("/v1/requests/x", read);
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.json["code"], 12);

  Reply not_json = http_->Post("/v1/requests", submit, "type=ACCESS",
                               "application/x-www-form-urlencoded");
  EXPECT_EQ(not_json.status, 415);

  std::string huge = absl::StrCat(R"({"type":"ACCESS","idempotencyKey":")",
                                  std::string(kMaxBody, 'x'), "\"}");
  Reply too_large = http_->Post("/v1/requests", submit, huge);
  EXPECT_EQ(too_large.status, 413);
  EXPECT_EQ(too_large.json["code"], 8);

  // The gateway is still healthy after all that.
  EXPECT_EQ(http_->Get("/healthz", "").status, 200);
}

TEST_F(GatewayClusterTest, EachAuthFailureHasItsStatusAndChallenge) {
  const std::string path = "/v1/requests?pageSize=1";

  Reply no_token = http_->Get(path, "");
  EXPECT_EQ(no_token.status, 401);
  EXPECT_EQ(no_token.json["code"], 16);
  EXPECT_EQ(no_token.Header("WWW-Authenticate"), "Bearer realm=\"dsar\"");

  std::string good = Token("dsar.read", "HS256");
  Reply bad_signature = http_->Get(
      path, keys_->Mint("HS256", "",
                        ValidClaims("a", "dsar.read", kIssuer, kAudience),
                        std::string(32, 'k')));
  EXPECT_EQ(bad_signature.status, 401);
  EXPECT_THAT(bad_signature.Header("WWW-Authenticate"),
              HasSubstr("error=\"invalid_token\""));
  EXPECT_THAT(bad_signature.json["message"].get<std::string>(),
              HasSubstr("bad signature"));

  nlohmann::json expired = ValidClaims("a", "dsar.read", kIssuer, kAudience);
  expired["exp"] = expired["iat"].get<int64_t>() - 3600;
  Reply expired_reply =
      http_->Get(path, keys_->Mint("RS256", "rsa-1", expired));
  EXPECT_EQ(expired_reply.status, 401);
  EXPECT_THAT(expired_reply.json["message"].get<std::string>(),
              HasSubstr("expired"));

  Reply wrong_audience = http_->Get(
      path, keys_->Mint("ES256", "ec-1",
                        ValidClaims("a", "dsar.read", kIssuer, "other-api")));
  EXPECT_EQ(wrong_audience.status, 401);
  EXPECT_THAT(wrong_audience.json["message"].get<std::string>(),
              HasSubstr("audience"));

  Reply wrong_issuer = http_->Get(
      path,
      keys_->Mint("ES256", "ec-1",
                  ValidClaims("a", "dsar.read", "https://evil", kAudience)));
  EXPECT_EQ(wrong_issuer.status, 401);

  Reply alg_none = http_->Get(
      path, keys_->Mint("none", "",
                        ValidClaims("a", "dsar.read", kIssuer, kAudience)));
  EXPECT_EQ(alg_none.status, 401);
  Reply unknown_kid = http_->Get(
      path, keys_->Mint("RS256", "rsa-9",
                        ValidClaims("a", "dsar.read", kIssuer, kAudience)));
  EXPECT_EQ(unknown_kid.status, 401);
  Reply not_bearer = http_->Get(path, "");
  EXPECT_EQ(not_bearer.status, 401);

  Reply missing_scope = http_->Get(path, Token("dsar.submit"));
  EXPECT_EQ(missing_scope.status, 403);
  EXPECT_EQ(missing_scope.json["code"], 7);
  EXPECT_EQ(missing_scope.Header("WWW-Authenticate"),
            "Bearer realm=\"dsar\", error=\"insufficient_scope\", "
            "scope=\"dsar.read\"");
  // Admin routes need dsar.admin, not just a valid token.
  EXPECT_EQ(http_->Get("/v1/workers", Token("dsar.read dsar.submit")).status,
            403);
  EXPECT_EQ(
      http_->Post("/v1/requests/x:cancel", Token("dsar.read"), "{}").status,
      403);

  // Each accepted algorithm works.
  EXPECT_EQ(http_->Get(path, good).status, 200);
  EXPECT_EQ(http_->Get(path, Token("dsar.read", "RS256")).status, 200);
  EXPECT_EQ(http_->Get(path, Token("dsar.read", "ES256")).status, 200);
}

TEST_F(GatewayClusterTest, SeedCompatibilityRoutes) {
  // The data subject's own token: it names their user_id, so the request
  // counts as verified and runs without a one-time code.
  nlohmann::json subject_claims =
      ValidClaims("user-7", "dsar.submit", kIssuer, kAudience);
  subject_claims["user_id"] = "7";
  std::string submit = keys_->Mint("RS256", "rsa-1", subject_claims);
  std::string read = Token("dsar.read");

  Reply job =
      http_->Post("/dsar", submit, R"({"user_id":"7","action":"export"})");
  ASSERT_EQ(job.status, 200) << job.body;
  std::string job_id = job.json["jobId"];
  ASSERT_FALSE(job_id.empty());

  Reply pending = http_->Get(absl::StrCat("/dsar/", job_id), read);
  ASSERT_EQ(pending.status, 200) << pending.body;
  EXPECT_EQ(pending.json["jobId"], job_id);
  EXPECT_EQ(pending.json["action"], "export");
  EXPECT_THAT(pending.json["status"].get<std::string>(),
              ::testing::AnyOf("PENDING", "RUNNING"));
  // No worker yet: not downloadable, and the answer says "later" (409).
  Reply early = http_->Get(absl::StrCat("/dsar/", job_id, "/download"), read);
  EXPECT_EQ(early.status, 409) << early.body;

  StartWorker();
  nlohmann::json done = WaitTerminal(job_id);
  ASSERT_EQ(done["status"], "COMPLETED") << done.dump();

  Reply finished = http_->Get(absl::StrCat("/dsar/", job_id), read);
  EXPECT_EQ(finished.json["status"], "COMPLETED");
  EXPECT_EQ(finished.json["downloadUrl"],
            absl::StrCat("/dsar/", job_id, "/download"));
  Reply download =
      http_->Get(absl::StrCat("/dsar/", job_id, "/download"), read);
  EXPECT_EQ(download.status, 302) << download.body;
  // A signed URL of the gateway's download route (docs/delivery.md).
  EXPECT_THAT(download.Header("Location"),
              ::testing::StartsWith(
                  absl::StrCat("/v1/downloads/", job_id, "?expires=")));
  Reply bundle = http_->Get(download.Header("Location"), "");
  EXPECT_EQ(bundle.status, 200);
  EXPECT_EQ(Sha256Hex(bundle.body), download.json["sha256"]);

  Reply events = http_->Get(absl::StrCat("/dsar/", job_id, "/events"), read);
  ASSERT_EQ(events.status, 200);
  EXPECT_EQ(events.json["jobId"], job_id);
  EXPECT_GE(events.json["events"].size(), 3u);

  // Nobody else's, though.
  Reply other =
      http_->Post("/dsar", submit, R"({"user_id":"8","action":"export"})");
  EXPECT_EQ(other.status, 403) << other.body;
  // A service token (no user_id claim) submits for anyone; dsard then
  // verifies the subject itself.
  Reply erase = http_->Post("/dsar", Token("dsar.submit"),
                            R"({"user_id":8,"action":"delete"})");
  ASSERT_EQ(erase.status, 200) << erase.body;
  std::string erase_id = erase.json["jobId"];
  Reply erase_job = http_->Get(absl::StrCat("/dsar/", erase_id), read);
  EXPECT_EQ(erase_job.json["action"], "delete");
  EXPECT_EQ(erase_job.json["status"], "PENDING");
  EXPECT_EQ(erase_job.json["state"], "VERIFYING");
  // An erasure never has a download.
  EXPECT_EQ(
      http_->Get(absl::StrCat("/dsar/", erase_id, "/download"), read).status,
      404);

  Reply bad_action =
      http_->Post("/dsar", submit, R"({"user_id":"7","action":"peek"})");
  EXPECT_EQ(bad_action.status, 400);
  EXPECT_EQ(ViolationField(bad_action), "action");
  Reply no_user = http_->Post("/dsar", submit, R"({"action":"export"})");
  EXPECT_EQ(no_user.status, 400);
  EXPECT_EQ(ViolationField(no_user), "user_id");
  EXPECT_EQ(http_->Get("/dsar/nope", read).status, 404);
  EXPECT_EQ(http_->Get("/dsar/nope/download", read).status, 404);
  EXPECT_EQ(http_->Get("/dsar/nope/events", read).status, 404);
  // Scopes apply here too.
  EXPECT_EQ(
      http_->Post("/dsar", read, R"({"user_id":"7","action":"export"})").status,
      403);
  EXPECT_EQ(http_->Get(absl::StrCat("/dsar/", job_id), "").status, 401);
}

// Issue 11's hostile inputs, sent as a caller would: each is a 4xx naming
// what is wrong, and the gateway is still there afterwards. Before the
// bounds, the deep body overflowed the stack (SIGSEGV) and the others
// answered 500.
TEST_F(GatewayClusterTest, HostileInputsAreRefusedAndTheGatewayStaysUp) {
  // As deep as the test gateway's 16 KiB body limit allows (production
  // allows more; the depth check runs before the parser either way).
  const std::string deep = std::string(8000, '[') + std::string(8000, ']');
  std::string submit = Token("dsar.submit");
  std::string read = Token("dsar.read");

  Reply seed_deep =
      http_->Post("/api/dsar/submit", submit,
                  absl::StrCat(R"({"email":"a@example.com","fullName":"A",)",
                               R"("requestType":)", deep, "}"));
  EXPECT_EQ(seed_deep.status, 400) << seed_deep.body.substr(0, 200);
  EXPECT_THAT(seed_deep.body, HasSubstr("nested deeper than 64"));
  Reply v1_deep = http_->Post("/v1/requests", submit,
                              absl::StrCat(R"({"type":)", deep, "}"));
  EXPECT_EQ(v1_deep.status, 400) << v1_deep.body.substr(0, 200);
  Reply action_deep = http_->Post(
      "/dsar", submit, absl::StrCat(R"({"user_id":"7","action":)", deep, "}"));
  EXPECT_EQ(action_deep.status, 400) << action_deep.body.substr(0, 200);
  EXPECT_THAT(action_deep.body, HasSubstr("nested deeper than 64"));

  for (const char* path : {"/v1/requests/%ff%fe", "/v1/requests/%ff/events",
                           "/v1/requests?page_token=%ff", "/dsar/%ff"}) {
    Reply reply = http_->Get(path, read);
    EXPECT_EQ(reply.status, 400) << path << ": " << reply.body;
    EXPECT_THAT(reply.body, HasSubstr("UTF-8")) << path;
  }
  // A megabyte id comes back as a short quoted prefix, not echoed whole.
  Reply long_id = http_->Get(
      absl::StrCat("/v1/requests/", std::string(1 << 20, 'a')), read);
  EXPECT_GE(long_id.status, 400);
  EXPECT_LT(long_id.status, 500);
  EXPECT_LT(long_id.body.size(), 4096u);

  EXPECT_TRUE(gateway_->Running());
  EXPECT_EQ(http_->Get("/healthz", "").status, 200);
}

TEST_F(GatewayClusterTest, SeedSubmitRouteValidatesAndAnswers202) {
  std::string submit = Token("dsar.submit");

  Reply invalid = http_->Post("/api/dsar/submit", submit,
                              R"({"email":"not-an-email","fullName":" A ",)"
                              R"("requestType":"everything"})");
  ASSERT_EQ(invalid.status, 400) << invalid.body;
  std::set<std::string> paths;
  for (const nlohmann::json& error : invalid.json["errors"]) {
    paths.insert(error["path"].get<std::string>());
    EXPECT_EQ(error["location"], "body");
  }
  EXPECT_EQ(paths, (std::set<std::string>{"email", "fullName", "requestType"}));
  Reply empty = http_->Post("/api/dsar/submit", submit, "{}");
  EXPECT_EQ(empty.status, 400);
  EXPECT_EQ(empty.json["errors"].size(), 3u);

  Reply accepted = http_->Post(
      "/api/dsar/submit", submit,
      R"({"email":"Person4@Example.com","fullName":"Person Four","requestType":"access"})");
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  EXPECT_EQ(accepted.json["message"], "DSAR request received");
  std::string id = accepted.json["requestId"];
  Reply request = http_->Get(absl::StrCat("/v1/requests/", id),
                             Token("dsar.read dsar.pii.read"));
  ASSERT_EQ(request.status, 200);
  EXPECT_EQ(request.json["identities"][0]["value"], "person4@example.com");
  EXPECT_EQ(request.json["regulation"], "GDPR");
  // deadline: the statutory deadline dsard set on the request (the gateway
  // computes none), in UTC, in toISOString's format.
  ASSERT_TRUE(request.json.contains("deadline")) << request.body;
  absl::Time expected;
  std::string error;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full,
                              request.json["deadline"].get<std::string>(),
                              &expected, &error))
      << error;
  EXPECT_EQ(
      accepted.json["deadline"],
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", expected, absl::UTCTimeZone()));

  // A data subject's own token may not ask about someone else.
  std::string own = SubjectToken("person9@example.com", true, "dsar.submit");
  Reply other = http_->Post(
      "/api/dsar/submit", own,
      R"({"email":"person4@example.com","fullName":"Person Four","requestType":"erasure"})");
  EXPECT_EQ(other.status, 403) << other.body;
  EXPECT_EQ(other.json["error"], "Identity verification required");
  Reply self = http_->Post(
      "/api/dsar/submit", own,
      R"({"email":"person9@example.com","fullName":"Person Nine","requestType":"portability"})");
  EXPECT_EQ(self.status, 202) << self.body;
  // The token's address and the form's compare in canonical form (the
  // model's normaliser): case does not make them different people.
  Reply self_cased = http_->Post(
      "/api/dsar/submit", own,
      R"({"email":" Person9@EXAMPLE.com","fullName":"Person Nine","requestType":"access"})");
  EXPECT_EQ(self_cased.status, 202) << self_cased.body;
  // The subject's own verified sign-in counts as identity verification; a
  // service token's submission waits for the one-time code instead.
  Reply self_request = http_->Get(
      absl::StrCat("/v1/requests/", self.json.value("requestId", "")),
      Token("dsar.read"));
  EXPECT_EQ(self_request.json["verification"]["method"], "logged_in_session")
      << self_request.body;
  EXPECT_EQ(request.json["status"], "VERIFYING");

  // Valid for the seed's form, but the engine needs the corrections: its
  // verdict comes back in the seed's error shape.
  Reply rectify = http_->Post(
      "/api/dsar/submit", submit,
      R"({"email":"person4@example.com","fullName":"Person Four","requestType":"rectification"})");
  EXPECT_EQ(rectify.status, 400) << rectify.body;
  EXPECT_EQ(rectify.json["errors"][0]["path"], "corrections");

  EXPECT_EQ(http_->Post("/api/dsar/submit", Token("dsar.read"), "{}").status,
            403);
}

TEST_F(GatewayClusterTest, SubjectTokenCountsAsVerifiedOnlyOnBooleanTrue) {
  const std::string form =
      R"({"email":"person11@example.com","fullName":"Person Eleven",)"
      R"("requestType":"access"})";
  for (const nlohmann::json& claim :
       {nlohmann::json("false"), nlohmann::json("true"), nlohmann::json(),
        nlohmann::json(1), nlohmann::json(false)}) {
    Reply refused = http_->Post(
        "/api/dsar/submit",
        SubjectToken("person11@example.com", claim, "dsar.submit"), form);
    EXPECT_EQ(refused.status, 403)
        << "email_verified " << claim.dump() << ": " << refused.body;
    EXPECT_EQ(refused.json.value("error", ""),
              "Identity verification required");
  }
  Reply accepted = http_->Post(
      "/api/dsar/submit",
      SubjectToken("person11@example.com", true, "dsar.submit"), form);
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  Reply request = http_->Get(
      absl::StrCat("/v1/requests/", accepted.json.value("requestId", "")),
      Token("dsar.read"));
  EXPECT_EQ(request.json["verification"]["method"], "logged_in_session")
      << request.body;
}

TEST_F(GatewayClusterTest, SubjectSeesAndActsOnOwnRequestsOnly) {
  std::string own_id = CreateFor("person12@example.com");
  std::string other_id = CreateFor("person13@example.com");
  ASSERT_FALSE(own_id.empty());
  ASSERT_FALSE(other_id.empty());
  std::string ann = SubjectToken("Person12@Example.com", true);

  // Their own request, identities included (compared in canonical form).
  Reply own = http_->Get(absl::StrCat("/v1/requests/", own_id), ann);
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(own.json["identities"][0]["value"], "person12@example.com");
  EXPECT_EQ(
      http_->Get(absl::StrCat("/v1/requests/", own_id, "/events"), ann).status,
      200);
  EXPECT_EQ(http_->Get(absl::StrCat("/dsar/", own_id), ann).status, 200);

  // Someone else's answers exactly as an unknown id does: 404, same message.
  Reply unknown = http_->Get("/v1/requests/no-such-request", ann);
  Reply other = http_->Get(absl::StrCat("/v1/requests/", other_id), ann);
  EXPECT_EQ(other.status, 404) << other.body;
  EXPECT_EQ(other.json["code"], 5);
  EXPECT_EQ(other.json["message"],
            absl::StrCat("request ", other_id, " not found"));
  EXPECT_EQ(unknown.json["message"], "request no-such-request not found");
  EXPECT_THAT(other.body, ::testing::Not(HasSubstr("person13")));
  for (const std::string& path :
       {absl::StrCat("/v1/requests/", other_id, "/events"),
        absl::StrCat("/v1/audit/requests/", other_id, "/entries"),
        absl::StrCat("/dsar/", other_id),
        absl::StrCat("/dsar/", other_id, "/events"),
        absl::StrCat("/dsar/", other_id, "/download")}) {
    Reply reply = http_->Get(path, ann);
    EXPECT_EQ(reply.status, 404) << path << ": " << reply.body;
  }
  EXPECT_EQ(http_
                ->Post(absl::StrCat("/v1/requests/", other_id, ":verify"), ann,
                       R"({"code":"000000"})")
                .status,
            404);

  // The list holds theirs only; an operator's holds both.
  EXPECT_EQ(ListedIds(ann), std::set<std::string>{own_id});
  std::set<std::string> all = ListedIds(Token("dsar.read"));
  EXPECT_TRUE(all.count(own_id) && all.count(other_id));
  // The whole audit log is for operators; the checkpoint is public.
  EXPECT_EQ(http_->Get("/v1/audit/entries", ann).status, 403);
  EXPECT_EQ(http_->Get("/v1/audit/checkpoint", ann).status, 200);

  // They submit about themselves only.
  Reply for_other = http_->Post(
      "/v1/requests", ann,
      R"({"type":"ERASURE","identities":[{"type":"EMAIL","value":"person13@example.com"}]})");
  EXPECT_EQ(for_other.status, 403) << for_other.body;
  Reply for_self = http_->Post(
      "/v1/requests", ann,
      R"({"type":"ERASURE","identities":[{"type":"EMAIL","value":"person12@example.com"}]})");
  EXPECT_EQ(for_self.status, 200) << for_self.body;

  // A token whose email is not verified proves nothing: it sees nothing.
  std::string unverified = SubjectToken("person12@example.com", "true");
  EXPECT_EQ(
      http_->Get(absl::StrCat("/v1/requests/", own_id), unverified).status,
      404);
  EXPECT_TRUE(ListedIds(unverified).empty());
}

TEST_F(GatewayClusterTest, OperatorListMasksIdentitiesWithoutPiiScope) {
  std::string id = CreateFor("person14@example.com");
  ASSERT_FALSE(id.empty());
  auto identity_in_list = [&](const std::string& token) -> nlohmann::json {
    Reply listed = http_->Get("/v1/requests?pageSize=1000", token);
    EXPECT_EQ(listed.status, 200) << listed.body;
    for (const nlohmann::json& request : listed.json["requests"]) {
      if (request["id"] == id) return request["identities"][0];
    }
    ADD_FAILURE() << id << " not listed: " << listed.body;
    return nlohmann::json();
  };
  nlohmann::json masked = identity_in_list(Token("dsar.read"));
  EXPECT_EQ(masked.value("value", ""), "***") << masked.dump();
  EXPECT_EQ(masked.value("type", ""), "EMAIL");
  nlohmann::json clear = identity_in_list(Token("dsar.read dsar.pii.read"));
  EXPECT_EQ(clear.value("value", ""), "person14@example.com");
  // GET by id as well: otherwise the list's ids would unmask them one by one.
  Reply got = http_->Get(absl::StrCat("/v1/requests/", id), Token("dsar.read"));
  EXPECT_EQ(got.json["identities"][0]["value"], "***") << got.body;
}

TEST_F(GatewayClusterTest, GatewayReachesDsardOverItsUnixSocket) {
  std::string id = CreateFor("person4@example.com");
  ASSERT_FALSE(id.empty());
  // The last --coordinator wins: this gateway never uses dsard's TCP port.
  std::vector<std::string> args = GatewayArgs();
  args.push_back(absl::StrCat("--coordinator=unix:", SocketPath()));
  absl::StatusOr<testing::RunningGateway> local =
      testing::StartGateway(DSAR_TEST_GATEWAY_PATH, /*coordinator_port=*/1,
                            args, dir_.path(), "gateway-unix");
  ASSERT_TRUE(local.ok()) << local.status();
  Http local_http(local->port);
  Reply got =
      local_http.Get(absl::StrCat("/v1/requests/", id), Token("dsar.read"));
  EXPECT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.json.value("id", ""), id) << got.body;
}

TEST_F(GatewayClusterTest, CoordinatorDownGives503ThenRecovers) {
  std::string read = Token("dsar.read");
  ASSERT_EQ(http_->Get("/v1/requests?pageSize=1", read).status, 200);
  dsard_->Terminate();

  Reply down = http_->Get("/v1/requests?pageSize=1", read);
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(down.json["code"], 14);
  EXPECT_EQ(http_->Get("/dsar/x", read).status, 503);
  // A gateway started while the coordinator is down starts and answers too.
  absl::StatusOr<testing::RunningGateway> second =
      testing::StartGateway(DSAR_TEST_GATEWAY_PATH, dsard_port_, GatewayArgs(),
                            dir_.path(), "gateway-2");
  ASSERT_TRUE(second.ok()) << second.status();
  Http second_http(second->port);
  EXPECT_EQ(second_http.Get("/v1/requests/x", read).status, 503);

  StartCoordinator(dsard_port_);  // Same port, same data.
  for (Http* client : {http_.get(), &second_http}) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    int status = 0;
    while (absl::Now() < deadline) {
      status = client->Get("/v1/requests?pageSize=1", read).status;
      if (status == 200) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_EQ(status, 200) << "the gateway did not recover";
  }
  EXPECT_TRUE(gateway_->Running());
}

// ---- A service the gateway has no code for ---------------------------------

class EchoServiceTest : public ::testing::Test {
 protected:
  EchoServiceTest() : dir_("gateway-echo") {}

  void SetUp() override {
    keys_ = std::make_unique<TestKeys>();
    WriteFile(dir_.Join("hs256.secret"), keys_->hs256_secret());
    std::string port_file = dir_.Join("echo.port");
    absl::StatusOr<std::unique_ptr<Process>> echo = Process::Start(
        DSAR_TEST_ECHO_SERVER_PATH, {absl::StrCat("--port_file=", port_file)},
        dir_.Join("echo.log"));
    ASSERT_TRUE(echo.ok()) << echo.status();
    echo_ = *std::move(echo);
    absl::StatusOr<int> port = dsar::testing::WaitForPortFile(
        port_file, absl::Seconds(30), echo_.get());
    ASSERT_TRUE(port.ok()) << port.status();
    echo_port_ = *port;
    absl::StatusOr<testing::RunningGateway> gateway = testing::StartGateway(
        DSAR_TEST_ECHO_GATEWAY_PATH, echo_port_,
        {"--services=dsar.test.EchoService", "--compat_routes=false",
         absl::StrCat("--jwt_hs256_secret_file=", dir_.Join("hs256.secret"))},
        dir_.path());
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = std::move(gateway->process);
    http_ = std::make_unique<Http>(gateway->port);
  }

  std::string Token(const std::string& scope) {
    return keys_->Mint("HS256", "", ValidClaims("alice", scope));
  }

  TempDir dir_;
  std::unique_ptr<TestKeys> keys_;
  std::unique_ptr<Process> echo_;
  int echo_port_ = 0;
  std::unique_ptr<Process> gateway_;
  std::unique_ptr<Http> http_;
};

TEST_F(EchoServiceTest, AnnotatedRpcsBecomeRoutesWithTheirScopes) {
  Reply get = http_->Get(
      "/v1/echo/hello?repeat=2&tags=a&tags=b&inner.note=n&shout=true"
      "&at=2024-01-02T03:04:05Z",
      Token("echo.read"));
  ASSERT_EQ(get.status, 200) << get.body;
  EXPECT_EQ(get.json["message"], "HELLOHELLO");
  EXPECT_EQ(get.json["tags"], nlohmann::json({"a", "b"}));
  EXPECT_EQ(get.json["note"], "n");
  EXPECT_EQ(get.json["at"], "2024-01-02T03:04:05Z");
  // The caller's identity reached the backend as x-dsar-actor.
  EXPECT_EQ(get.json["actor"], "alice");

  Reply post = http_->Post("/v1/echo", Token("echo.write"),
                           R"({"message":"hi","inner":{"note":"x"}})");
  ASSERT_EQ(post.status, 200) << post.body;
  EXPECT_EQ(post.json["message"], "hi");
  EXPECT_EQ(post.json["note"], "x");
  Reply bound = http_->Post("/v1/echo/yo:note", Token("echo.write"),
                            R"({"note":"from body"})");
  ASSERT_EQ(bound.status, 200) << bound.body;
  EXPECT_EQ(bound.json["message"], "yo");
  EXPECT_EQ(bound.json["note"], "from body");

  // The scopes are the annotations' too.
  Reply wrong_scope = http_->Post("/v1/echo", Token("echo.read"), "{}");
  EXPECT_EQ(wrong_scope.status, 403);
  EXPECT_THAT(wrong_scope.Header("WWW-Authenticate"),
              HasSubstr("scope=\"echo.write\""));
  // Backend errors map as for dsard.
  Reply invalid = http_->Get("/v1/echo/invalid", Token("echo.read"));
  EXPECT_EQ(invalid.status, 400);
  EXPECT_EQ(ViolationField(invalid), "inner.note");
  EXPECT_EQ(http_->Get("/v1/echo/missing", Token("echo.read")).status, 404);
  // Only the configured services are exposed.
  EXPECT_EQ(http_->Get("/v1/requests/x", Token("echo.read")).status, 404);
  EXPECT_EQ(http_->Post("/dsar", Token("echo.write"), "{}").status, 404);
}

TEST_F(EchoServiceTest, InsecureDevModeIsLoopbackOnlyAndSaysSo) {
  absl::StatusOr<testing::RunningGateway> dev = testing::StartGateway(
      DSAR_TEST_ECHO_GATEWAY_PATH, echo_port_,
      {"--services=dsar.test.EchoService", "--insecure_dev"}, dir_.path(),
      "dev-gateway");
  ASSERT_TRUE(dev.ok()) << dev.status();
  Http dev_http(dev->port);
  Reply anonymous = dev_http.Get("/v1/echo/hi", "");
  EXPECT_EQ(anonymous.status, 200) << anonymous.body;
  EXPECT_EQ(anonymous.json["actor"], "insecure-dev");
  EXPECT_THAT(dsar::testing::ReadFileOrEmpty(dir_.Join("dev-gateway.log")),
              HasSubstr("WARNING: --insecure_dev"));

  absl::StatusOr<int> refused = dsar::testing::RunToExit(
      DSAR_TEST_ECHO_GATEWAY_PATH,
      {"--listen=0.0.0.0:0", "--services=dsar.test.EchoService",
       "--insecure_dev"},
      dir_.Join("refused.log"), absl::Seconds(30));
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(*refused, 1);
  EXPECT_THAT(dsar::testing::ReadFileOrEmpty(dir_.Join("refused.log")),
              HasSubstr("--insecure_dev is refused"));
  // Without a key nothing starts either.
  absl::StatusOr<int> no_key = dsar::testing::RunToExit(
      DSAR_TEST_ECHO_GATEWAY_PATH, {"--services=dsar.test.EchoService"},
      dir_.Join("no-key.log"), absl::Seconds(30));
  ASSERT_TRUE(no_key.ok());
  EXPECT_EQ(*no_key, 1);
}

// httplib binds with SO_REUSEPORT unless told otherwise, and then a second
// gateway started on a taken port shared it silently. It must refuse.
TEST_F(EchoServiceTest, ATakenPortStopsTheStart) {
  const std::string secret =
      absl::StrCat("--jwt_hs256_secret_file=", dir_.Join("hs256.secret"));
  absl::StatusOr<testing::RunningGateway> first = testing::StartGateway(
      DSAR_TEST_ECHO_GATEWAY_PATH, echo_port_,
      {"--services=dsar.test.EchoService", secret}, dir_.path(), "first");
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string taken = absl::StrCat("127.0.0.1:", first->port);
  absl::StatusOr<int> second = dsar::testing::RunToExit(
      DSAR_TEST_ECHO_GATEWAY_PATH,
      {absl::StrCat("--listen=", taken),
       "--admin_listen=", "--services=dsar.test.EchoService", secret},
      dir_.Join("second.log"), absl::Seconds(30));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, 1);
  EXPECT_THAT(dsar::testing::ReadFileOrEmpty(dir_.Join("second.log")),
              HasSubstr(absl::StrCat("cannot listen on ", taken)));
  EXPECT_EQ(Http(first->port).Get("/healthz", "").status, 200);
}

TEST_F(EchoServiceTest, PlainHttpOffLoopbackOnlyWithTheFlag) {
  const std::string secret =
      absl::StrCat("--jwt_hs256_secret_file=", dir_.Join("hs256.secret"));
  absl::StatusOr<int> refused = dsar::testing::RunToExit(
      DSAR_TEST_ECHO_GATEWAY_PATH,
      {"--listen=0.0.0.0:0", "--services=dsar.test.EchoService", secret},
      dir_.Join("plain-refused.log"), absl::Seconds(30));
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(*refused, 1);
  EXPECT_THAT(dsar::testing::ReadFileOrEmpty(dir_.Join("plain-refused.log")),
              HasSubstr("--listen=0.0.0.0:0: refusing plain HTTP"));

  // Said out loud, it serves (StartGateway's own --listen comes first; the
  // last one counts).
  absl::StatusOr<testing::RunningGateway> allowed = testing::StartGateway(
      DSAR_TEST_ECHO_GATEWAY_PATH, echo_port_,
      {"--listen=0.0.0.0:0", "--allow_plaintext_non_loopback",
       "--services=dsar.test.EchoService", secret},
      dir_.path(), "plain-allowed");
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_EQ(Http(allowed->port).Get("/healthz", "").status, 200);

  // The HTTPS flags go together, and a certificate that cannot be loaded
  // stops the start naming the file.
  absl::StatusOr<int> half = dsar::testing::RunToExit(
      DSAR_TEST_ECHO_GATEWAY_PATH,
      {"--services=dsar.test.EchoService", secret,
       absl::StrCat("--tls_cert=", dir_.Join("hs256.secret"))},
      dir_.Join("half.log"), absl::Seconds(30));
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_EQ(*half, 1);
  EXPECT_THAT(dsar::testing::ReadFileOrEmpty(dir_.Join("half.log")),
              HasSubstr("--tls_cert and --tls_key go together"));
  absl::StatusOr<int> not_pem = dsar::testing::RunToExit(
      DSAR_TEST_ECHO_GATEWAY_PATH,
      {"--services=dsar.test.EchoService", secret,
       absl::StrCat("--tls_cert=", dir_.Join("hs256.secret")),
       absl::StrCat("--tls_key=", dir_.Join("hs256.secret"))},
      dir_.Join("not-pem.log"), absl::Seconds(30));
  ASSERT_TRUE(not_pem.ok()) << not_pem.status();
  EXPECT_EQ(*not_pem, 1);
  EXPECT_THAT(dsar::testing::ReadFileOrEmpty(dir_.Join("not-pem.log")),
              HasSubstr(absl::StrCat(dir_.Join("hs256.secret"),
                                     ": cannot load a PEM certificate chain")));
}

}  // namespace
}  // namespace dsar::gateway
