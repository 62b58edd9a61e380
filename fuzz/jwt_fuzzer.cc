// Bearer tokens as dsar-gateway checks them: the Authorization header goes
// through RequestAuthenticator::Authorize (JwtVerifier::Verify) and a refusal
// becomes a WWW-Authenticate header.
//
// Each input is used twice:
//  1. as the Authorization header, and as a bare token after "Bearer ";
//  2. as "<header JSON>\n<payload JSON>" (or a payload alone, under
//     {"alg":"HS256"}), encoded and signed here with the HS256 secret, so
//     that the claim checks behind the signature are reached too.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/jwt_fuzz_keys.h"
#include "gateway/jwt_verifier.h"
#include "gateway/request_auth.h"

namespace {

using dsar::gateway::Base64UrlEncode;

const dsar::gateway::RequestAuthenticator& Authenticator() {
  static const dsar::gateway::RequestAuthenticator* authenticator = [] {
    dsar::gateway::JwtVerifierOptions options;
    options.hs256_secret = dsar::fuzz::kFuzzHs256Secret;
    options.jwks_json = dsar::fuzz::kFuzzJwks;
    options.issuer = dsar::fuzz::kFuzzIssuer;
    options.audience = dsar::fuzz::kFuzzAudience;
    absl::StatusOr<std::unique_ptr<dsar::gateway::JwtVerifier>> verifier =
        dsar::gateway::JwtVerifier::Create(options);
    FUZZ_CHECK(verifier.ok(), verifier.status().ToString());
    return new dsar::gateway::RequestAuthenticator(*std::move(verifier));
  }();
  return *authenticator;
}

std::string Hs256(const std::string& signing_input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const std::string secret = dsar::fuzz::kFuzzHs256Secret;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()),
       signing_input.size(), mac, &length);
  return std::string(reinterpret_cast<char*>(mac), length);
}

void CheckAuthorize(const std::string& authorization) {
  const absl::Time now = absl::FromUnixSeconds(dsar::fuzz::kFuzzNow);
  absl::StatusOr<dsar::gateway::Caller> caller =
      Authenticator().Authorize(authorization, "dsar.read", now);
  if (caller.ok()) {
    FUZZ_CHECK(!caller->subject.empty(), "no subject");
    FUZZ_CHECK(caller->HasScope("dsar.read"), "scope");
    FUZZ_CHECK(caller->claims.is_object(), "claims");
    return;
  }
  absl::StatusCode code = caller.status().code();
  FUZZ_CHECK(code == absl::StatusCode::kUnauthenticated ||
                 code == absl::StatusCode::kPermissionDenied,
             caller.status().ToString());
  // The refusal goes back in a header: it must stay one header line.
  std::string header =
      dsar::gateway::WwwAuthenticate(caller.status(), "dsar.read");
  for (char c : header) {
    FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0', header);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);

  // 1. As it came: the whole header, and a bare token.
  CheckAuthorize(input);
  CheckAuthorize(absl::StrCat("Bearer ", input));

  // 2. Signed here.
  std::string header = R"({"alg":"HS256","typ":"JWT"})";
  std::string payload = input;
  size_t newline = input.find('\n');
  if (newline != std::string::npos) {
    header = input.substr(0, newline);
    payload = input.substr(newline + 1);
  }
  std::string signing_input =
      absl::StrCat(Base64UrlEncode(header), ".", Base64UrlEncode(payload));
  std::string token =
      absl::StrCat(signing_input, ".", Base64UrlEncode(Hs256(signing_input)));
  CheckAuthorize(absl::StrCat("Bearer ", token));

  // base64url round trip, on which every part of a token relies.
  std::optional<std::string> decoded =
      dsar::gateway::Base64UrlDecode(Base64UrlEncode(input));
  FUZZ_CHECK(decoded.has_value() && *decoded == input, "base64url");
  return 0;
}
