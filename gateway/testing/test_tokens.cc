#include "gateway/testing/test_tokens.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <cstdlib>
#include <ctime>

#include "absl/strings/escaping.h"
#include "gateway/jwt_verifier.h"

namespace dsar::gateway::testing {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "test_tokens: OpenSSL failed: %s\n", what);
    std::abort();
  }
}

std::string BnParam(EVP_PKEY* pkey, const char* name, int pad_to) {
  BIGNUM* bn = nullptr;
  Check(EVP_PKEY_get_bn_param(pkey, name, &bn) == 1, name);
  int size = pad_to > 0 ? pad_to : BN_num_bytes(bn);
  std::string bytes(size, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(bytes.data()), size);
  BN_free(bn);
  return bytes;
}

std::string DigestSign(EVP_PKEY* pkey, const std::string& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t length = 0;
  Check(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1,
        "DigestSignInit");
  Check(EVP_DigestSign(ctx, nullptr, &length,
                       reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) == 1,
        "DigestSign size");
  std::string signature(length, '\0');
  Check(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()),
                       &length,
                       reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) == 1,
        "DigestSign");
  signature.resize(length);
  EVP_MD_CTX_free(ctx);
  return signature;
}

}  // namespace

TestKeys::TestKeys() {
  // Hex of 32 random bytes: a secret file is read with its trailing newline
  // dropped, so raw random bytes ending in '\n' (1 in 256) came out short.
  std::string random(32, '\0');
  Check(RAND_bytes(reinterpret_cast<unsigned char*>(random.data()), 32) == 1,
        "RAND_bytes");
  hs256_secret_ = absl::BytesToHexString(random);
  rsa_ = EVP_RSA_gen(2048);
  Check(rsa_ != nullptr, "EVP_RSA_gen");
  ec_ = EVP_EC_gen("P-256");
  Check(ec_ != nullptr, "EVP_EC_gen");
}

TestKeys::~TestKeys() {
  EVP_PKEY_free(rsa_);
  EVP_PKEY_free(ec_);
}

std::string TestKeys::JwksJson() const {
  nlohmann::json rsa = {
      {"kty", "RSA"},
      {"kid", "rsa-1"},
      {"alg", "RS256"},
      {"use", "sig"},
      {"n", Base64UrlEncode(BnParam(rsa_, OSSL_PKEY_PARAM_RSA_N, 0))},
      {"e", Base64UrlEncode(BnParam(rsa_, OSSL_PKEY_PARAM_RSA_E, 0))}};
  nlohmann::json ec = {
      {"kty", "EC"},
      {"kid", "ec-1"},
      {"crv", "P-256"},
      {"x", Base64UrlEncode(BnParam(ec_, OSSL_PKEY_PARAM_EC_PUB_X, 32))},
      {"y", Base64UrlEncode(BnParam(ec_, OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
  return nlohmann::json({{"keys", {rsa, ec}}}).dump();
}

std::string TestKeys::Mint(const std::string& alg, const std::string& kid,
                           const nlohmann::json& claims,
                           const std::string& hs256_secret_override) const {
  nlohmann::json header = {{"alg", alg}, {"typ", "JWT"}};
  if (!kid.empty()) header["kid"] = kid;
  std::string input =
      Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  std::string signature;
  if (alg == "HS256") {
    const std::string& secret =
        hs256_secret_override.empty() ? hs256_secret_ : hs256_secret_override;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         mac, &length);
    signature.assign(reinterpret_cast<char*>(mac), length);
  } else if (alg == "RS256") {
    signature = DigestSign(rsa_, input);
  } else if (alg == "ES256") {
    std::string der = DigestSign(ec_, input);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    Check(sig != nullptr, "d2i_ECDSA_SIG");
    signature.assign(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(sig),
                 reinterpret_cast<unsigned char*>(signature.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig),
                 reinterpret_cast<unsigned char*>(signature.data() + 32), 32);
    ECDSA_SIG_free(sig);
  }
  return input + "." + Base64UrlEncode(signature);
}

nlohmann::json ValidClaims(const std::string& subject, const std::string& scope,
                           const std::string& issuer,
                           const std::string& audience) {
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  return {{"sub", subject},   {"scope", scope}, {"iss", issuer},
          {"aud", audience},  {"iat", now},     {"nbf", now - 5},
          {"exp", now + 3600}};
}

}  // namespace dsar::gateway::testing
