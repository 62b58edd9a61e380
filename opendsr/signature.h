#ifndef DSAR_OPENDSR_SIGNATURE_H_
#define DSAR_OPENDSR_SIGNATURE_H_

// OpenDSR 2.0 response and callback signatures (docs/opendsr.md): a
// processor signs the raw body of every response and callback with the key
// of its signing certificate (SHA-256, base64 in X-OpenDSR-Signature), and
// names its domain in X-OpenDSR-Processor-Domain. The controller trusts the
// certificate when it chains to a configured CA, is within its validity
// period and its SAN names that domain (security_guidelines.md, "Callback
// validation", steps 2.ii-vi), then checks signatures with its public key.

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace dsar::opendsr {

inline constexpr char kSignatureHeader[] = "X-OpenDSR-Signature";
inline constexpr char kDomainHeader[] = "X-OpenDSR-Processor-Domain";

// A processor's signing certificate, checked once and then used to check
// many signatures. Copyable and thread-safe: it holds only the public key.
class ProcessorCertificate {
 public:
  // Parses the PEM certificate `pem` and checks it: chain to a CA in the
  // PEM file `ca_file` (OpenSSL's verifier: validity dates, CA flags), and
  // `domain` in its SAN (X509_check_host, no wildcard beyond one label).
  // UNAUTHENTICATED naming the failed check when it does not hold;
  // FAILED_PRECONDITION when `ca_file` cannot be read.
  static absl::StatusOr<ProcessorCertificate> Verify(std::string_view pem,
                                                     const std::string& ca_file,
                                                     std::string_view domain);

  // OK when `signature_base64` is a valid signature of `body` by the
  // certificate's key with SHA-256. INVALID_ARGUMENT when the signature is
  // missing, not base64 or does not verify.
  absl::Status CheckSignature(std::string_view body,
                              std::string_view signature_base64) const;

  const std::string& domain() const { return domain_; }

 private:
  ProcessorCertificate(std::shared_ptr<EVP_PKEY> key, std::string domain)
      : key_(std::move(key)), domain_(std::move(domain)) {}

  std::shared_ptr<EVP_PKEY> key_;
  std::string domain_;
};

// Signs `body` with the PEM private key `key_pem` (SHA-256) and returns the
// base64 signature, as a processor does. For test processors and tools.
absl::StatusOr<std::string> SignBody(std::string_view body,
                                     std::string_view key_pem);

}  // namespace dsar::opendsr

#endif  // DSAR_OPENDSR_SIGNATURE_H_
