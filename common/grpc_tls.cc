#include "common/grpc_tls.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace dsar {

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const TlsFiles& files, const std::string& flag_prefix) {
  if (files.empty()) return grpc::InsecureChannelCredentials();
  const std::pair<const char*, const std::string*> parts[] = {
      {"ca", &files.ca}, {"cert", &files.cert}, {"key", &files.key}};
  for (const auto& [name, path] : parts) {
    if (path->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag_prefix, name,
                       ": required with the other TLS flags (mutual TLS needs "
                       "the CA, a certificate and its key)"));
    }
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadFile(files.ca);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> cert = ReadFile(files.cert);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(files.key);
  if (!key.ok()) return key.status();
  ssl.pem_root_certs = std::move(*ca);
  ssl.pem_cert_chain = std::move(*cert);
  ssl.pem_private_key = std::move(*key);
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<std::string> CertificateCommonName(
    const std::string& cert_file) {
  absl::StatusOr<std::string> pem = ReadFile(cert_file);
  if (!pem.ok()) return pem.status();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())), &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(cert_file, ": no PEM certificate"));
  }
  char name[256] = {0};
  int length = X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()),
                                         NID_commonName, name, sizeof(name));
  if (length <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(cert_file, ": the certificate's subject has no CN"));
  }
  return std::string(name, length);
}

}  // namespace dsar
