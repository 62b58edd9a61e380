// POST /opendsr/v1/callbacks checks a callback as the OpenDSR security
// guidelines list, against a test processor's discovery and certificate.

#include "gateway/opendsr/callback_route.h"

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "opendsr/signature.h"
#include "tests/testing/opendsr_processor.h"
#include "tests/testing/test_pki.h"

namespace dsar::gateway::opendsr {
namespace {

using ::dsar::testing::OpenDsrProcessor;
using ::dsar::testing::TestPki;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kCallbackUrl[] = "https://dsar.example.com/opendsr/v1/callbacks";
constexpr char kDomain[] = "opendsr.processor.test";

class CallbackRouteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/opendsr_callback_route_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    absl::StatusOr<TestPki> pki = TestPki::Create(dir_);
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_.emplace(*std::move(pki));
    absl::StatusOr<std::unique_ptr<OpenDsrProcessor>> processor =
        OpenDsrProcessor::Start({}, *pki_, dir_);
    ASSERT_TRUE(processor.ok()) << processor.status();
    processor_ = *std::move(processor);
  }
  void TearDown() override {
    processor_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The route over an inventory holding the processor as store "billing",
  // trusting `signing_ca` (default: the test CA).
  std::unique_ptr<CallbackRoute> Route(std::string signing_ca = "") {
    std::string yaml = absl::StrCat(
        "stores:\n  - name: billing\n    kind: opendsr\n"
        "    identity_fields: {email: email}\n    opendsr:\n      url: ",
        processor_->base_url(), "\n      processor_domain: ", kDomain,
        "\n      signing_ca: ",
        signing_ca.empty() ? pki_->ca_file() : signing_ca,
        "\n      tls_ca: ", pki_->ca_file(),
        "\n      status_callback_url: ", kCallbackUrl, "\n");
    absl::StatusOr<Inventory> inventory = Inventory::Parse(yaml, dir_);
    EXPECT_TRUE(inventory.ok()) << inventory.status();
    return std::make_unique<CallbackRoute>(
        std::make_shared<const Inventory>(*std::move(inventory)),
        [this](const v1::RecordProcessorStatusRequest& record) {
          forwarded_.push_back(record);
          return forward_answer_;
        });
  }

  static json Callback() {
    return {{"controller_id", "c-1"},
            {"expected_completion_time", "2030-01-01T00:00:00Z"},
            {"status_callback_url", kCallbackUrl},
            {"subject_request_id", "a7551968-d5d6-44b2-9831-815ac9017798"},
            {"request_status", "completed"},
            {"results_count", 3}};
  }

  // A callback as the processor sends it: `body` signed with its key.
  HttpRequest Signed(const std::string& body,
                     const std::string& domain = kDomain) {
    absl::StatusOr<std::string> signature =
        dsar::opendsr::SignBody(body, processor_->signing_key_pem());
    EXPECT_TRUE(signature.ok());
    HttpRequest request;
    request.method = "POST";
    request.path = kCallbackPath;
    request.body = body;
    request.headers = {{"X-OpenDSR-Signature", *signature},
                       {"X-OpenDSR-Processor-Domain", domain},
                       {"Content-Type", "application/json"}};
    return request;
  }

  HttpReply Serve(const CallbackRoute& route, const HttpRequest& request) {
    std::optional<RouteProvider::Match> match =
        route.Find(request.method, request.path);
    EXPECT_TRUE(match.has_value());
    return route.Serve(*match, request, Caller{});
  }

  std::string dir_;
  std::optional<TestPki> pki_;
  std::unique_ptr<OpenDsrProcessor> processor_;
  std::vector<v1::RecordProcessorStatusRequest> forwarded_;
  absl::Status forward_answer_ = absl::OkStatus();
};

TEST_F(CallbackRouteTest, ServesOnlyPostToTheCallbackPathWithoutAToken) {
  auto route = Route();
  std::optional<RouteProvider::Match> match =
      route->Find("POST", "/opendsr/v1/callbacks");
  ASSERT_TRUE(match.has_value());
  EXPECT_TRUE(match->authenticates_itself);
  EXPECT_FALSE(route->Find("GET", "/opendsr/v1/callbacks").has_value());
  EXPECT_FALSE(route->Find("POST", "/opendsr/v1/other").has_value());
}

TEST_F(CallbackRouteTest, AValidCallbackIsForwardedAndAccepted) {
  auto route = Route();
  HttpReply reply = Serve(*route, Signed(Callback().dump()));
  EXPECT_EQ(reply.status, 202) << reply.body;
  ASSERT_EQ(forwarded_.size(), 1u);
  EXPECT_EQ(forwarded_[0].processor_domain(), kDomain);
  EXPECT_EQ(forwarded_[0].subject_request_id(),
            "a7551968-d5d6-44b2-9831-815ac9017798");
  EXPECT_EQ(forwarded_[0].request_status(), "completed");
  EXPECT_EQ(forwarded_[0].results_count(), 3);
}

TEST_F(CallbackRouteTest, ACallbackAboutNoTaskInProgressIsAcceptedToo) {
  forward_answer_ = absl::NotFoundError("no task");
  auto route = Route();
  EXPECT_EQ(Serve(*route, Signed(Callback().dump())).status, 202);
}

TEST_F(CallbackRouteTest, DsardUnreachableAsksTheProcessorToRetry) {
  forward_answer_ = absl::UnavailableError("dsard down");
  auto route = Route();
  EXPECT_EQ(Serve(*route, Signed(Callback().dump())).status, 503);
}

TEST_F(CallbackRouteTest, ADomainNotInTheInventoryIs401) {
  auto route = Route();
  HttpReply reply =
      Serve(*route, Signed(Callback().dump(), "opendsr.stranger.test"));
  EXPECT_EQ(reply.status, 401) << reply.body;
  HttpRequest unnamed = Signed(Callback().dump());
  unnamed.headers.erase(unnamed.headers.begin() + 1);
  EXPECT_EQ(Serve(*route, unnamed).status, 401);
  EXPECT_TRUE(forwarded_.empty());
}

TEST_F(CallbackRouteTest, ACertificateThatDoesNotChainToTheCaIs401) {
  std::filesystem::create_directory(dir_ + "/other");
  absl::StatusOr<TestPki> other = TestPki::Create(dir_ + "/other", "other");
  ASSERT_TRUE(other.ok());
  auto route = Route(other->ca_file());
  HttpReply reply = Serve(*route, Signed(Callback().dump()));
  EXPECT_EQ(reply.status, 401) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr("certificate"));
  EXPECT_TRUE(forwarded_.empty());
}

TEST_F(CallbackRouteTest, ACertificateOfAnotherDomainIs401) {
  absl::StatusOr<testing::IssuedCertificate> other =
      pki_->Issue("evil", {"opendsr.evil.test"});
  ASSERT_TRUE(other.ok());
  processor_->SignWith(*other);
  auto route = Route();
  HttpReply reply = Serve(*route, Signed(Callback().dump()));
  EXPECT_EQ(reply.status, 401) << reply.body;
  EXPECT_TRUE(forwarded_.empty());
}

TEST_F(CallbackRouteTest, ABadSignatureIs400) {
  auto route = Route();
  HttpRequest tampered = Signed(Callback().dump());
  tampered.body.replace(tampered.body.find("completed"), 9, "cancelled");
  HttpReply reply = Serve(*route, tampered);
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr("does not verify"));
  HttpRequest unsigned_callback = Signed(Callback().dump());
  unsigned_callback.headers.erase(unsigned_callback.headers.begin());
  EXPECT_EQ(Serve(*route, unsigned_callback).status, 400);
  EXPECT_TRUE(forwarded_.empty());
}

TEST_F(CallbackRouteTest, ASignedBodyThatIsNotACallbackIs400) {
  auto route = Route();
  EXPECT_EQ(Serve(*route, Signed("{not json")).status, 400);
  EXPECT_EQ(Serve(*route, Signed(R"({"request_status":"completed"})")).status,
            400);
  EXPECT_TRUE(forwarded_.empty());
}

TEST_F(CallbackRouteTest, ACallbackForAnotherEndpointIs403) {
  auto route = Route();
  json callback = Callback();
  callback["status_callback_url"] = "https://elsewhere.example/callbacks";
  HttpReply reply = Serve(*route, Signed(callback.dump()));
  EXPECT_EQ(reply.status, 403) << reply.body;
  EXPECT_TRUE(forwarded_.empty());
}

}  // namespace
}  // namespace dsar::gateway::opendsr
