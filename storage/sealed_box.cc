#include "storage/sealed_box.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace dsar {
namespace {

constexpr int kNonceBytes = 12;
constexpr int kTagBytes = 16;

using CipherContext =
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* Bytes(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

}  // namespace

absl::StatusOr<SealedBox> SealedBox::Create(std::string key) {
  if (key.size() != kSealedBoxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("sealed box key: ", kSealedBoxKeyBytes,
                     " bytes needed, got ", key.size()));
  }
  return SealedBox(std::move(key));
}

absl::StatusOr<std::string> SealedBox::Seal(
    std::string_view plaintext, std::string_view associated_data) const {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  unsigned char* nonce = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(nonce, kNonceBytes) != 1) {
    return absl::InternalError("no randomness for a nonce");
  }
  CipherContext ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int length = 0;
  unsigned char* body = nonce + kNonceBytes;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, Bytes(key_),
                         nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &length, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), body, &length, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), body + length, &length) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          body + plaintext.size()) != 1) {
    return absl::InternalError("AES-256-GCM encryption failed");
  }
  return out;
}

absl::StatusOr<std::string> SealedBox::Open(
    std::string_view sealed, std::string_view associated_data) const {
  if (sealed.size() < kNonceBytes + kTagBytes) {
    return absl::DataLossError("sealed value too short");
  }
  size_t body_size = sealed.size() - kNonceBytes - kTagBytes;
  std::string out(body_size, '\0');
  std::string tag(sealed.substr(kNonceBytes + body_size));
  CipherContext ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int length = 0;
  unsigned char* plain = reinterpret_cast<unsigned char*>(out.data());
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, Bytes(key_),
                         Bytes(sealed)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &length, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain, &length,
                        Bytes(sealed.substr(kNonceBytes)),
                        static_cast<int>(body_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                          tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plain + length, &length) != 1) {
    return absl::DataLossError(
        "sealed value does not open: altered, or another key or context");
  }
  return out;
}

absl::StatusOr<std::string> LoadOrCreateKeyFile(const std::string& path) {
  absl::StatusOr<std::string> hex = ReadFile(path);
  if (!hex.ok()) {
    unsigned char secret[kSealedBoxKeyBytes];
    if (RAND_bytes(secret, sizeof(secret)) != 1) {
      return absl::InternalError(absl::StrCat("cannot generate ", path));
    }
    hex = absl::BytesToHexString(absl::string_view(
        reinterpret_cast<const char*>(secret), sizeof(secret)));
    absl::Status written = WriteFileAtomically(path, *hex);
    if (!written.ok()) return written;
  }
  return absl::HexStringToBytes(absl::StripAsciiWhitespace(*hex));
}

}  // namespace dsar
