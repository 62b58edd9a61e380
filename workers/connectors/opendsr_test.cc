// The opendsr connector against the test processor
// (tests/testing/opendsr_processor.h) on loopback HTTPS.

#include "workers/connectors/opendsr.h"

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <regex>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/connector_errors.h"
#include "nlohmann/json.hpp"
#include "tests/testing/opendsr_processor.h"
#include "tests/testing/test_pki.h"

namespace dsar {
namespace {

using ::dsar::testing::OpenDsrProcessor;
using ::dsar::testing::TestPki;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class OpenDsrConnectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/opendsr_connector_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    absl::StatusOr<TestPki> pki = TestPki::Create(dir_);
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_.emplace(*std::move(pki));
    options_.records["ann@example.com"] = {
        {{"invoice", "INV-1"}, {"amount", 12}},
        {{"invoice", "INV-2"}, {"amount", 30}}};
  }
  void TearDown() override {
    processor_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartProcessor() {
    absl::StatusOr<std::unique_ptr<OpenDsrProcessor>> started =
        OpenDsrProcessor::Start(options_, *pki_, dir_);
    ASSERT_TRUE(started.ok()) << started.status();
    processor_ = *std::move(started);
  }

  // The store as the inventory describes it, pointing at the processor;
  // `extra` is appended to its opendsr block.
  StoreSpec Store(const std::string& signing_ca = "",
                  const std::string& extra = "") {
    std::string yaml = absl::StrCat(
        "stores:\n  - name: billing\n    kind: opendsr\n    opendsr:\n"
        "      url: ",
        processor_->base_url(),
        "\n      processor_domain: opendsr.processor.test\n"
        "      signing_ca: ",
        signing_ca.empty() ? pki_->ca_file() : signing_ca,
        "\n      tls_ca: ", pki_->ca_file(), "\n      poll_interval_ms: 10\n",
        extra,
        "    identity_fields: {email: email, user_id: controller_customer_id, "
        "phone: android_id}\n");
    absl::StatusOr<Inventory> inventory = Inventory::Parse(yaml, dir_);
    EXPECT_TRUE(inventory.ok()) << inventory.status();
    return inventory->stores()[0];
  }

  std::unique_ptr<OpenDsrConnector> Connector(const StoreSpec& store) {
    absl::StatusOr<std::unique_ptr<OpenDsrConnector>> connector =
        OpenDsrConnector::Create(store, &stop_);
    EXPECT_TRUE(connector.ok()) << connector.status();
    return *std::move(connector);
  }

  static OpenDsrTask Task(TaskOperation operation) {
    OpenDsrTask task;
    task.request_id = "req-1";
    task.operation = operation;
    task.request_right =
        operation == TaskOperation::kErase ? "erasure" : "access";
    task.identities = {{"email", "ann@example.com"}, {"user_id", "u-7"}};
    return task;
  }

  std::string dir_;
  std::optional<TestPki> pki_;
  OpenDsrProcessor::Options options_;
  std::unique_ptr<OpenDsrProcessor> processor_;
  std::atomic<bool> stop_{false};
};

TEST_F(OpenDsrConnectorTest, SubjectRequestIdIsAStableUuidV4PerOperation) {
  std::string id = OpenDsrConnector::SubjectRequestId("req-1", "billing",
                                                      TaskOperation::kErase);
  EXPECT_TRUE(std::regex_match(
      id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                     "[0-9a-f]{12}")))
      << id;
  EXPECT_EQ(id, OpenDsrConnector::SubjectRequestId("req-1", "billing",
                                                   TaskOperation::kErase));
  EXPECT_NE(id, OpenDsrConnector::SubjectRequestId("req-1", "billing",
                                                   TaskOperation::kExport));
  EXPECT_NE(id, OpenDsrConnector::SubjectRequestId("req-1", "crm",
                                                   TaskOperation::kErase));
  EXPECT_NE(id, OpenDsrConnector::SubjectRequestId("req-2", "billing",
                                                   TaskOperation::kErase));
}

TEST_F(OpenDsrConnectorTest, AccessExportsTheResultsOnceCompleted) {
  options_.polls_before_completion = 3;
  StartProcessor();
  auto connector = Connector(Store());
  StringSink sink;
  absl::StatusOr<ConnectorResult> result =
      connector->Run(Task(TaskOperation::kExport), nullptr, &sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 2);
  json document = json::parse(sink.text());
  EXPECT_EQ(document["store"], "billing");
  ASSERT_EQ(document["records"].size(), 2u);
  EXPECT_EQ(document["records"][0]["collection"], "billing");
  EXPECT_EQ(document["records"][1]["data"]["invoice"], "INV-2");

  json sent = processor_->last_request();
  EXPECT_EQ(sent["subject_request_type"], "access");
  EXPECT_EQ(sent["regulation"], "gdpr");
  EXPECT_EQ(sent["subject_request_id"],
            OpenDsrConnector::SubjectRequestId("req-1", "billing",
                                               TaskOperation::kExport));
  // Identity keys become the OpenDSR types the inventory maps them to.
  EXPECT_EQ(sent["subject_identities"], json::parse(R"([
      {"identity_type":"email","identity_value":"ann@example.com","identity_format":"raw"},
      {"identity_type":"controller_customer_id","identity_value":"u-7","identity_format":"raw"}
    ])"));
  EXPECT_FALSE(sent.contains("status_callback_urls"));
  EXPECT_EQ(processor_->status_of(sent["subject_request_id"]), "completed");
}

TEST_F(OpenDsrConnectorTest, ARetriedTaskReattachesToTheSameProcessorRequest) {
  options_.fail_first_post = true;
  StartProcessor();
  auto connector = Connector(Store());
  // The first attempt meets the 503: transient, nothing was made.
  absl::StatusOr<ConnectorResult> first =
      connector->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(ConnectorErrorName(first.status()), kErrorUnavailable);
  EXPECT_EQ(processor_->requests_created(), 0);
  // The retry makes it; a third run (a worker that died before reporting)
  // re-attaches: the processor answers 409 and the status is read.
  absl::StatusOr<ConnectorResult> second =
      connector->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->record_count, 2);
  absl::StatusOr<ConnectorResult> third =
      Connector(Store())->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->record_count, 2);
  EXPECT_EQ(processor_->posts(), 3);
  EXPECT_THAT(processor_->request_ids(),
              ElementsAre(OpenDsrConnector::SubjectRequestId(
                  "req-1", "billing", TaskOperation::kErase)));
}

TEST_F(OpenDsrConnectorTest, TamperedAnswerIsRefused) {
  StartProcessor();
  auto connector = Connector(Store());
  processor_->TamperWithAnswers(true);
  absl::StatusOr<ConnectorResult> result =
      connector->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ConnectorErrorName(result.status()), kErrorUnverified);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("does not verify"));
}

TEST_F(OpenDsrConnectorTest, TamperedStatusAnswerIsRefused) {
  // The POST verifies; the status answers are changed after signing.
  options_.on_status_poll = [this](const std::string&, int) {
    processor_->TamperWithAnswers(true);
  };
  StartProcessor();
  absl::StatusOr<ConnectorResult> result =
      Connector(Store())->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ConnectorErrorName(result.status()), kErrorUnverified);
  EXPECT_EQ(processor_->requests_created(), 1);
}

TEST_F(OpenDsrConnectorTest, SigningCertificateOfAnotherDomainIsRefused) {
  StartProcessor();
  absl::StatusOr<testing::IssuedCertificate> other =
      pki_->Issue("evil", {"opendsr.evil.test"});
  ASSERT_TRUE(other.ok());
  processor_->SignWith(*other);
  absl::StatusOr<ConnectorResult> result =
      Connector(Store())->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ConnectorErrorName(result.status()), kErrorUnverified);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("not issued to domain \"opendsr.processor.test\""));
  EXPECT_EQ(processor_->posts(), 0);
}

TEST_F(OpenDsrConnectorTest, AnswerNamingAnotherDomainIsRefused) {
  StartProcessor();
  processor_->ClaimDomain("opendsr.evil.test");
  absl::StatusOr<ConnectorResult> result =
      Connector(Store())->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ConnectorErrorName(result.status()), kErrorUnverified);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("opendsr.evil.test"));
}

TEST_F(OpenDsrConnectorTest, SigningCertificateFromAnotherCaIsRefused) {
  StartProcessor();
  std::filesystem::create_directory(dir_ + "/other");
  absl::StatusOr<TestPki> other = TestPki::Create(dir_ + "/other", "other");
  ASSERT_TRUE(other.ok());
  absl::StatusOr<ConnectorResult> result =
      Connector(Store(other->ca_file()))
          ->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ConnectorErrorName(result.status()), kErrorUnverified);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("does not verify against"));
}

TEST_F(OpenDsrConnectorTest, DenialAtCreationNamesTheServicesReason) {
  options_.deny_erasure = OpenDsrProcessor::Denial::kAtCreation;
  StartProcessor();
  absl::StatusOr<ConnectorResult> result =
      Connector(Store())->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ConnectorErrorName(result.status()), kErrorDenied);
  EXPECT_FALSE(IsTransientErrorName(ConnectorErrorName(result.status())));
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("billing (opendsr.processor.test) refused the erasure "
                        "request: legal hold on the subject's invoices"));
}

TEST_F(OpenDsrConnectorTest, DeniedStatusNamesTheServicesReason) {
  options_.deny_erasure = OpenDsrProcessor::Denial::kAsStatus;
  options_.polls_before_completion = 2;
  StartProcessor();
  absl::StatusOr<ConnectorResult> result =
      Connector(Store())->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ConnectorErrorName(result.status()), kErrorDenied);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("denied the erasure request: legal hold"));
}

TEST_F(OpenDsrConnectorTest, AbandonedTaskCancelsThePendingRequest) {
  options_.polls_before_completion = 1000;
  options_.report_in_progress = false;
  std::atomic<bool> abandon{false};
  options_.on_status_poll = [&abandon](const std::string&, int poll) {
    if (poll == 2) abandon = true;
  };
  StartProcessor();
  absl::StatusOr<ConnectorResult> result =
      Connector(Store())->Run(Task(TaskOperation::kErase), &abandon, nullptr);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  const std::string id = OpenDsrConnector::SubjectRequestId(
      "req-1", "billing", TaskOperation::kErase);
  EXPECT_THAT(processor_->deletes(), ElementsAre(id));
  EXPECT_EQ(processor_->status_of(id), "cancelled");
}

TEST_F(OpenDsrConnectorTest, StoppingWorkerLeavesTheRequestForTheNextAttempt) {
  options_.polls_before_completion = 1000;
  options_.report_in_progress = false;
  options_.on_status_poll = [this](const std::string&, int poll) {
    if (poll == 2) stop_ = true;
  };
  StartProcessor();
  absl::StatusOr<ConnectorResult> result =
      Connector(Store())->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(processor_->deletes(), IsEmpty());
}

TEST_F(OpenDsrConnectorTest, RightOrIdentitiesTheServiceLacksAreRefused) {
  options_.request_types = {"erasure"};
  options_.identity_types = {"email"};
  StartProcessor();
  auto connector = Connector(Store());
  StringSink sink;
  absl::StatusOr<ConnectorResult> exported =
      connector->Run(Task(TaskOperation::kExport), nullptr, &sink);
  EXPECT_EQ(ConnectorErrorName(exported.status()), kErrorUnsupported);
  EXPECT_THAT(std::string(exported.status().message()),
              HasSubstr("does not offer \"access\" requests"));
  absl::StatusOr<ConnectorResult> restricted =
      connector->Run(Task(TaskOperation::kRestrict), nullptr, nullptr);
  EXPECT_EQ(ConnectorErrorName(restricted.status()), kErrorUnsupported);
  EXPECT_THAT(std::string(restricted.status().message()),
              HasSubstr("OpenDSR 2.0 defines only access, portability and "
                        "erasure"));
  OpenDsrTask by_phone = Task(TaskOperation::kErase);
  by_phone.identities = {{"phone", "+447700900123"}};
  absl::StatusOr<ConnectorResult> phone =
      connector->Run(by_phone, nullptr, nullptr);
  EXPECT_EQ(ConnectorErrorName(phone.status()), kErrorUnsupported);
  EXPECT_THAT(std::string(phone.status().message()),
              HasSubstr("accepts none of the subject's identities"));
  EXPECT_THAT(std::string(phone.status().message()),
              ::testing::Not(HasSubstr("+447700900123")));
  EXPECT_EQ(processor_->posts(), 0);
}

TEST_F(OpenDsrConnectorTest, DiscoverChecksSupportWithoutMakingARequest) {
  StartProcessor();
  OpenDsrTask task = Task(TaskOperation::kDiscover);
  task.request_right = "erasure";
  absl::StatusOr<ConnectorResult> result =
      Connector(Store())->Run(task, nullptr, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 0);
  EXPECT_EQ(processor_->posts(), 0);
}

TEST_F(OpenDsrConnectorTest, UnreachableServiceIsTransient) {
  StartProcessor();
  StoreSpec store = Store();
  processor_.reset();  // Nothing listens there any more.
  absl::StatusOr<ConnectorResult> result =
      Connector(store)->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ConnectorErrorName(result.status()), kErrorUnavailable);
}

TEST_F(OpenDsrConnectorTest, ClientCertificateIsPresentedForMutualTls) {
  options_.client_ca_file = pki_->ca_file();
  StartProcessor();
  // Without a client certificate the service refuses the handshake.
  absl::StatusOr<ConnectorResult> refused =
      Connector(Store())->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  EXPECT_EQ(ConnectorErrorName(refused.status()), kErrorUnavailable);
  absl::StatusOr<testing::IssuedCertificate> client =
      pki_->Issue("dsar-client", {"dsar.controller.test"});
  ASSERT_TRUE(client.ok()) << client.status();
  StoreSpec store =
      Store("", absl::StrCat("      client_cert: ", client->cert_file,
                             "\n      client_key: ", client->key_file, "\n"));
  absl::StatusOr<ConnectorResult> result =
      Connector(store)->Run(Task(TaskOperation::kErase), nullptr, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 2);
}

}  // namespace
}  // namespace dsar
