#ifndef DSAR_GATEWAY_TESTING_TEST_TOKENS_H_
#define DSAR_GATEWAY_TESTING_TEST_TOKENS_H_

// Test-only: keys generated with OpenSSL at run time, their JWKS, and JWTs
// signed with them, for the gateway's unit and integration tests.

#include <openssl/evp.h>

#include <string>

#include "nlohmann/json.hpp"

namespace dsar::gateway::testing {

class TestKeys {
 public:
  // Generates an RSA-2048 key ("rsa-1"), a P-256 key ("ec-1") and a 32-byte
  // HS256 secret. Aborts when OpenSSL fails (nothing can be tested then).
  TestKeys();
  ~TestKeys();
  TestKeys(const TestKeys&) = delete;
  TestKeys& operator=(const TestKeys&) = delete;

  const std::string& hs256_secret() const { return hs256_secret_; }
  // {"keys": [RSA public key "rsa-1", EC public key "ec-1"]}.
  std::string JwksJson() const;

  // A compact JWS of `claims` with header {"alg": alg, "kid": kid} (no kid
  // when empty). alg: "HS256" (with hs256_secret, or `hs256_secret_override`
  // when not empty), "RS256", "ES256", or "none" (empty signature).
  std::string Mint(const std::string& alg, const std::string& kid,
                   const nlohmann::json& claims,
                   const std::string& hs256_secret_override = "") const;

 private:
  std::string hs256_secret_;
  EVP_PKEY* rsa_ = nullptr;
  EVP_PKEY* ec_ = nullptr;
};

// Claims valid for an hour from now with `scope` (space-separated).
nlohmann::json ValidClaims(const std::string& subject, const std::string& scope,
                           const std::string& issuer = "https://issuer.test",
                           const std::string& audience = "dsar-gateway");

}  // namespace dsar::gateway::testing

#endif  // DSAR_GATEWAY_TESTING_TEST_TOKENS_H_
