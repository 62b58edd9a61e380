#include "opendsr/signature.h"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_pki.h"

namespace dsar::opendsr {
namespace {

using ::dsar::testing::IssuedCertificate;
using ::dsar::testing::TestPki;
using ::testing::HasSubstr;

class SignatureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/opendsr_signature_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    absl::StatusOr<TestPki> pki = TestPki::Create(dir_);
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_.emplace(*std::move(pki));
    absl::StatusOr<IssuedCertificate> signing =
        pki_->Issue("signing", {"opendsr.processor.test"});
    ASSERT_TRUE(signing.ok()) << signing.status();
    signing_ = *signing;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::optional<TestPki> pki_;
  IssuedCertificate signing_;
};

TEST_F(SignatureTest, ASignedBodyVerifiesAndAChangedOneDoesNot) {
  absl::StatusOr<ProcessorCertificate> certificate =
      ProcessorCertificate::Verify(signing_.cert_pem, pki_->ca_file(),
                                   "OpenDSR.Processor.test");
  ASSERT_TRUE(certificate.ok()) << certificate.status();
  EXPECT_EQ(certificate->domain(), "opendsr.processor.test");
  const std::string body = R"({"request_status":"completed"})";
  absl::StatusOr<std::string> signature = SignBody(body, signing_.key_pem);
  ASSERT_TRUE(signature.ok()) << signature.status();
  EXPECT_TRUE(certificate->CheckSignature(body, *signature).ok());
  // Folded over lines as in the specification's examples.
  std::string folded = *signature;
  folded.insert(20, "\r\n ");
  EXPECT_TRUE(certificate->CheckSignature(body, folded).ok());

  absl::Status changed = certificate->CheckSignature(
      R"({"request_status":"cancelled"})", *signature);
  EXPECT_EQ(changed.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(changed.message()), HasSubstr("does not verify"));
  EXPECT_EQ(certificate->CheckSignature(body, "").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(certificate->CheckSignature(body, "!!not base64!!").code(),
            absl::StatusCode::kInvalidArgument);
  // Another key's signature over the same body.
  absl::StatusOr<IssuedCertificate> other =
      pki_->Issue("other", {"opendsr.processor.test"});
  ASSERT_TRUE(other.ok());
  absl::StatusOr<std::string> foreign = SignBody(body, other->key_pem);
  ASSERT_TRUE(foreign.ok());
  EXPECT_FALSE(certificate->CheckSignature(body, *foreign).ok());
}

TEST_F(SignatureTest, ACertificateMustChainToTheCaAndNameTheDomain) {
  EXPECT_EQ(ProcessorCertificate::Verify(signing_.cert_pem, pki_->ca_file(),
                                         "opendsr.elsewhere.test")
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  std::filesystem::create_directory(dir_ + "/other");
  absl::StatusOr<TestPki> other = TestPki::Create(dir_ + "/other", "other");
  ASSERT_TRUE(other.ok());
  absl::StatusOr<ProcessorCertificate> unchained = ProcessorCertificate::Verify(
      signing_.cert_pem, other->ca_file(), "opendsr.processor.test");
  EXPECT_EQ(unchained.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(unchained.status().message()),
              HasSubstr("does not verify against"));
  // The CA itself is self-signed: not a processor certificate for a domain.
  EXPECT_EQ(ProcessorCertificate::Verify(pki_->ca_pem(), pki_->ca_file(),
                                         "opendsr.processor.test")
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ProcessorCertificate::Verify("not a certificate", pki_->ca_file(),
                                         "opendsr.processor.test")
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(
      ProcessorCertificate::Verify(signing_.cert_pem, dir_ + "/missing.pem",
                                   "opendsr.processor.test")
          .status()
          .code(),
      absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dsar::opendsr
