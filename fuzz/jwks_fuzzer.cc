// JWKS documents as dsar-gateway loads them (--jwks_file, typically fetched
// from an identity provider): JwtVerifier::Create parses the keys. When it
// accepts, tokens are checked against them.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/jwt_fuzz_keys.h"
#include "gateway/jwt_verifier.h"

namespace {

using dsar::gateway::Base64UrlEncode;

// Well-formed tokens for each algorithm, with and without a key id, whose
// signatures have the right length but are garbage: none may verify.
const std::vector<std::string>& Tokens() {
  static const auto* tokens = [] {
    std::string payload = Base64UrlEncode(R"({"sub":"x","exp":1e10})");
    auto token = [&](const std::string& header, size_t signature_size) {
      return Base64UrlEncode(header) + "." + payload + "." +
             Base64UrlEncode(std::string(signature_size, '\x01'));
    };
    return new std::vector<std::string>{
        token(R"({"alg":"RS256","kid":"rsa-1"})", 256),
        token(R"({"alg":"RS256"})", 256),
        token(R"({"alg":"ES256","kid":"ec-1"})", 64),
        token(R"({"alg":"ES256"})", 64),
        token(R"({"alg":"HS256"})", 32),
    };
  }();
  return *tokens;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dsar::gateway::JwtVerifierOptions options;
  options.jwks_json.assign(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::unique_ptr<dsar::gateway::JwtVerifier>> verifier =
      dsar::gateway::JwtVerifier::Create(options);
  if (!verifier.ok()) {
    FUZZ_CHECK(verifier.status().code() == absl::StatusCode::kInvalidArgument,
               verifier.status().ToString());
    return 0;
  }
  const absl::Time now = absl::FromUnixSeconds(dsar::fuzz::kFuzzNow);
  for (const std::string& token : Tokens()) {
    absl::StatusOr<dsar::gateway::VerifiedToken> verified =
        (*verifier)->Verify(token, now);
    FUZZ_CHECK(!verified.ok(), "a token with a garbage signature verifies");
    FUZZ_CHECK(verified.status().code() == absl::StatusCode::kUnauthenticated,
               verified.status().ToString());
  }
  return 0;
}
