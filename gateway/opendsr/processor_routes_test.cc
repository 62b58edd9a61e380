// The OpenDSR processor endpoints against a fake dsard: what each route
// asks dsard, what it answers, that every answer is signed by the
// processor's key, and that bad input is a 400 naming the field before
// dsard is asked anything.

#include "gateway/opendsr/processor_routes.h"

#include <stdlib.h>

#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "dsar/v1/opendsr.pb.h"
#include "dsar/v1/requests.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "opendsr/signature.h"
#include "tests/testing/test_pki.h"

namespace dsar::gateway::opendsr {
namespace {

using ::dsar::testing::TestPki;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kDomain[] = "dsar.processor.test";
constexpr char kPublicUrl[] = "https://dsar.processor.test:8443";
constexpr char kUuid[] = "a7551968-d5d6-44b2-9831-815ac9017798";

json ValidCreate() {
  return {{"subject_request_id", kUuid},
          {"subject_request_type", "erasure"},
          {"regulation", "gdpr"},
          {"submitted_time", "2026-11-01T15:00:00Z"},
          {"api_version", "2.0"},
          {"subject_identities",
           json::array({{{"identity_type", "email"},
                         {"identity_value", "person1@example.com"},
                         {"identity_format", "raw"}}})},
          {"status_callback_urls",
           json::array({"https://controller.test/opendsr/callbacks"})}};
}

class ProcessorRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/opendsr_processor_routes_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    absl::StatusOr<TestPki> pki = TestPki::Create(dir_);
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_.emplace(*std::move(pki));
    absl::StatusOr<::dsar::testing::IssuedCertificate> signing =
        pki_->Issue("processor", {kDomain});
    ASSERT_TRUE(signing.ok()) << signing.status();
    signing_ = *signing;
    ProcessorOptions options;
    options.public_url = kPublicUrl;
    options.domain = kDomain;
    options.key_pem = signing_.key_pem;
    options.cert_pem = signing_.cert_pem;
    options.callback_hosts = {"controller.test"};
    routes_ = std::make_unique<ProcessorRoutes>(
        options, [this](const std::string& method, const std::string& request,
                        const std::string& actor) {
          calls_.push_back(method);
          actors_.push_back(actor);
          requests_[method] = request;
          return Answer(method);
        });
    caller_.subject = "controller-7";
    caller_.scopes = {kControllerScope};
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // What the fake dsard answers `method`.
  absl::StatusOr<std::string> Answer(const std::string& method) {
    if (!backend_error_.ok()) return backend_error_;
    if (method == "/dsar.v1.DsarService/CreateDownloadUrl") {
      v1::CreateDownloadUrlResponse url;
      url.set_url("/v1/downloads/dsr_1?sig=x");
      return url.SerializeAsString();
    }
    return status_.SerializeAsString();
  }

  HttpReply Send(const std::string& method, const std::string& path,
                 const std::string& body = "") {
    std::optional<RouteProvider::Match> match = routes_->Find(method, path);
    EXPECT_TRUE(match.has_value()) << method << " " << path;
    if (!match) return HttpReply{};
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    return routes_->Serve(*match, request, caller_);
  }

  // The reply's signature verifies with the processor's certificate.
  void ExpectSigned(const HttpReply& reply) {
    std::map<std::string, std::string> headers(reply.headers.begin(),
                                               reply.headers.end());
    EXPECT_EQ(headers[dsar::opendsr::kDomainHeader], kDomain);
    absl::StatusOr<dsar::opendsr::ProcessorCertificate> certificate =
        dsar::opendsr::ProcessorCertificate::Verify(signing_.cert_pem,
                                                    pki_->ca_file(), kDomain);
    ASSERT_TRUE(certificate.ok()) << certificate.status();
    EXPECT_TRUE(certificate
                    ->CheckSignature(reply.body,
                                     headers[dsar::opendsr::kSignatureHeader])
                    .ok())
        << reply.body;
  }

  std::string dir_;
  std::optional<TestPki> pki_;
  ::dsar::testing::IssuedCertificate signing_;
  std::unique_ptr<ProcessorRoutes> routes_;
  Caller caller_;
  std::vector<std::string> calls_;
  std::vector<std::string> actors_;
  std::map<std::string, std::string> requests_;
  v1::ProcessorRequestStatus status_;
  absl::Status backend_error_;
};

TEST_F(ProcessorRoutesTest, DiscoveryIsPublicSignedAndPointsAtTheCertificate) {
  std::optional<RouteProvider::Match> match =
      routes_->Find("GET", "/opendsr/v1/discovery");
  ASSERT_TRUE(match.has_value());
  EXPECT_TRUE(match->authenticates_itself);
  HttpReply reply = Send("GET", "/opendsr/v1/discovery");
  EXPECT_EQ(reply.status, 200);
  ExpectSigned(reply);
  json body = json::parse(reply.body);
  EXPECT_EQ(body["api_version"], "2.0");
  EXPECT_EQ(body["processor_certificate"],
            std::string(kPublicUrl) + "/opendsr/v1/processor-certificate.pem");
  EXPECT_EQ(body["supported_subject_request_types"],
            json::array({"access", "portability", "erasure"}));
  HttpReply certificate = Send("GET", "/opendsr/v1/processor-certificate.pem");
  EXPECT_EQ(certificate.status, 200);
  EXPECT_EQ(certificate.body, signing_.cert_pem);
  EXPECT_TRUE(calls_.empty());
}

TEST_F(ProcessorRoutesTest, RequestRoutesNeedTheControllerScope) {
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{
           {"POST", "/opendsr/v1/requests"},
           {"GET", std::string("/opendsr/v1/requests/") + kUuid},
           {"DELETE", std::string("/opendsr/v1/requests/") + kUuid}}) {
    std::optional<RouteProvider::Match> match = routes_->Find(method, path);
    ASSERT_TRUE(match.has_value()) << path;
    EXPECT_FALSE(match->authenticates_itself);
    EXPECT_EQ(match->required_scope, kControllerScope);
  }
  EXPECT_FALSE(routes_->Find("PUT", "/opendsr/v1/requests").has_value());
  EXPECT_FALSE(routes_->Find("GET", "/opendsr/v1/requests/a/b").has_value());
}

TEST_F(ProcessorRoutesTest, CreateAsksDsardForTheControllersRequest) {
  status_.set_controller_id("controller-7");
  status_.set_subject_request_id(kUuid);
  status_.mutable_expected_completion_time()->set_seconds(1800000000);
  status_.mutable_received_time()->set_seconds(1790000000);
  const std::string body = ValidCreate().dump();
  HttpReply reply = Send("POST", "/opendsr/v1/requests", body);
  ASSERT_EQ(reply.status, 201) << reply.body;
  ExpectSigned(reply);
  json answer = json::parse(reply.body);
  EXPECT_EQ(answer["subject_request_id"], kUuid);
  EXPECT_EQ(answer["controller_id"], "controller-7");
  EXPECT_EQ(answer["expected_completion_time"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(answer["encoded_request"], absl::Base64Escape(body));

  v1::CreateProcessorRequestRequest sent;
  ASSERT_TRUE(sent.ParseFromString(
      requests_["/dsar.v1.OpenDsrProcessorService/CreateProcessorRequest"]));
  EXPECT_EQ(sent.controller_id(), "controller-7");  // From the token.
  EXPECT_EQ(sent.type(), v1::ERASURE);
  EXPECT_EQ(sent.regulation(), "GDPR");
  ASSERT_EQ(sent.identities_size(), 1);
  EXPECT_EQ(sent.identities(0).type(), v1::EMAIL);
  EXPECT_EQ(sent.identities(0).value(), "person1@example.com");
  EXPECT_EQ(sent.submitted_time().seconds(), 1793545200);
  EXPECT_EQ(sent.status_callback_urls(0),
            "https://controller.test/opendsr/callbacks");
  EXPECT_EQ(actors_.back(), "controller-7");
}

TEST_F(ProcessorRoutesTest, IdentityTypesMapOntoDsarsKinds) {
  json request = ValidCreate();
  request["subject_identities"] =
      json::array({{{"identity_type", "controller_customer_id"},
                    {"identity_value", "c-42"},
                    {"identity_format", "raw"}},
                   {{"identity_type", "ios_advertising_id"},
                    {"identity_value", "idfa-1"},
                    {"identity_format", "raw"}}});
  ASSERT_EQ(Send("POST", "/opendsr/v1/requests", request.dump()).status, 201);
  v1::CreateProcessorRequestRequest sent;
  ASSERT_TRUE(sent.ParseFromString(
      requests_["/dsar.v1.OpenDsrProcessorService/CreateProcessorRequest"]));
  ASSERT_EQ(sent.identities_size(), 2);
  EXPECT_EQ(sent.identities(0).type(), v1::USER_ID);
  EXPECT_EQ(sent.identities(1).type(), v1::CUSTOM);
  EXPECT_EQ(sent.identities(1).custom_type(), "ios_advertising_id");
}

TEST_F(ProcessorRoutesTest, BadInputIsASigned400NamingTheField) {
  struct Case {
    std::string field;
    json value;
    std::string named;
  };
  std::vector<Case> cases = {
      {"subject_request_type", "rectification", "subject_request_type"},
      {"regulation", "lgpd", "regulation"},
      {"submitted_time", "yesterday", "submitted_time"},
      {"api_version", "1.0", "api_version"},
      {"subject_identities", json::array(), "subject_identities"},
      {"subject_identities",
       json::array({{{"identity_type", "email"},
                     {"identity_value", "x@example.com"},
                     {"identity_format", "sha256"}}}),
       "subject_identities[0].identity_format"},
      {"status_callback_urls", json::array({"http://controller.test/cb"}),
       "status_callback_urls[0]"},
      {"status_callback_urls", json::array({"https://169.254.169.254/x"}),
       "status_callback_urls[0]: its host is not one"},
  };
  for (const Case& c : cases) {
    json request = ValidCreate();
    request[c.field] = c.value;
    HttpReply reply = Send("POST", "/opendsr/v1/requests", request.dump());
    EXPECT_EQ(reply.status, 400) << c.field;
    ExpectSigned(reply);
    json answer = json::parse(reply.body);
    EXPECT_EQ(answer["error"]["code"], 400);
    EXPECT_THAT(answer["error"]["message"].get<std::string>(),
                HasSubstr(c.named));
  }
  json missing = ValidCreate();
  missing.erase("subject_request_id");
  EXPECT_EQ(Send("POST", "/opendsr/v1/requests", missing.dump()).status, 400);
  EXPECT_EQ(Send("POST", "/opendsr/v1/requests", "[1,").status, 400);
  EXPECT_TRUE(calls_.empty()) << "dsard was asked about bad input";
}

TEST_F(ProcessorRoutesTest, DsardsRefusalsKeepTheirMeaning) {
  backend_error_ = absl::AlreadyExistsError(
      "idempotency_key: already used for a different request");
  EXPECT_EQ(Send("POST", "/opendsr/v1/requests", ValidCreate().dump()).status,
            409);
  backend_error_ = absl::NotFoundError("no request from this controller");
  HttpReply missing = Send("GET", std::string("/opendsr/v1/requests/") + kUuid);
  EXPECT_EQ(missing.status, 404);
  ExpectSigned(missing);
  backend_error_ = absl::FailedPreconditionError("already completed");
  EXPECT_EQ(Send("DELETE", std::string("/opendsr/v1/requests/") + kUuid).status,
            400);
  backend_error_ = absl::UnavailableError("dsard is down");
  EXPECT_EQ(Send("GET", std::string("/opendsr/v1/requests/") + kUuid).status,
            503);
}

TEST_F(ProcessorRoutesTest, StatusOfACompletedAccessCarriesAFreshResultsUrl) {
  status_.set_controller_id("controller-7");
  status_.set_subject_request_id(kUuid);
  status_.set_request_status("completed");
  status_.set_results_count(12);
  status_.set_request_id("dsr_1");
  status_.set_has_results(true);
  HttpReply reply = Send("GET", std::string("/opendsr/v1/requests/") + kUuid);
  ASSERT_EQ(reply.status, 200) << reply.body;
  ExpectSigned(reply);
  json body = json::parse(reply.body);
  EXPECT_EQ(body["request_status"], "completed");
  EXPECT_EQ(body["results_count"], 12);
  EXPECT_EQ(body["results_url"],
            std::string(kPublicUrl) + "/v1/downloads/dsr_1?sig=x");
  v1::ProcessorRequestRef ref;
  ASSERT_TRUE(ref.ParseFromString(
      requests_["/dsar.v1.OpenDsrProcessorService/GetProcessorRequest"]));
  EXPECT_EQ(ref.controller_id(), "controller-7");
  EXPECT_EQ(ref.subject_request_id(), kUuid);
}

TEST_F(ProcessorRoutesTest, CancelAnswers202Signed) {
  status_.set_controller_id("controller-7");
  status_.set_subject_request_id(kUuid);
  HttpReply reply =
      Send("DELETE", std::string("/opendsr/v1/requests/") + kUuid);
  ASSERT_EQ(reply.status, 202) << reply.body;
  ExpectSigned(reply);
  EXPECT_EQ(json::parse(reply.body)["subject_request_id"], kUuid);
  EXPECT_EQ(calls_.back(),
            "/dsar.v1.OpenDsrProcessorService/CancelProcessorRequest");
}

}  // namespace
}  // namespace dsar::gateway::opendsr
