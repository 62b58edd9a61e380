#include "engine/download_url.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "storage/sealed_box.h"

namespace dsar {
namespace {

constexpr char kCanonicalVersion[] = "dsar-download/v1";
constexpr size_t kMinKeyBytes = 32;
constexpr size_t kSignatureBytes = 32;  // SHA-256.
constexpr size_t kMaxRequestIdLength = 128;

DownloadUrlVerdict Verdict(DownloadUrlOutcome outcome, std::string reason) {
  return DownloadUrlVerdict{outcome, std::move(reason)};
}

// Request ids are "dsr_<hex>"; a token accepts the URL-safe characters only,
// so that the path needs no escaping and the canonical string no quoting.
bool IsUrlSafeId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// Decodes base64url without padding into exactly `bytes` bytes.
bool DecodesTo(absl::string_view text, size_t bytes, std::string* out) {
  if (text.find('=') != absl::string_view::npos) return false;
  std::string decoded;
  if (!absl::WebSafeBase64Unescape(text, &decoded) || decoded.size() != bytes) {
    return false;
  }
  // Only the canonical spelling: no second encoding of the same bytes.
  if (absl::WebSafeBase64Escape(decoded) != text) return false;
  if (out != nullptr) *out = std::move(decoded);
  return true;
}

}  // namespace

absl::Status DownloadUrlStatus(const DownloadUrlVerdict& verdict) {
  switch (verdict.outcome) {
    case DownloadUrlOutcome::kValid:
      return absl::OkStatus();
    case DownloadUrlOutcome::kMalformed:
      return absl::InvalidArgumentError(verdict.reason);
    case DownloadUrlOutcome::kBadSignature:
      return absl::PermissionDeniedError(verdict.reason);
    case DownloadUrlOutcome::kExpired:
    case DownloadUrlOutcome::kRevoked:
      return absl::FailedPreconditionError(verdict.reason);
  }
  return absl::InternalError("unknown download URL outcome");
}

absl::StatusOr<DownloadUrlSigner> DownloadUrlSigner::Create(std::string key) {
  if (key.size() < kMinKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("download URL key: ", key.size(), " bytes; at least ",
                     kMinKeyBytes, " are needed"));
  }
  return DownloadUrlSigner(std::move(key));
}

absl::StatusOr<DownloadUrlSigner> DownloadUrlSigner::FromKeysDir(
    const std::string& keys_dir) {
  absl::StatusOr<std::string> key =
      LoadOrCreateKeyFile(absl::StrCat(keys_dir, "/", kDownloadUrlKeyFile));
  if (!key.ok()) return key.status();
  return Create(*std::move(key));
}

std::string DownloadCanonicalString(const DownloadToken& token) {
  return absl::StrCat(kCanonicalVersion, "\n", token.request_id, "\n",
                      token.expires, "\n", token.generation, "\n", token.nonce);
}

std::string DownloadUrlPath(const DownloadToken& token) {
  return absl::StrCat(kDownloadPathPrefix, token.request_id,
                      "?expires=", token.expires,
                      "&generation=", token.generation, "&nonce=", token.nonce,
                      "&sig=", token.signature);
}

std::string DownloadUrlSigner::Sign(const DownloadToken& token) const {
  std::string canonical = DownloadCanonicalString(token);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_length = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(canonical.data()),
       canonical.size(), mac, &mac_length);
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(mac), mac_length));
}

absl::StatusOr<DownloadToken> DownloadUrlSigner::Issue(
    const std::string& request_id, uint32_t generation,
    absl::Time expires_at) const {
  if (!IsUrlSafeId(request_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("id: \"", absl::CHexEscape(request_id),
                     "\" is not a request id (letters, digits, _ - . only)"));
  }
  unsigned char nonce[kDownloadNonceBytes];
  if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
    return absl::InternalError("no randomness for a download URL nonce");
  }
  DownloadToken token;
  token.request_id = request_id;
  token.expires = absl::ToUnixSeconds(expires_at);
  token.generation = generation;
  token.nonce = absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(nonce), sizeof(nonce)));
  token.signature = Sign(token);
  return token;
}

DownloadUrlVerdict DownloadUrlSigner::VerifySignature(
    const DownloadToken& token) const {
  if (!IsUrlSafeId(token.request_id)) {
    return Verdict(DownloadUrlOutcome::kMalformed,
                   "id: not a request id (letters, digits, _ - . only)");
  }
  if (token.expires <= 0) {
    return Verdict(DownloadUrlOutcome::kMalformed,
                   "expires: missing or not a positive unix time");
  }
  if (!DecodesTo(token.nonce, kDownloadNonceBytes, nullptr)) {
    return Verdict(DownloadUrlOutcome::kMalformed,
                   absl::StrCat("nonce: not ", kDownloadNonceBytes,
                                " bytes in unpadded base64url"));
  }
  std::string presented;
  if (!DecodesTo(token.signature, kSignatureBytes, &presented)) {
    return Verdict(DownloadUrlOutcome::kMalformed,
                   absl::StrCat("sig: not ", kSignatureBytes,
                                " bytes in unpadded base64url"));
  }
  std::string expected;
  // Sign returns the canonical base64url of 32 bytes: it decodes.
  absl::WebSafeBase64Unescape(Sign(token), &expected);
  if (expected.size() != presented.size() ||
      CRYPTO_memcmp(expected.data(), presented.data(), expected.size()) != 0) {
    return Verdict(DownloadUrlOutcome::kBadSignature,
                   absl::StrCat("sig: the download URL's signature does not "
                                "match (altered, or not issued for request ",
                                token.request_id, ")"));
  }
  return Verdict(DownloadUrlOutcome::kValid, "");
}

DownloadUrlVerdict DownloadUrlSigner::Verify(
    const DownloadToken& token, absl::Time now,
    uint32_t current_generation) const {
  DownloadUrlVerdict signature = VerifySignature(token);
  if (!signature.ok()) return signature;
  absl::Time expires = absl::FromUnixSeconds(token.expires);
  if (now >= expires) {
    return Verdict(DownloadUrlOutcome::kExpired,
                   absl::StrCat("expires: the download URL expired at ",
                                absl::FormatTime(absl::RFC3339_sec, expires,
                                                 absl::UTCTimeZone()),
                                "; ask for a new one"));
  }
  if (token.generation < current_generation) {
    return Verdict(
        DownloadUrlOutcome::kRevoked,
        absl::StrCat("generation: the download URLs of request ",
                     token.request_id,
                     " issued before the last revocation no longer work "
                     "(URL generation ",
                     token.generation, ", current ", current_generation,
                     "); ask for a new one"));
  }
  if (token.generation > current_generation) {
    return Verdict(
        DownloadUrlOutcome::kBadSignature,
        absl::StrCat("generation: ", token.generation,
                     " was never issued for request ", token.request_id));
  }
  return Verdict(DownloadUrlOutcome::kValid, "");
}

}  // namespace dsar
