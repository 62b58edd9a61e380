// Delivery of the bundle through signed URLs (docs/delivery.md), end to end:
// dsard under mutual TLS, a worker, and dsar-gateway reaching dsard with its
// gateway certificate and checking HS256 tokens; the bundle fetched over
// HTTP with no token, each refusal with its HTTP status; the same over the
// gateway's HTTPS listener, which a plain HTTP client cannot talk to.

#include <grpcpp/grpcpp.h>
#include <httplib.h>  // CPPHTTPLIB_* come from its pkg-config file.

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/grpc_tls.h"
#include "common/sha256.h"
#include "gateway/testing/test_tokens.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/bundle_download.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"
#include "tests/zip_entries.h"

namespace dsar::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kIssuer[] = "https://issuer.test";
constexpr char kAudience[] = "dsar-gateway";

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  return context;
}

struct Reply {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  nlohmann::json json;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// A dsard (mutual TLS), worker-1 and a gateway, for one test or a suite.
class DeliveryCluster {
 public:
  // `dsard_args` are added to dsard's TLS flags. With `gateway_https` the
  // gateway serves HTTPS (dev-pki's gateway-https certificate) on 0.0.0.0,
  // and the client checks its certificate against the CA.
  static absl::StatusOr<std::unique_ptr<DeliveryCluster>> Start(
      const std::string& pki, const std::string& inventory,
      const std::string& hs256_secret, std::vector<std::string> dsard_args,
      bool gateway_https = false) {
    auto cluster = std::unique_ptr<DeliveryCluster>(new DeliveryCluster(pki));
    TempDir& dir = *cluster->dir_;
    DsardOptions options;
    options.data_dir = dir.Join("data");
    options.inventory = inventory;
    options.extra_args = {"--tls_cert=" + cluster->Pem("dsard"),
                          "--tls_key=" + cluster->Key("dsard"),
                          "--tls_client_ca=" + cluster->Pem("ca")};
    options.extra_args.insert(options.extra_args.end(), dsard_args.begin(),
                              dsard_args.end());
    options.client_credentials = cluster->Credentials("operator");
    absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir.path());
    if (!dsard.ok()) return dsard.status();
    cluster->dsard_ = std::move(*dsard);

    WorkerOptions worker;
    worker.coordinator_port = cluster->dsard_.port;
    worker.inventory = inventory;
    worker.worker_id = "worker-1";
    worker.extra_args = {"--tls_ca=" + cluster->Pem("ca"),
                         "--tls_cert=" + cluster->Pem("worker-1"),
                         "--tls_key=" + cluster->Key("worker-1")};
    absl::StatusOr<std::unique_ptr<Process>> started =
        StartWorker(worker, dir.path());
    if (!started.ok()) return started.status();
    cluster->worker_ = std::move(*started);

    std::string secret_file = dir.Join("jwt.secret");
    std::ofstream(secret_file) << hs256_secret;
    std::vector<std::string> args = {
        gateway_https ? "--listen=0.0.0.0:0" : "--listen=127.0.0.1:0",
        "--port_file=" + dir.Join("gateway.port"),
        absl::StrCat("--coordinator=127.0.0.1:", cluster->dsard_.port),
        "--coordinator_tls_ca=" + cluster->Pem("ca"),
        "--coordinator_tls_cert=" + cluster->Pem("gateway"),
        "--coordinator_tls_key=" + cluster->Key("gateway"),
        "--jwt_hs256_secret_file=" + secret_file,
        absl::StrCat("--issuer=", kIssuer),
        absl::StrCat("--audience=", kAudience)};
    if (gateway_https) {
      args.push_back("--tls_cert=" + cluster->Pem("gateway-https"));
      args.push_back("--tls_key=" + cluster->Key("gateway-https"));
    }
    absl::StatusOr<std::unique_ptr<Process>> gateway =
        Process::Start(DSAR_TEST_GATEWAY_PATH, args, dir.Join("gateway.log"));
    if (!gateway.ok()) return gateway.status();
    cluster->gateway_ = std::move(*gateway);
    absl::StatusOr<int> port = WaitForPortFile(
        dir.Join("gateway.port"), absl::Seconds(30), cluster->gateway_.get());
    if (!port.ok()) return port.status();
    cluster->gateway_port_ = *port;
    if (gateway_https) {
      cluster->http_ = std::make_unique<httplib::Client>(
          absl::StrCat("https://127.0.0.1:", *port));
      cluster->http_->set_ca_cert_path(cluster->Pem("ca"));
      cluster->http_->enable_server_certificate_verification(true);
    } else {
      cluster->http_ = std::make_unique<httplib::Client>("127.0.0.1", *port);
    }
    cluster->http_->set_read_timeout(30, 0);
    return cluster;
  }

  int dsard_port() const { return dsard_.port; }
  int gateway_port() const { return gateway_port_; }
  std::string Pem(const std::string& name) const {
    return absl::StrCat(pki_, "/", name, ".pem");
  }
  std::string Key(const std::string& name) const {
    return absl::StrCat(pki_, "/", name, ".key");
  }
  std::shared_ptr<grpc::ChannelCredentials> Credentials(
      const std::string& name) const {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        ChannelCredentialsFor({Pem("ca"), Pem(name), Key(name)}, "tls_");
    return credentials.ok() ? *credentials : nullptr;
  }
  std::unique_ptr<v1::DsarService::Stub> StubAs(const std::string& name) const {
    return v1::DsarService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", dsard_.port), Credentials(name)));
  }

  Reply Get(const std::string& path, const std::string& token = "") {
    httplib::Headers headers;
    if (!token.empty()) headers.insert({"Authorization", "Bearer " + token});
    return Done(http_->Get(path.c_str(), headers));
  }
  Reply Post(const std::string& path, const std::string& token,
             const std::string& body = "{}") {
    httplib::Headers headers = {{"Authorization", "Bearer " + token}};
    return Done(http_->Post(path.c_str(), headers, body, "application/json"));
  }

  std::string Logs() const {
    return absl::StrCat("--- dsard\n", ReadFileOrEmpty(dir_->Join("dsard.log")),
                        "--- gateway\n",
                        ReadFileOrEmpty(dir_->Join("gateway.log")));
  }

 private:
  explicit DeliveryCluster(std::string pki)
      : pki_(std::move(pki)),
        dir_(std::make_unique<TempDir>("dsar-delivery-case")) {}

  static Reply Done(const httplib::Result& result) {
    Reply reply;
    if (!result) return reply;
    reply.status = result->status;
    reply.body = result->body;
    reply.headers = result->headers;
    reply.json = nlohmann::json::parse(result->body, nullptr, false);
    return reply;
  }

  std::string pki_;
  std::unique_ptr<TempDir> dir_;
  RunningDsard dsard_;
  std::unique_ptr<Process> worker_;
  std::unique_ptr<Process> gateway_;
  int gateway_port_ = 0;
  std::unique_ptr<httplib::Client> http_;
};

class DeliveryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared_ = new TempDir("dsar-delivery");
    pki_ = shared_->Join("pki");
    absl::StatusOr<int> made = RunToExit(
        "/bin/bash",
        {DSAR_TEST_DEV_PKI_PATH, pki_, "--worker", "worker-1=*", "--gateway",
         "gateway", "--operator", "operator", "--service", "billing"},
        shared_->Join("dev-pki.log"), absl::Seconds(60));
    ASSERT_TRUE(made.ok() && *made == 0)
        << ReadFileOrEmpty(shared_->Join("dev-pki.log"));
    absl::StatusOr<std::string> inventory =
        GenerateSampleStores(shared_->Join("stores"), 20);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = *inventory;
    keys_ = new gateway::testing::TestKeys();
  }
  static void TearDownTestSuite() {
    delete keys_;
    delete shared_;
  }

  void StartCluster(std::vector<std::string> dsard_args = {},
                    bool gateway_https = false) {
    absl::StatusOr<std::unique_ptr<DeliveryCluster>> cluster =
        DeliveryCluster::Start(pki_, inventory_, keys_->hs256_secret(),
                               std::move(dsard_args), gateway_https);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
  }

  // A COMPLETED access request for person<n>, created by the operator as
  // already verified.
  v1::Request CompletedAccess(int n) {
    auto stub = cluster_->StubAs("operator");
    v1::CreateRequestRequest create =
        RequestForEmail(v1::ACCESS, absl::StrCat("person", n, "@example.com"),
                        absl::StrCat("delivery-", n));
    create.mutable_verified()->set_method("id_document");
    v1::Request created;
    auto context = Context();
    grpc::Status status = stub->CreateRequest(context.get(), create, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    absl::StatusOr<v1::Request> done =
        WaitUntilTerminal(*stub, created.id(), absl::Seconds(90));
    EXPECT_TRUE(done.ok()) << done.status() << cluster_->Logs();
    EXPECT_EQ(done.value_or(v1::Request()).status(), v1::COMPLETED);
    return done.value_or(v1::Request());
  }

  // A data subject's token proving person<n>'s verified email.
  static std::string SubjectToken(int n) {
    nlohmann::json claims = gateway::testing::ValidClaims(
        absl::StrCat("subject-", n), "dsar.read dsar.submit", kIssuer,
        kAudience);
    claims["email"] = absl::StrCat("person", n, "@example.com");
    claims["email_verified"] = true;
    return keys_->Mint("HS256", "", claims);
  }
  static std::string AdminToken() {
    return keys_->Mint("HS256", "",
                       gateway::testing::ValidClaims("ops-1", "dsar.admin",
                                                     kIssuer, kAudience));
  }

  // POST .../:createDownloadUrl as `token`; the answer's url, or "".
  std::string CreateUrl(const std::string& id, const std::string& token) {
    Reply reply = cluster_->Post(
        absl::StrCat("/v1/requests/", id, ":createDownloadUrl"), token);
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.json.is_object() ? reply.json.value("url", "") : "";
  }

  std::vector<std::string> EventKinds(
      const std::string& id, std::vector<v1::Event>* events = nullptr) {
    auto stub = cluster_->StubAs("operator");
    absl::StatusOr<std::vector<v1::Event>> all = ListAllEvents(*stub, id);
    EXPECT_TRUE(all.ok()) << all.status();
    std::vector<std::string> kinds;
    for (const v1::Event& event : all.value_or(std::vector<v1::Event>())) {
      kinds.push_back(event.kind());
    }
    if (events != nullptr && all.ok()) *events = *all;
    return kinds;
  }

  static TempDir* shared_;
  static std::string pki_;
  static std::string inventory_;
  static gateway::testing::TestKeys* keys_;
  std::unique_ptr<DeliveryCluster> cluster_;
};

TempDir* DeliveryTest::shared_ = nullptr;
std::string DeliveryTest::pki_;
std::string DeliveryTest::inventory_;
gateway::testing::TestKeys* DeliveryTest::keys_ = nullptr;

TEST_F(DeliveryTest, SubjectDownloadsTheirBundleThroughASignedUrl) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  v1::Request done = CompletedAccess(13);
  ASSERT_FALSE(done.bundle().sha256().empty());

  Reply created = cluster_->Post(
      absl::StrCat("/v1/requests/", done.id(), ":createDownloadUrl"),
      SubjectToken(13));
  ASSERT_EQ(created.status, 200) << created.body;
  std::string url = created.json.value("url", "");
  EXPECT_THAT(
      url, StartsWith(absl::StrCat("/v1/downloads/", done.id(), "?expires=")));
  EXPECT_EQ(created.json.value("sha256", ""), done.bundle().sha256());
  EXPECT_FALSE(created.json.value("expiresAt", "").empty());

  // No token: the signature is the credential.
  Reply bundle = cluster_->Get(url);
  ASSERT_EQ(bundle.status, 200) << bundle.body << cluster_->Logs();
  EXPECT_EQ(static_cast<int64_t>(bundle.body.size()),
            done.bundle().size_bytes());
  EXPECT_EQ(Sha256Hex(bundle.body), done.bundle().sha256());
  EXPECT_EQ(bundle.Header("X-Bundle-Sha256"), done.bundle().sha256());
  EXPECT_EQ(bundle.Header("Content-Type"), "application/zip");
  EXPECT_EQ(bundle.Header("Content-Disposition"),
            absl::StrCat("attachment; filename=\"", done.id(), ".zip\""));
  EXPECT_EQ(bundle.Header("Cache-Control"), "no-store");
  absl::StatusOr<std::map<std::string, std::string>> entries =
      ReadZipBytes(bundle.body);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_TRUE(entries->count("manifest.json"));

  std::vector<v1::Event> events;
  std::vector<std::string> kinds = EventKinds(done.id(), &events);
  EXPECT_THAT(kinds, ::testing::IsSupersetOf(
                         {"download_url_issued", "bundle_downloaded"}));
  for (const v1::Event& event : events) {
    if (event.kind() == "download_url_issued") {
      EXPECT_EQ(event.actor(), "subject-13");
    }
    if (event.kind() == "bundle_downloaded") {
      EXPECT_EQ(event.actor(), "signed-url");
      EXPECT_THAT(event.detail(), HasSubstr(done.bundle().sha256()));
    }
  }

  // Seed 000's route: a 302 to a fresh signed URL, which serves the same.
  Reply seed = cluster_->Get(absl::StrCat("/dsar/", done.id(), "/download"),
                             SubjectToken(13));
  ASSERT_EQ(seed.status, 302) << seed.body;
  EXPECT_THAT(seed.Header("Location"), StartsWith("/v1/downloads/"));
  EXPECT_NE(seed.Header("Location"), url) << "a new nonce each time";
  Reply again = cluster_->Get(seed.Header("Location"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, bundle.body);

  // dsarctl with the operator's certificate, through the same RPCs.
  std::string out = shared_->Join(absl::StrCat(done.id(), ".zip"));
  std::string log = shared_->Join("dsarctl-download.log");
  absl::StatusOr<int> code =
      RunToExit(DsarctlPath(),
                {absl::StrCat("--addr=127.0.0.1:", cluster_->dsard_port()),
                 "--tls", "--ca_cert=" + cluster_->Pem("ca"),
                 "--client_cert=" + cluster_->Pem("operator"),
                 "--client_key=" + cluster_->Key("operator"), "download",
                 done.id(), "--file=" + out},
                log, absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << ReadFileOrEmpty(log);
  EXPECT_THAT(ReadFileOrEmpty(log), HasSubstr("(verified)"));
  EXPECT_EQ(ReadFileOrEmpty(out), bundle.body);
}

TEST_F(DeliveryTest, EachRefusalHasItsStatus) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  v1::Request a = CompletedAccess(14);
  v1::Request b = CompletedAccess(15);
  std::string url = CreateUrl(a.id(), SubjectToken(14));
  ASSERT_FALSE(url.empty());

  // Tampered signature: 403.
  v1::DownloadBundleRequest parts = DownloadRequestFromUrl(url);
  std::string tampered = absl::StrReplaceAll(
      url, {{parts.sig(), std::string(parts.sig().size(), 'A')}});
  Reply forged = cluster_->Get(tampered);
  EXPECT_EQ(forged.status, 403) << forged.body;
  EXPECT_EQ(forged.json.value("code", 0), 7);  // PERMISSION_DENIED
  EXPECT_THAT(forged.json.value("message", ""), StartsWith("sig:"));

  // Request A's URL used for request B: 403.
  Reply other = cluster_->Get(absl::StrReplaceAll(url, {{a.id(), b.id()}}));
  EXPECT_EQ(other.status, 403) << other.body;

  // Malformed: 400 naming the parameter.
  Reply malformed =
      cluster_->Get(absl::StrCat("/v1/downloads/", a.id(), "?expires=1"));
  EXPECT_EQ(malformed.status, 400) << malformed.body;
  EXPECT_THAT(malformed.json.value("message", ""), StartsWith("generation:"));

  // A subject's token reaches only its own request: 404 for another's, as
  // for an unknown id; and may not revoke.
  Reply not_theirs = cluster_->Post(
      absl::StrCat("/v1/requests/", b.id(), ":createDownloadUrl"),
      SubjectToken(14));
  EXPECT_EQ(not_theirs.status, 404) << not_theirs.body;
  EXPECT_EQ(not_theirs.json.value("message", ""),
            absl::StrCat("request ", b.id(), " not found"));
  Reply subject_revoke = cluster_->Post(
      absl::StrCat("/v1/requests/", a.id(), ":revokeDownloadUrls"),
      SubjectToken(14), R"({"reason":"mine"})");
  EXPECT_EQ(subject_revoke.status, 403) << subject_revoke.body;

  // Revoked through the gateway by an operator token: 410 Gone for the old
  // URL, a new one works.
  ASSERT_EQ(cluster_->Get(url).status, 200);
  Reply revoked = cluster_->Post(
      absl::StrCat("/v1/requests/", a.id(), ":revokeDownloadUrls"),
      AdminToken(), R"({"reason":"link sent to a wrong address"})");
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_EQ(revoked.json.value("generation", 0), 1);
  Reply gone = cluster_->Get(url);
  EXPECT_EQ(gone.status, 410) << gone.body;
  EXPECT_THAT(gone.json.value("message", ""), HasSubstr("revocation"));
  std::string fresh = CreateUrl(a.id(), SubjectToken(14));
  EXPECT_EQ(cluster_->Get(fresh).status, 200);
  std::vector<v1::Event> events;
  EventKinds(a.id(), &events);
  bool audited = false;
  for (const v1::Event& event : events) {
    if (event.kind() == "download_urls_revoked") {
      audited = true;
      EXPECT_EQ(event.actor(), "ops-1");
      EXPECT_EQ(event.note(), "link sent to a wrong address");
    }
  }
  EXPECT_TRUE(audited);

  // Roles under mutual TLS: a service may issue a URL but not download.
  auto service = cluster_->StubAs("billing");
  v1::CreateDownloadUrlRequest create;
  create.set_id(a.id());
  v1::CreateDownloadUrlResponse issued;
  auto create_context = Context();
  grpc::Status issued_status =
      service->CreateDownloadUrl(create_context.get(), create, &issued);
  ASSERT_TRUE(issued_status.ok()) << issued_status.error_message();
  auto download_context = Context();
  auto reader = service->DownloadBundle(download_context.get(),
                                        DownloadRequestFromUrl(issued.url()));
  v1::DownloadBundleResponse message;
  EXPECT_FALSE(reader->Read(&message));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // The operator may, and reads the same bytes.
  auto operator_stub = cluster_->StubAs("operator");
  absl::StatusOr<std::string> bytes =
      DownloadBundleBytes(*operator_stub, a.id());
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(Sha256Hex(*bytes), a.bundle().sha256());
}

TEST_F(DeliveryTest, ExpiredUrlIsGone) {
  ASSERT_NO_FATAL_FAILURE(StartCluster({"--download_url_ttl=2s"}));
  v1::Request done = CompletedAccess(16);
  Reply created = cluster_->Post(
      absl::StrCat("/v1/requests/", done.id(), ":createDownloadUrl"),
      SubjectToken(16));
  ASSERT_EQ(created.status, 200) << created.body;
  std::string url = created.json.value("url", "");
  int64_t expires = DownloadRequestFromUrl(url).expires();
  ASSERT_GT(expires, 0);
  // Wait on the clock for the expiry the URL carries (dsard checks the same
  // wall clock), then one more poll.
  while (absl::Now() < absl::FromUnixSeconds(expires)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  Reply gone = cluster_->Get(url);
  EXPECT_EQ(gone.status, 410) << gone.body;
  EXPECT_THAT(gone.json.value("message", ""), StartsWith("expires:"));
  EXPECT_THAT(gone.json.value("message", ""), HasSubstr("expired"));
}

TEST_F(DeliveryTest, OverHttpsTheGatewayServesRequestsAndDownloads) {
  // On 0.0.0.0 without --allow_plaintext_non_loopback: TLS makes it
  // acceptable.
  ASSERT_NO_FATAL_FAILURE(StartCluster({}, /*gateway_https=*/true));
  v1::Request done = CompletedAccess(17);
  ASSERT_FALSE(done.bundle().sha256().empty());

  // A bearer-token call and a signed-URL download, both over HTTPS.
  Reply read =
      cluster_->Get(absl::StrCat("/v1/requests/", done.id()), SubjectToken(17));
  ASSERT_EQ(read.status, 200) << read.body << cluster_->Logs();
  EXPECT_EQ(read.json.value("status", ""), "COMPLETED");
  std::string url = CreateUrl(done.id(), SubjectToken(17));
  ASSERT_FALSE(url.empty());
  Reply bundle = cluster_->Get(url);
  ASSERT_EQ(bundle.status, 200) << bundle.body << cluster_->Logs();
  EXPECT_EQ(static_cast<int64_t>(bundle.body.size()),
            done.bundle().size_bytes());
  EXPECT_EQ(Sha256Hex(bundle.body), done.bundle().sha256());

  // Plain HTTP to the same port gets no answer: the connection is dropped
  // when the TLS handshake does not come.
  httplib::Client plain("127.0.0.1", cluster_->gateway_port());
  plain.set_read_timeout(10, 0);
  httplib::Result refused = plain.Get("/healthz");
  EXPECT_FALSE(refused) << "plain HTTP answered " << refused->status;
  // A client that trusts only the system's CAs refuses the certificate.
  httplib::Client untrusting(
      absl::StrCat("https://127.0.0.1:", cluster_->gateway_port()));
  untrusting.enable_server_certificate_verification(true);
  httplib::Result unverified = untrusting.Get("/healthz");
  EXPECT_FALSE(unverified);
  if (!unverified) {
    EXPECT_EQ(unverified.error(), httplib::Error::SSLServerVerification);
  }
}

}  // namespace
}  // namespace dsar::testing
