#include "opendsr/signature.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace dsar::opendsr {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct StoreFree {
  void operator()(X509_STORE* store) const { X509_STORE_free(store); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* ctx) const { X509_STORE_CTX_free(ctx); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof(buffer));
  return buffer;
}

}  // namespace

absl::StatusOr<ProcessorCertificate> ProcessorCertificate::Verify(
    std::string_view pem, const std::string& ca_file, std::string_view domain) {
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<X509, X509Free> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    ERR_clear_error();
    return absl::UnauthenticatedError(
        "processor certificate: not a PEM X.509 certificate");
  }
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  if (X509_STORE_load_file(store.get(), ca_file.c_str()) != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("signing CA file ", ca_file,
                     " cannot be read as PEM certificates: ", OpenSslError()));
  }
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  if (X509_verify_cert(ctx.get()) != 1) {
    int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::UnauthenticatedError(
        absl::StrCat("processor certificate does not verify against ", ca_file,
                     ": ", X509_verify_cert_error_string(error)));
  }
  if (domain.empty() || X509_check_host(cert.get(), domain.data(),
                                        domain.size(), 0, nullptr) != 1) {
    ERR_clear_error();
    return absl::UnauthenticatedError(absl::StrCat(
        "processor certificate is not issued to domain \"", std::string(domain),
        "\" (not in its subject alternative names)"));
  }
  EVP_PKEY* key = X509_get_pubkey(cert.get());
  if (key == nullptr) {
    return absl::UnauthenticatedError(
        absl::StrCat("processor certificate: no public key: ", OpenSslError()));
  }
  return ProcessorCertificate(std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free),
                              absl::AsciiStrToLower(std::string(domain)));
}

absl::Status ProcessorCertificate::CheckSignature(
    std::string_view body, std::string_view signature_base64) const {
  // Header values may be folded over several lines (the spec's examples
  // are): whitespace is not part of base64.
  std::string compact;
  for (char c : signature_base64) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) compact += c;
  }
  if (compact.empty()) {
    return absl::InvalidArgumentError("no X-OpenDSR-Signature");
  }
  std::string signature;
  if (!absl::Base64Unescape(compact, &signature)) {
    return absl::InvalidArgumentError("X-OpenDSR-Signature is not base64");
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                           key_.get()) != 1 ||
      EVP_DigestVerify(
          ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
          signature.size(), reinterpret_cast<const unsigned char*>(body.data()),
          body.size()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "X-OpenDSR-Signature does not verify with the certificate of ", domain_,
        " (body changed, or signed by another key)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SignBody(std::string_view body,
                                     std::string_view key_pem) {
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  std::shared_ptr<EVP_PKEY> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr),
      EVP_PKEY_free);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("signing key: ", OpenSslError()));
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t length = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                         key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(body.data()),
                     body.size()) != 1) {
    return absl::InternalError(absl::StrCat("signing: ", OpenSslError()));
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(&signature[0]),
                     &length,
                     reinterpret_cast<const unsigned char*>(body.data()),
                     body.size()) != 1) {
    return absl::InternalError(absl::StrCat("signing: ", OpenSslError()));
  }
  signature.resize(length);
  return absl::Base64Escape(signature);
}

}  // namespace dsar::opendsr
