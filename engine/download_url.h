#ifndef DSAR_ENGINE_DOWNLOAD_URL_H_
#define DSAR_ENGINE_DOWNLOAD_URL_H_

// Signed, time-limited download URLs for a request's bundle
// (docs/delivery.md). A token names the request, its expiry, the request's
// download generation when it was issued and a random nonce; its signature is
// HMAC-SHA256 under dsard's download key over a versioned canonical string of
// those four. Pure: the time is passed in, nothing is stored, and revocation
// is a generation counter kept on the request (RequestRecord.
// download_generation) that the caller passes to Verify.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace dsar {

// The key file under dsard's keys directory.
inline constexpr char kDownloadUrlKeyFile[] = "download_url.key";
// Random bytes in a nonce (base64url without padding: 22 characters).
inline constexpr int kDownloadNonceBytes = 16;
// Where the gateway serves downloads: kDownloadPathPrefix + request id.
inline constexpr char kDownloadPathPrefix[] = "/v1/downloads/";

// The parts of a download URL. Every field is covered by the signature.
struct DownloadToken {
  std::string request_id;
  int64_t expires = 0;      // Unix seconds; the URL works before this time.
  uint32_t generation = 0;  // The request's download generation at issue.
  std::string nonce;        // base64url (no padding) of kDownloadNonceBytes.
  std::string signature;    // base64url (no padding) of the HMAC-SHA256.
};

// What Verify found. Every outcome but kValid refuses the download.
enum class DownloadUrlOutcome {
  kValid,
  kMalformed,     // A field is missing or not in its format.
  kBadSignature,  // Altered, signed under another key, or for another request.
  kExpired,       // Correctly signed, past its expiry.
  kRevoked,       // Correctly signed, issued before the last revocation.
};

struct DownloadUrlVerdict {
  DownloadUrlOutcome outcome = DownloadUrlOutcome::kMalformed;
  std::string reason;  // Names the field or the time; "" when kValid.

  bool ok() const { return outcome == DownloadUrlOutcome::kValid; }
};

// The status a refused download answers with (docs/delivery.md):
// INVALID_ARGUMENT (malformed), PERMISSION_DENIED (bad signature),
// FAILED_PRECONDITION (expired, revoked: the link is gone for good, a new one
// is needed); OK for kValid. The message names the reason.
absl::Status DownloadUrlStatus(const DownloadUrlVerdict& verdict);

class DownloadUrlSigner {
 public:
  // INVALID_ARGUMENT unless `key` has at least 32 bytes.
  static absl::StatusOr<DownloadUrlSigner> Create(std::string key);
  // The signer whose key is `keys_dir`/kDownloadUrlKeyFile, created (random,
  // mode 0600) on first use. The file's read and write errors.
  static absl::StatusOr<DownloadUrlSigner> FromKeysDir(
      const std::string& keys_dir);

  // A token for `request_id` under `generation`, valid until `expires_at`
  // (rounded down to the second), with a fresh random nonce. INTERNAL when
  // the system has no randomness; INVALID_ARGUMENT for an empty id or one
  // holding a newline.
  absl::StatusOr<DownloadToken> Issue(const std::string& request_id,
                                      uint32_t generation,
                                      absl::Time expires_at) const;

  // Checks `token` in this order, stopping at the first failure: its
  // format, its signature, its expiry against `now`, and its generation
  // against the request's `current_generation` (older: revoked; newer: a
  // generation the request never had, reported as a bad signature). Compares
  // signatures in constant time.
  DownloadUrlVerdict Verify(const DownloadToken& token, absl::Time now,
                            uint32_t current_generation) const;

  // Format and signature only (kValid, kMalformed or kBadSignature), for a
  // caller that wants to refuse a forged URL before looking the request up.
  DownloadUrlVerdict VerifySignature(const DownloadToken& token) const;

 private:
  explicit DownloadUrlSigner(std::string key) : key_(std::move(key)) {}
  std::string Sign(const DownloadToken& token) const;

  std::string key_;
};

// The string the signature covers: "dsar-download/v1\n<request id>\n
// <expires>\n<generation>\n<nonce>". Exposed for tests.
std::string DownloadCanonicalString(const DownloadToken& token);

// The URL path and query the gateway serves the token at:
// "/v1/downloads/<id>?expires=<unix
// s>&generation=<n>&nonce=<b64url>&sig=<b64url>". The id is percent-encoded
// (request ids need none).
std::string DownloadUrlPath(const DownloadToken& token);

}  // namespace dsar

#endif  // DSAR_ENGINE_DOWNLOAD_URL_H_
