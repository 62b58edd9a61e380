#include "gateway/jwt_verifier.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace dsar::gateway {
namespace {

constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(std::string(why));
}

struct BnDeleter {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;

BnPtr BnFromBytes(const std::string& bytes) {
  return BnPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                         static_cast<int>(bytes.size()), nullptr));
}

// Builds a public key of `type` ("RSA" or "EC") from OSSL parameters.
absl::StatusOr<EVP_PKEY*> KeyFromParams(const char* type,
                                        OSSL_PARAM_BLD* builder) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(builder);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  bool ok = params != nullptr && ctx != nullptr &&
            EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return absl::InvalidArgumentError(
        absl::StrCat("not a valid ", type, " public key"));
  }
  return pkey;
}

// The string member `name` of a JWK, `fallback` when it is absent.
// nlohmann's value() would throw on a member of another type.
absl::StatusOr<std::string> StringMember(const nlohmann::json& jwk,
                                         const char* name,
                                         const std::string& fallback) {
  auto it = jwk.find(name);
  if (it == jwk.end()) return fallback;
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", name, "\" must be a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<std::string> DecodeMember(const nlohmann::json& jwk,
                                         const char* name) {
  if (!jwk.contains(name) || !jwk[name].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" missing"));
  }
  std::optional<std::string> bytes =
      Base64UrlDecode(jwk[name].get<std::string>());
  if (!bytes || bytes->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", name, "\" is not base64url"));
  }
  return *bytes;
}

absl::StatusOr<EVP_PKEY*> RsaKeyFromJwk(const nlohmann::json& jwk) {
  absl::StatusOr<std::string> n = DecodeMember(jwk, "n");
  if (!n.ok()) return n.status();
  absl::StatusOr<std::string> e = DecodeMember(jwk, "e");
  if (!e.ok()) return e.status();
  BnPtr bn_n = BnFromBytes(*n), bn_e = BnFromBytes(*e);
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_N, bn_n.get());
  OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_E, bn_e.get());
  absl::StatusOr<EVP_PKEY*> key = KeyFromParams("RSA", builder);
  OSSL_PARAM_BLD_free(builder);
  if (key.ok() && EVP_PKEY_get_bits(*key) < 2048) {
    EVP_PKEY_free(*key);
    return absl::InvalidArgumentError("RSA keys must have at least 2048 bits");
  }
  return key;
}

absl::StatusOr<EVP_PKEY*> EcKeyFromJwk(const nlohmann::json& jwk) {
  absl::StatusOr<std::string> crv = StringMember(jwk, "crv", "");
  if (!crv.ok()) return crv.status();
  if (*crv != "P-256") {
    return absl::InvalidArgumentError("only \"crv\": \"P-256\" is supported");
  }
  absl::StatusOr<std::string> x = DecodeMember(jwk, "x");
  if (!x.ok()) return x.status();
  absl::StatusOr<std::string> y = DecodeMember(jwk, "y");
  if (!y.ok()) return y.status();
  if (x->size() != 32 || y->size() != 32) {
    return absl::InvalidArgumentError("P-256 coordinates must be 32 bytes");
  }
  std::string point = absl::StrCat("\x04", *x, *y);  // SEC1 uncompressed.
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(builder, OSSL_PKEY_PARAM_GROUP_NAME,
                                  "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(builder, OSSL_PKEY_PARAM_PUB_KEY,
                                   point.data(), point.size());
  absl::StatusOr<EVP_PKEY*> key = KeyFromParams("EC", builder);
  OSSL_PARAM_BLD_free(builder);
  return key;
}

// JWS ES256 signatures are r‖s (32 bytes each); OpenSSL verifies DER.
std::optional<std::string> EcdsaRawToDer(const std::string& raw) {
  if (raw.size() != 64) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32,
                        nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data() + 32),
                        32, nullptr);
  ECDSA_SIG_set0(sig, r, s);  // Takes r and s.
  unsigned char* der = nullptr;
  int length = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (length <= 0) return std::nullopt;
  std::string result(reinterpret_cast<char*>(der), length);
  OPENSSL_free(der);
  return result;
}

bool DigestVerify(EVP_PKEY* pkey, const std::string& data,
                  const std::string& signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      ctx != nullptr &&
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
      EVP_DigestVerify(
          ctx, reinterpret_cast<const unsigned char*>(signature.data()),
          signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
          data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

// A NumericDate claim (seconds since the epoch, possibly fractional).
std::optional<absl::Time> NumericDate(const nlohmann::json& claims,
                                      const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return std::nullopt;
  double seconds = it->get<double>();
  if (!std::isfinite(seconds)) return std::nullopt;
  // absl::Seconds saturates: a date beyond absl::Time's range (1e300) is
  // the infinite future or past, where a cast to int64 would be undefined.
  return absl::UnixEpoch() + absl::Seconds(seconds);
}

}  // namespace

std::string Base64UrlEncode(const std::string& data) {
  std::string out;
  out.reserve((data.size() * 4 + 2) / 3);
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : data) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(buffer >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (6 - bits)) & 0x3f]);
  return out;
}

std::optional<std::string> Base64UrlDecode(const std::string& text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int value;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '-') {
      value = 62;
    } else if (c == '_') {
      value = 63;
    } else {
      return std::nullopt;
    }
    buffer = (buffer << 6) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero (a canonical encoding).
  if ((buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

absl::StatusOr<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(
    const JwtVerifierOptions& options) {
  std::unique_ptr<JwtVerifier> verifier(new JwtVerifier(options));
  if (!options.jwks_json.empty()) {
    absl::Status status = verifier->AddJwks(options.jwks_json);
    if (!status.ok()) return status;
  }
  if (options.hs256_secret.empty() && verifier->keys_.empty()) {
    return absl::InvalidArgumentError(
        "no HS256 secret and no JWKS key: no token could ever be accepted");
  }
  if (!options.hs256_secret.empty() && options.hs256_secret.size() < 32) {
    return absl::InvalidArgumentError(
        "the HS256 secret must be at least 32 bytes (RFC 7518 §3.2)");
  }
  // The JWKS text is not needed any more; the parsed keys are.
  verifier->options_.jwks_json.clear();
  return verifier;
}

JwtVerifier::~JwtVerifier() {
  for (PublicKey& key : keys_) EVP_PKEY_free(key.pkey);
}

absl::Status JwtVerifier::AddJwks(const std::string& jwks_json) {
  nlohmann::json jwks = nlohmann::json::parse(jwks_json, nullptr, false);
  if (jwks.is_discarded() || !jwks.is_object() || !jwks.contains("keys") ||
      !jwks["keys"].is_array()) {
    return absl::InvalidArgumentError(
        "JWKS: not a JSON object with a \"keys\" array");
  }
  for (size_t i = 0; i < jwks["keys"].size(); ++i) {
    const nlohmann::json& jwk = jwks["keys"][i];
    std::string where = absl::StrCat("JWKS keys[", i, "]: ");
    if (!jwk.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "not an object"));
    }
    absl::StatusOr<std::string> use = StringMember(jwk, "use", "sig");
    absl::StatusOr<std::string> kid = StringMember(jwk, "kid", "");
    absl::StatusOr<std::string> kty_member = StringMember(jwk, "kty", "");
    absl::StatusOr<std::string> alg = StringMember(jwk, "alg", "");
    for (const absl::Status& status :
         {use.status(), kid.status(), kty_member.status(), alg.status()}) {
      if (!status.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, status.message()));
      }
    }
    if (*use != "sig") continue;  // An encryption key.
    PublicKey key;
    key.kid = *kid;
    const std::string& kty = *kty_member;
    absl::StatusOr<EVP_PKEY*> pkey;
    if (kty == "RSA") {
      key.alg = "RS256";
      pkey = RsaKeyFromJwk(jwk);
    } else if (kty == "EC") {
      key.alg = "ES256";
      pkey = EcKeyFromJwk(jwk);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "unsupported \"kty\" \"", kty, "\""));
    }
    if (!pkey.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, pkey.status().message()));
    }
    key.pkey = *pkey;
    std::string declared = jwk.contains("alg") ? *alg : key.alg;
    if (declared != key.alg) {
      EVP_PKEY_free(key.pkey);
      return absl::InvalidArgumentError(absl::StrCat(
          where, "\"alg\" ", declared, " is not supported for ", kty));
    }
    keys_.push_back(key);
  }
  return absl::OkStatus();
}

absl::Status JwtVerifier::VerifySignature(const std::string& alg,
                                          const std::string& kid,
                                          const std::string& signing_input,
                                          const std::string& signature) const {
  if (alg == "HS256") {
    if (options_.hs256_secret.empty()) {
      return Unauthenticated("HS256 tokens are not accepted");
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_length = 0;
    HMAC(EVP_sha256(), options_.hs256_secret.data(),
         static_cast<int>(options_.hs256_secret.size()),
         reinterpret_cast<const unsigned char*>(signing_input.data()),
         signing_input.size(), mac, &mac_length);
    if (signature.size() != mac_length ||
        CRYPTO_memcmp(mac, signature.data(), mac_length) != 0) {
      return Unauthenticated("bad signature");
    }
    return absl::OkStatus();
  }
  if (alg != "RS256" && alg != "ES256") {
    return Unauthenticated(
        absl::StrCat("algorithm \"", alg, "\" not accepted"));
  }
  std::string der;
  if (alg == "ES256") {
    std::optional<std::string> converted = EcdsaRawToDer(signature);
    if (!converted) return Unauthenticated("bad signature");
    der = *std::move(converted);
  }
  bool key_found = false;
  for (const PublicKey& key : keys_) {
    if (key.alg != alg) continue;
    if (!kid.empty() && key.kid != kid) continue;
    key_found = true;
    if (DigestVerify(key.pkey, signing_input,
                     alg == "ES256" ? der : signature)) {
      return absl::OkStatus();
    }
  }
  if (!key_found) {
    return Unauthenticated(kid.empty()
                               ? absl::StrCat("no ", alg, " key configured")
                               : absl::StrCat("unknown key id \"", kid, "\""));
  }
  return Unauthenticated("bad signature");
}

absl::StatusOr<VerifiedToken> JwtVerifier::Verify(const std::string& token,
                                                  absl::Time now) const {
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = cache_.find(token);
    if (it != cache_.end()) {
      absl::Status valid = CheckTimes(now, it->second.exp, it->second.nbf);
      if (valid.ok()) return it->second.verified;
      if (now >= it->second.exp + options_.leeway) cache_.erase(it);
      return valid;
    }
  }
  absl::Time exp;
  std::optional<absl::Time> nbf;
  absl::StatusOr<VerifiedToken> verified =
      VerifyUncached(token, now, &exp, &nbf);
  if (!verified.ok()) return verified;
  absl::MutexLock lock(&cache_mu_);
  if (cache_.size() >= kMaxCachedTokens) {
    // Expired tokens first; when every one is still valid, all of them (a
    // token not remembered is only checked in full again).
    absl::erase_if(cache_, [&](const auto& entry) {
      return now >= entry.second.exp + options_.leeway;
    });
    if (cache_.size() >= kMaxCachedTokens) cache_.clear();
  }
  cache_.insert({token, CachedToken{exp, nbf, *verified}});
  return verified;
}

size_t JwtVerifier::CachedTokenCount() const {
  absl::MutexLock lock(&cache_mu_);
  return cache_.size();
}

absl::Status JwtVerifier::CheckTimes(
    absl::Time now, absl::Time exp,
    const std::optional<absl::Time>& nbf) const {
  if (now >= exp + options_.leeway) return Unauthenticated("token expired");
  if (nbf && now + options_.leeway < *nbf) {
    return Unauthenticated("token not valid yet (nbf)");
  }
  return absl::OkStatus();
}

absl::StatusOr<VerifiedToken> JwtVerifier::VerifyUncached(
    const std::string& token, absl::Time now, absl::Time* exp_out,
    std::optional<absl::Time>* nbf_out) const {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) {
    return Unauthenticated("not a JWT (expected header.payload.signature)");
  }
  std::optional<std::string> header_text = Base64UrlDecode(parts[0]);
  std::optional<std::string> payload_text = Base64UrlDecode(parts[1]);
  std::optional<std::string> signature = Base64UrlDecode(parts[2]);
  if (!header_text || !payload_text || !signature) {
    return Unauthenticated("not a JWT (bad base64url)");
  }
  nlohmann::json header = nlohmann::json::parse(*header_text, nullptr, false);
  if (header.is_discarded() || !header.is_object() || !header.contains("alg") ||
      !header["alg"].is_string()) {
    return Unauthenticated("bad JWT header");
  }
  if (header.contains("crit")) {
    return Unauthenticated("critical JWT header extensions are not supported");
  }
  std::string alg = header["alg"].get<std::string>();
  std::string kid =
      header.contains("kid") && header["kid"].is_string() ? header["kid"] : "";
  // The signature is checked before anything in the payload is trusted.
  absl::Status signature_status = VerifySignature(
      alg, kid, absl::StrCat(parts[0], ".", parts[1]), *signature);
  if (!signature_status.ok()) return signature_status;

  VerifiedToken verified;
  verified.claims = nlohmann::json::parse(*payload_text, nullptr, false);
  const nlohmann::json& claims = verified.claims;
  if (claims.is_discarded() || !claims.is_object()) {
    return Unauthenticated("bad JWT payload");
  }
  std::optional<absl::Time> exp = NumericDate(claims, "exp");
  if (!exp) return Unauthenticated("token has no \"exp\"");
  if (now >= *exp + options_.leeway) return Unauthenticated("token expired");
  std::optional<absl::Time> nbf;
  if (claims.contains("nbf")) {
    nbf = NumericDate(claims, "nbf");
    if (!nbf) return Unauthenticated("bad \"nbf\"");
    if (now + options_.leeway < *nbf) {
      return Unauthenticated("token not valid yet (nbf)");
    }
  }
  if (!options_.issuer.empty() &&
      (!claims.contains("iss") || claims["iss"] != options_.issuer)) {
    return Unauthenticated("wrong issuer");
  }
  if (!options_.audience.empty()) {
    bool match = false;
    auto aud = claims.find("aud");
    if (aud != claims.end() && aud->is_string()) {
      match = *aud == options_.audience;
    } else if (aud != claims.end() && aud->is_array()) {
      for (const nlohmann::json& item : *aud) {
        if (item == options_.audience) match = true;
      }
    }
    if (!match) return Unauthenticated("wrong audience");
  }
  if (!claims.contains("sub") || !claims["sub"].is_string() ||
      claims["sub"].get<std::string>().empty()) {
    return Unauthenticated("token has no \"sub\"");
  }
  verified.subject = claims["sub"].get<std::string>();
  if (claims.contains("scope") && claims["scope"].is_string()) {
    for (absl::string_view scope : absl::StrSplit(
             claims["scope"].get<std::string>(), ' ', absl::SkipEmpty())) {
      verified.scopes.insert(std::string(scope));
    }
  }
  if (claims.contains("scp") && claims["scp"].is_array()) {
    for (const nlohmann::json& scope : claims["scp"]) {
      if (scope.is_string()) verified.scopes.insert(scope.get<std::string>());
    }
  }
  *exp_out = *exp;
  *nbf_out = nbf;
  return verified;
}

}  // namespace dsar::gateway
