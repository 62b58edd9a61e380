#ifndef DSAR_COMMON_GRPC_TLS_H_
#define DSAR_COMMON_GRPC_TLS_H_

// Credentials of the connections to dsard. Between dsard, workers, the
// gateway and dsarctl TLS is always mutual: each side shows a certificate
// issued by the deployment's CA, and dsard takes the caller's role from the
// client certificate's subject (docs/transport-security.md).

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace dsar {

// PEM files of one side of a mutual-TLS connection.
struct TlsFiles {
  std::string ca;    // CA that issued the other side's certificate.
  std::string cert;  // This side's certificate (chain).
  std::string key;   // Its private key.

  bool empty() const { return ca.empty() && cert.empty() && key.empty(); }
};

// Channel credentials for `files`: insecure (plaintext) when all three are
// empty, mutual TLS when all three are set. INVALID_ARGUMENT naming the
// missing `flag_prefix`-ca/cert/key flag when only some are set; the read
// error when a file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const TlsFiles& files, const std::string& flag_prefix);

// The subject's common name (CN) of the PEM certificate in `cert_file`;
// INVALID_ARGUMENT when the file holds no certificate or it has no CN.
absl::StatusOr<std::string> CertificateCommonName(const std::string& cert_file);

}  // namespace dsar

#endif  // DSAR_COMMON_GRPC_TLS_H_
