#ifndef DSAR_GATEWAY_JWT_VERIFIER_H_
#define DSAR_GATEWAY_JWT_VERIFIER_H_

// Verifies JWT bearer tokens (RFC 7519, JWS compact serialization): HS256
// with a shared secret, RS256 and ES256 with public keys from a JWKS file
// (RFC 7517). Checks exp, nbf, iss and aud. Nothing else is accepted: "none",
// other algorithms, and a token whose "alg" does not fit the key are refused.

#include <openssl/evp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace dsar::gateway {

struct JwtVerifierOptions {
  // HS256 secret (raw bytes). Empty: HS256 tokens are refused.
  std::string hs256_secret;
  // Contents of a JWKS file ({"keys": [...]}) with RSA ("kty": "RSA", "n",
  // "e") and P-256 EC ("kty": "EC", "crv": "P-256", "x", "y") public keys.
  // Empty: RS256 and ES256 tokens are refused.
  std::string jwks_json;
  // Required "iss" value; empty: not checked.
  std::string issuer;
  // Required audience: "aud" (a string or an array) must contain it; empty:
  // not checked.
  std::string audience;
  // Tolerated clock difference for exp and nbf.
  absl::Duration leeway = absl::Seconds(30);
};

// What a verified token says about its bearer.
struct VerifiedToken {
  std::string subject;           // "sub"; never empty.
  std::set<std::string> scopes;  // From "scope" (space-separated) or "scp".
  nlohmann::json claims;         // The whole payload, for other checks.
};

class JwtVerifier {
 public:
  // Fails with INVALID_ARGUMENT when the JWKS is malformed or holds a key of
  // an unsupported type, or when neither a secret nor a key is given.
  static absl::StatusOr<std::unique_ptr<JwtVerifier>> Create(
      const JwtVerifierOptions& options);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // Returns the token's subject and scopes when `token` is well formed,
  // signed by a configured key with an accepted algorithm, valid at `now`
  // (exp is required) and for the configured issuer and audience.
  // UNAUTHENTICATED with the reason otherwise. Thread-safe.
  //
  // A token that passed is remembered (up to kMaxCachedTokens of them), so
  // that presenting it again costs no signature check and no JSON parsing:
  // its signature, issuer, audience, subject and scopes cannot change while
  // the keys are those given to Create. Its exp and nbf are checked against
  // `now` on every call, with the same answers as a full check; an expired
  // token is forgotten.
  absl::StatusOr<VerifiedToken> Verify(const std::string& token,
                                       absl::Time now) const;

  static constexpr size_t kMaxCachedTokens = 1024;
  // Tokens remembered now (for tests).
  size_t CachedTokenCount() const;

 private:
  struct PublicKey {
    std::string kid;           // May be empty.
    std::string alg;           // "RS256" or "ES256".
    EVP_PKEY* pkey = nullptr;  // Owned.
  };

  // A token that passed every check, and the claims to check again.
  struct CachedToken {
    absl::Time exp;
    std::optional<absl::Time> nbf;
    VerifiedToken verified;
  };

  explicit JwtVerifier(const JwtVerifierOptions& options) : options_(options) {}
  absl::Status AddJwks(const std::string& jwks_json);
  // The whole check (Verify without the cache); on success also `*exp` and
  // `*nbf`.
  absl::StatusOr<VerifiedToken> VerifyUncached(
      const std::string& token, absl::Time now, absl::Time* exp,
      std::optional<absl::Time>* nbf) const;
  // UNAUTHENTICATED, as VerifyUncached words it, when `now` is outside the
  // token's exp and nbf (with the leeway).
  absl::Status CheckTimes(absl::Time now, absl::Time exp,
                          const std::optional<absl::Time>& nbf) const;
  absl::Status VerifySignature(const std::string& alg, const std::string& kid,
                               const std::string& signing_input,
                               const std::string& signature) const;

  JwtVerifierOptions options_;
  std::vector<PublicKey> keys_;
  mutable absl::Mutex cache_mu_;
  // By the token's text (signature included).
  mutable absl::flat_hash_map<std::string, CachedToken> cache_
      ABSL_GUARDED_BY(cache_mu_);
};

// base64url without padding (RFC 7515 §2), exposed for tests that mint
// tokens. Decoding accepts no padding and no other alphabet.
std::string Base64UrlEncode(const std::string& data);
std::optional<std::string> Base64UrlDecode(const std::string& text);

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_JWT_VERIFIER_H_
