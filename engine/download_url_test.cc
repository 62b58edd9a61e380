#include "engine/download_url.h"

#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

DownloadUrlSigner Signer(char fill = 'k') {
  absl::StatusOr<DownloadUrlSigner> signer =
      DownloadUrlSigner::Create(std::string(32, fill));
  EXPECT_TRUE(signer.ok()) << signer.status();
  return *std::move(signer);
}

DownloadToken Issued(const DownloadUrlSigner& signer,
                     const std::string& id = "dsr_0123abcd",
                     uint32_t generation = 0) {
  absl::StatusOr<DownloadToken> token =
      signer.Issue(id, generation, kNow + absl::Hours(1));
  EXPECT_TRUE(token.ok()) << token.status();
  return *std::move(token);
}

TEST(DownloadUrlTest, IssuedTokenVerifiesUntilItsExpiry) {
  DownloadUrlSigner signer = Signer();
  DownloadToken token = Issued(signer);
  EXPECT_EQ(token.expires, absl::ToUnixSeconds(kNow + absl::Hours(1)));
  EXPECT_EQ(token.nonce.size(), 22u);
  EXPECT_TRUE(signer.Verify(token, kNow, 0).ok());
  EXPECT_TRUE(signer.Verify(token, kNow + absl::Minutes(59), 0).ok());

  DownloadUrlVerdict expired = signer.Verify(token, kNow + absl::Hours(1), 0);
  EXPECT_EQ(expired.outcome, DownloadUrlOutcome::kExpired);
  EXPECT_THAT(expired.reason, HasSubstr("expired at"));
  EXPECT_EQ(DownloadUrlStatus(expired).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(DownloadUrlTest, NoncesDiffer) {
  DownloadUrlSigner signer = Signer();
  std::set<std::string> nonces;
  for (int i = 0; i < 100; ++i) nonces.insert(Issued(signer).nonce);
  EXPECT_EQ(nonces.size(), 100u);
}

TEST(DownloadUrlTest, EveryAlteredFieldIsABadSignature) {
  DownloadUrlSigner signer = Signer();
  DownloadToken token = Issued(signer);
  DownloadToken other_request = token;
  other_request.request_id = "dsr_0123abce";
  DownloadToken later = token;
  later.expires += 3600;
  DownloadToken other_nonce = Issued(signer);
  other_nonce.signature = token.signature;
  DownloadToken flipped = token;
  flipped.signature[5] = flipped.signature[5] == 'A' ? 'B' : 'A';
  for (const DownloadToken& altered :
       {other_request, later, other_nonce, flipped}) {
    DownloadUrlVerdict verdict = signer.Verify(altered, kNow, 0);
    EXPECT_EQ(verdict.outcome, DownloadUrlOutcome::kBadSignature)
        << DownloadCanonicalString(altered);
    EXPECT_EQ(DownloadUrlStatus(verdict).code(),
              absl::StatusCode::kPermissionDenied);
  }
  // Another key (another deployment, or a rotated key).
  EXPECT_EQ(Signer('x').Verify(token, kNow, 0).outcome,
            DownloadUrlOutcome::kBadSignature);
}

TEST(DownloadUrlTest, ASignatureIsCheckedBeforeTheExpiry) {
  DownloadUrlSigner signer = Signer();
  DownloadToken token = Issued(signer);
  token.request_id = "dsr_other";
  // Expired and forged: reported as forged, the outcome an attacker gets
  // for every URL they make up.
  EXPECT_EQ(signer.Verify(token, kNow + absl::Hours(2), 0).outcome,
            DownloadUrlOutcome::kBadSignature);
}

TEST(DownloadUrlTest, OlderGenerationIsRevoked) {
  DownloadUrlSigner signer = Signer();
  DownloadToken token = Issued(signer, "dsr_1", 3);
  EXPECT_TRUE(signer.Verify(token, kNow, 3).ok());
  DownloadUrlVerdict revoked = signer.Verify(token, kNow, 4);
  EXPECT_EQ(revoked.outcome, DownloadUrlOutcome::kRevoked);
  EXPECT_THAT(revoked.reason, HasSubstr("revocation"));
  EXPECT_EQ(DownloadUrlStatus(revoked).code(),
            absl::StatusCode::kFailedPrecondition);
  // A generation the request never reached.
  EXPECT_EQ(signer.Verify(token, kNow, 2).outcome,
            DownloadUrlOutcome::kBadSignature);
}

TEST(DownloadUrlTest, MalformedFieldsAreNamed) {
  DownloadUrlSigner signer = Signer();
  DownloadToken good = Issued(signer);
  struct Case {
    DownloadToken token;
    std::string field;
  };
  DownloadToken no_id = good;
  no_id.request_id = "";
  DownloadToken slash_id = good;
  slash_id.request_id = "dsr_1/../x";
  DownloadToken no_expiry = good;
  no_expiry.expires = 0;
  DownloadToken short_nonce = good;
  short_nonce.nonce = "abc";
  DownloadToken padded_sig = good;
  padded_sig.signature += "=";
  DownloadToken short_sig = good;
  short_sig.signature = absl::WebSafeBase64Escape(std::string(16, 'x'));
  for (const Case& c :
       {Case{no_id, "id:"}, Case{slash_id, "id:"}, Case{no_expiry, "expires:"},
        Case{short_nonce, "nonce:"}, Case{padded_sig, "sig:"},
        Case{short_sig, "sig:"}}) {
    DownloadUrlVerdict verdict = signer.Verify(c.token, kNow, 0);
    EXPECT_EQ(verdict.outcome, DownloadUrlOutcome::kMalformed) << c.field;
    EXPECT_THAT(verdict.reason, ::testing::StartsWith(c.field));
    EXPECT_EQ(DownloadUrlStatus(verdict).code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(DownloadUrlTest, IssueRefusesIdsThatAreNotUrlSafe) {
  DownloadUrlSigner signer = Signer();
  EXPECT_EQ(signer.Issue("a/b", 0, kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(signer.Issue("", 0, kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DownloadUrlTest, ShortKeyIsRefused) {
  EXPECT_EQ(DownloadUrlSigner::Create(std::string(31, 'k')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DownloadUrlTest, KeyFileIsCreatedOnceAndReused) {
  std::string dir =
      absl::StrCat(::testing::TempDir(), "/download_url_keys_", ::getpid());
  std::filesystem::create_directories(dir);
  absl::StatusOr<DownloadUrlSigner> first = DownloadUrlSigner::FromKeysDir(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(std::filesystem::exists(dir + "/download_url.key"));
  DownloadToken token = Issued(*first);
  absl::StatusOr<DownloadUrlSigner> second =
      DownloadUrlSigner::FromKeysDir(dir);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->Verify(token, kNow, 0).ok());
  std::filesystem::remove_all(dir);
}

TEST(DownloadUrlTest, PathCarriesEveryField) {
  DownloadToken token;
  token.request_id = "dsr_ab";
  token.expires = 1800003600;
  token.generation = 2;
  token.nonce = "NNNN";
  token.signature = "SSSS";
  EXPECT_EQ(DownloadUrlPath(token),
            "/v1/downloads/dsr_ab?expires=1800003600&generation=2&nonce=NNNN&"
            "sig=SSSS");
  EXPECT_EQ(DownloadCanonicalString(token),
            "dsar-download/v1\ndsr_ab\n1800003600\n2\nNNNN");
}

}  // namespace
}  // namespace dsar
