#include "tests/testing/test_pki.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dsar::testing {
namespace {

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

KeyPtr NewKey() { return KeyPtr(EVP_EC_gen("P-256"), EVP_PKEY_free); }

std::string KeyPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                           nullptr);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size);
}

std::string CertPem(X509* cert) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size);
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension =
      X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
}

CertPtr NewCert(EVP_PKEY* key, const std::string& common_name, long serial) {
  CertPtr cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24L * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  return cert;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TestPki> TestPki::Create(const std::string& dir,
                                        const std::string& name) {
  KeyPtr key = NewKey();
  if (key == nullptr) return absl::InternalError("EC key generation failed");
  CertPtr cert = NewCert(key.get(), absl::StrCat(name, " test CA"), 1);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  AddExtension(cert.get(), cert.get(), NID_basic_constraints,
               "critical,CA:TRUE");
  AddExtension(cert.get(), cert.get(), NID_key_usage,
               "critical,keyCertSign,cRLSign");
  AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return absl::InternalError("CA self-signature failed");
  }
  TestPki pki;
  pki.dir_ = dir;
  pki.ca_pem_ = CertPem(cert.get());
  pki.ca_key_pem_ = KeyPem(key.get());
  pki.ca_file_ = absl::StrCat(dir, "/", name, "-ca.pem");
  absl::Status written = WriteFile(pki.ca_file_, pki.ca_pem_);
  if (!written.ok()) return written;
  return pki;
}

absl::StatusOr<IssuedCertificate> TestPki::Issue(
    const std::string& file_stem, const std::vector<std::string>& dns_names) {
  static long serial = 100;
  std::unique_ptr<BIO, decltype(&BIO_free)> ca_bio(
      BIO_new_mem_buf(ca_pem_.data(), static_cast<int>(ca_pem_.size())),
      BIO_free);
  CertPtr ca(PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr),
             X509_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> ca_key_bio(
      BIO_new_mem_buf(ca_key_pem_.data(), static_cast<int>(ca_key_pem_.size())),
      BIO_free);
  KeyPtr ca_key(
      PEM_read_bio_PrivateKey(ca_key_bio.get(), nullptr, nullptr, nullptr),
      EVP_PKEY_free);
  KeyPtr key = NewKey();
  if (ca == nullptr || ca_key == nullptr || key == nullptr) {
    return absl::InternalError("test PKI: cannot load the CA or make a key");
  }
  CertPtr cert = NewCert(
      key.get(), dns_names.empty() ? file_stem : dns_names.front(), ++serial);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get()));
  AddExtension(cert.get(), ca.get(), NID_basic_constraints,
               "critical,CA:FALSE");
  AddExtension(cert.get(), ca.get(), NID_key_usage,
               "critical,digitalSignature");
  AddExtension(cert.get(), ca.get(), NID_ext_key_usage,
               "serverAuth,clientAuth");
  std::vector<std::string> names;
  names.reserve(dns_names.size() + 1);
  for (const std::string& dns : dns_names) names.push_back("DNS:" + dns);
  names.push_back("IP:127.0.0.1");
  AddExtension(cert.get(), ca.get(), NID_subject_alt_name,
               absl::StrJoin(names, ","));
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) == 0) {
    return absl::InternalError("test PKI: signing the certificate failed");
  }
  IssuedCertificate issued;
  issued.cert_pem = CertPem(cert.get());
  issued.key_pem = KeyPem(key.get());
  issued.cert_file = absl::StrCat(dir_, "/", file_stem, ".pem");
  issued.key_file = absl::StrCat(dir_, "/", file_stem, ".key");
  absl::Status written = WriteFile(issued.cert_file, issued.cert_pem);
  if (written.ok()) written = WriteFile(issued.key_file, issued.key_pem);
  if (!written.ok()) return written;
  return issued;
}

}  // namespace dsar::testing
