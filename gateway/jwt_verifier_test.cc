#include "gateway/jwt_verifier.h"

#include "absl/strings/str_cat.h"
#include "gateway/testing/test_tokens.h"
#include "gtest/gtest.h"

namespace dsar::gateway {
namespace {

using testing::TestKeys;
using testing::ValidClaims;

class JwtVerifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { keys_ = new TestKeys(); }
  static void TearDownTestSuite() { delete keys_; }

  std::unique_ptr<JwtVerifier> Verifier() {
    JwtVerifierOptions options;
    options.hs256_secret = keys_->hs256_secret();
    options.jwks_json = keys_->JwksJson();
    options.issuer = "https://issuer.test";
    options.audience = "dsar-gateway";
    absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier =
        JwtVerifier::Create(options);
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    return *std::move(verifier);
  }

  absl::Status Check(const std::string& token) {
    return Verifier()->Verify(token, absl::Now()).status();
  }

  static TestKeys* keys_;
};

TestKeys* JwtVerifierTest::keys_ = nullptr;

TEST_F(JwtVerifierTest, AcceptsEachAlgorithm) {
  for (auto [alg, kid] : {std::pair<const char*, const char*>{"HS256", ""},
                          {"RS256", "rsa-1"},
                          {"ES256", "ec-1"},
                          {"RS256", ""},
                          {"ES256", ""}}) {
    std::string token =
        keys_->Mint(alg, kid, ValidClaims("alice", "dsar.read dsar.submit"));
    absl::StatusOr<VerifiedToken> verified =
        Verifier()->Verify(token, absl::Now());
    ASSERT_TRUE(verified.ok())
        << alg << " " << kid << ": " << verified.status();
    EXPECT_EQ(verified->subject, "alice");
    EXPECT_EQ(verified->scopes,
              (std::set<std::string>{"dsar.read", "dsar.submit"}));
  }
}

TEST_F(JwtVerifierTest, ScpArrayIsAScopeListToo) {
  nlohmann::json claims = ValidClaims("bob", "");
  claims.erase("scope");
  claims["scp"] = {"dsar.admin"};
  absl::StatusOr<VerifiedToken> verified =
      Verifier()->Verify(keys_->Mint("ES256", "ec-1", claims), absl::Now());
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified->scopes, std::set<std::string>{"dsar.admin"});
}

TEST_F(JwtVerifierTest, TimeClaims) {
  nlohmann::json expired = ValidClaims("a", "dsar.read");
  expired["exp"] = expired["iat"].get<int64_t>() - 120;
  EXPECT_EQ(Check(keys_->Mint("HS256", "", expired)).message(),
            "token expired");
  nlohmann::json early = ValidClaims("a", "dsar.read");
  early["nbf"] = early["iat"].get<int64_t>() + 600;
  EXPECT_EQ(Check(keys_->Mint("HS256", "", early)).message(),
            "token not valid yet (nbf)");
  nlohmann::json no_exp = ValidClaims("a", "dsar.read");
  no_exp.erase("exp");
  EXPECT_EQ(Check(keys_->Mint("HS256", "", no_exp)).message(),
            "token has no \"exp\"");
  // Within the leeway: accepted.
  nlohmann::json just_expired = ValidClaims("a", "dsar.read");
  just_expired["exp"] = just_expired["iat"].get<int64_t>() - 5;
  EXPECT_TRUE(Check(keys_->Mint("HS256", "", just_expired)).ok());
}

// Found by fuzz/jwt_fuzzer (fuzz/corpus/jwt/signed_here_payload_only): a
// NumericDate beyond int64 microseconds was cast to int64 (undefined; on
// x86 the minimum, so such a token read as long expired). Dates saturate.
// A token seen before is answered from the cache, but its times are
// checked on every call: it stops working at exp (plus the leeway) as a
// fresh one would, and a token before its nbf is not remembered.
TEST_F(JwtVerifierTest, RemembersVerifiedTokensButChecksTheirTimesEachCall) {
  std::unique_ptr<JwtVerifier> verifier = Verifier();
  const absl::Time now = absl::Now();
  nlohmann::json claims = ValidClaims("carol", "dsar.read");
  claims["nbf"] = absl::ToUnixSeconds(now) - 10;
  claims["exp"] = absl::ToUnixSeconds(now) + 60;
  const std::string token = keys_->Mint("HS256", "", claims);

  ASSERT_TRUE(verifier->Verify(token, now).ok());
  EXPECT_EQ(verifier->CachedTokenCount(), 1u);
  absl::StatusOr<VerifiedToken> again = verifier->Verify(token, now);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->subject, "carol");
  EXPECT_EQ(again->scopes, std::set<std::string>{"dsar.read"});
  EXPECT_EQ(again->claims, claims);
  EXPECT_EQ(verifier->CachedTokenCount(), 1u);

  // Before nbf (minus the 30 s leeway) and after exp (plus the leeway).
  EXPECT_EQ(verifier->Verify(token, now - absl::Seconds(41)).status().message(),
            "token not valid yet (nbf)");
  EXPECT_TRUE(verifier->Verify(token, now + absl::Seconds(89)).ok());
  EXPECT_EQ(verifier->Verify(token, now + absl::Seconds(91)).status().message(),
            "token expired");
  EXPECT_EQ(verifier->CachedTokenCount(), 0u);
  EXPECT_EQ(verifier->Verify(token, now + absl::Seconds(91)).status().message(),
            "token expired");

  nlohmann::json early = ValidClaims("dave", "dsar.read");
  early["nbf"] = absl::ToUnixSeconds(now) + 600;
  EXPECT_FALSE(verifier->Verify(keys_->Mint("HS256", "", early), now).ok());
  EXPECT_EQ(verifier->CachedTokenCount(), 0u);
}

// The cache holds only tokens that passed: the same claims under a bad
// signature are refused even when the good token is remembered.
TEST_F(JwtVerifierTest, CachedTokenDoesNotVouchForAnotherSignature) {
  std::unique_ptr<JwtVerifier> verifier = Verifier();
  nlohmann::json claims = ValidClaims("erin", "dsar.read");
  const std::string good = keys_->Mint("HS256", "", claims);
  ASSERT_TRUE(verifier->Verify(good, absl::Now()).ok());
  const std::string forged =
      keys_->Mint("HS256", "", claims, std::string(32, 'x'));
  EXPECT_EQ(verifier->Verify(forged, absl::Now()).status().message(),
            "bad signature");
  EXPECT_EQ(verifier->CachedTokenCount(), 1u);
}

// The cache is bounded.
TEST_F(JwtVerifierTest, CacheHoldsAtMostItsLimit) {
  std::unique_ptr<JwtVerifier> verifier = Verifier();
  for (size_t i = 0; i <= JwtVerifier::kMaxCachedTokens; ++i) {
    std::string token = keys_->Mint(
        "HS256", "", ValidClaims(absl::StrCat("user", i), "dsar.read"));
    ASSERT_TRUE(verifier->Verify(token, absl::Now()).ok());
    EXPECT_LE(verifier->CachedTokenCount(), JwtVerifier::kMaxCachedTokens);
  }
}

TEST_F(JwtVerifierTest, TimeClaimsBeyondTheRangeOfTime) {
  nlohmann::json far = ValidClaims("a", "dsar.read");
  far["exp"] = 1e300;
  far["nbf"] = -1e300;
  EXPECT_TRUE(Check(keys_->Mint("HS256", "", far)).ok());
  nlohmann::json never = ValidClaims("a", "dsar.read");
  never["exp"] = -1e300;
  EXPECT_EQ(Check(keys_->Mint("HS256", "", never)).message(), "token expired");
  nlohmann::json later = ValidClaims("a", "dsar.read");
  later["nbf"] = 1e300;
  EXPECT_EQ(Check(keys_->Mint("HS256", "", later)).message(),
            "token not valid yet (nbf)");
}

TEST_F(JwtVerifierTest, IssuerAndAudience) {
  EXPECT_EQ(Check(keys_->Mint("RS256", "rsa-1",
                              ValidClaims("a", "x", "https://evil.test")))
                .message(),
            "wrong issuer");
  EXPECT_EQ(Check(keys_->Mint("RS256", "rsa-1",
                              ValidClaims("a", "x", "https://issuer.test",
                                          "someone-else")))
                .message(),
            "wrong audience");
  nlohmann::json many = ValidClaims("a", "x");
  many["aud"] = {"other", "dsar-gateway"};
  EXPECT_TRUE(Check(keys_->Mint("RS256", "rsa-1", many)).ok());
}

TEST_F(JwtVerifierTest, BadSignatures) {
  nlohmann::json claims = ValidClaims("a", "dsar.read");
  EXPECT_EQ(
      Check(keys_->Mint("HS256", "", claims, std::string(32, 'w'))).message(),
      "bad signature");
  // A payload swapped under a valid signature.
  std::string token = keys_->Mint("ES256", "ec-1", claims);
  std::string other =
      keys_->Mint("ES256", "ec-1", ValidClaims("root", "dsar.admin"));
  std::string forged =
      token.substr(0, token.find('.')) +
      other.substr(other.find('.'), other.rfind('.') - other.find('.')) +
      token.substr(token.rfind('.'));
  EXPECT_EQ(Check(forged).message(), "bad signature");
  std::string rsa = keys_->Mint("RS256", "rsa-1", claims);
  rsa[rsa.size() - 3] = rsa[rsa.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Check(rsa).code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(JwtVerifierTest, AlgorithmConfusionAndNone) {
  nlohmann::json claims = ValidClaims("a", "dsar.admin");
  EXPECT_EQ(Check(keys_->Mint("none", "", claims)).message(),
            "algorithm \"none\" not accepted");
  // An RS256 key id presented with ES256 finds no key.
  EXPECT_EQ(Check(keys_->Mint("ES256", "rsa-1", claims)).message(),
            "unknown key id \"rsa-1\"");
  EXPECT_EQ(Check(keys_->Mint("RS256", "rsa-2", claims)).message(),
            "unknown key id \"rsa-2\"");
  // HS256 is refused when only a JWKS is configured (the public key is not
  // an HMAC secret).
  JwtVerifierOptions options;
  options.jwks_json = keys_->JwksJson();
  auto jwks_only = JwtVerifier::Create(options);
  ASSERT_TRUE(jwks_only.ok());
  EXPECT_EQ((*jwks_only)
                ->Verify(keys_->Mint("HS256", "", claims), absl::Now())
                .status()
                .message(),
            "HS256 tokens are not accepted");
}

TEST_F(JwtVerifierTest, MalformedTokens) {
  for (const char* token : {"", "abc", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.",
                            "eyJhbGciOiJIUzI1NiJ9.bm90anNvbg.AA"}) {
    EXPECT_EQ(Check(token).code(), absl::StatusCode::kUnauthenticated) << token;
  }
  nlohmann::json no_sub = ValidClaims("", "x");
  EXPECT_EQ(Check(keys_->Mint("HS256", "", no_sub)).message(),
            "token has no \"sub\"");
}

TEST_F(JwtVerifierTest, CreateRefusesBadConfiguration) {
  EXPECT_FALSE(JwtVerifier::Create({}).ok());
  JwtVerifierOptions short_secret;
  short_secret.hs256_secret = "too short";
  EXPECT_FALSE(JwtVerifier::Create(short_secret).ok());
  JwtVerifierOptions bad_jwks;
  bad_jwks.jwks_json = R"({"keys":[{"kty":"oct","k":"AAAA"}]})";
  EXPECT_FALSE(JwtVerifier::Create(bad_jwks).ok());
  bad_jwks.jwks_json = "not json";
  EXPECT_FALSE(JwtVerifier::Create(bad_jwks).ok());
}

// Found by fuzz/jwks_fuzzer (fuzz/corpus/jwks/use_not_string, kid_number):
// a member of the wrong type threw nlohmann::json::type_error out of Create,
// which took dsar-gateway down at start-up instead of naming the key.
TEST_F(JwtVerifierTest, CreateRefusesMembersOfTheWrongType) {
  nlohmann::json jwks = nlohmann::json::parse(keys_->JwksJson());
  for (const char* member : {"use", "kid", "kty", "alg", "crv"}) {
    nlohmann::json bad = jwks;
    bad["keys"][1][member] = 7;  // keys[1] is the EC key.
    JwtVerifierOptions options;
    options.jwks_json = bad.dump();
    absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier =
        JwtVerifier::Create(options);
    ASSERT_FALSE(verifier.ok()) << member;
    EXPECT_EQ(verifier.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(verifier.status().message(),
              absl::StrCat("JWKS keys[1]: \"", member, "\" must be a string"));
  }
}

TEST(Base64UrlTest, RoundTripAndStrictness) {
  for (std::string data : {"", "f", "fo", "foo", "foob", "\xff\xfe\x00"}) {
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(data)), data);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(Base64UrlDecode("Zg==").has_value());  // Padding.
  EXPECT_FALSE(Base64UrlDecode("Z+8").has_value());   // base64, not url.
  EXPECT_FALSE(Base64UrlDecode("Zh").has_value());    // Non-zero spare bits.
}

}  // namespace
}  // namespace dsar::gateway
