#include "storage/audit/checkpoint.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "storage/audit/merkle.h"

namespace dsar::audit {
namespace {

constexpr size_t kRootHashSize = 32;
constexpr size_t kPublicKeySize = 32;
constexpr size_t kSignatureSize = 64;
constexpr size_t kKeyIdSize = 4;
// Signed-note signature type of Ed25519.
constexpr char kEd25519Type = 0x01;
// U+2014 EM DASH then a space: the start of every signature line.
constexpr std::string_view kSignaturePrefix = "\xE2\x80\x94 ";

absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// The OpenSSL error queue as text (emptied), for error messages.
std::string OpenSslErrors() {
  std::string text;
  char buffer[256];
  while (unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "no OpenSSL error" : text;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// Never prompts for a pass phrase: the key file is not encrypted.
int NoPassphrase(char*, int, int, void*) { return 0; }

// A key name of a signed note: non-empty, no spaces, no '+'.
bool IsValidKeyName(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (c <= ' ' || c == '+' || c == 0x7f) return false;
  }
  return true;
}

absl::Status InvalidKeyName(std::string_view key_name) {
  return absl::InvalidArgumentError(absl::StrCat(
      "signed-note key name \"", AbslView(key_name),
      "\" must be non-empty with no spaces, control characters or '+'"));
}

// Standard padded base64 only: the text must be exactly what encoding the
// decoded bytes gives back (absl alone also takes unpadded input).
bool StrictBase64Decode(std::string_view text, std::string* bytes) {
  std::string decoded;
  if (!absl::Base64Unescape(AbslView(text), &decoded)) return false;
  if (absl::Base64Escape(decoded) != AbslView(text)) return false;
  *bytes = std::move(decoded);
  return true;
}

absl::StatusOr<std::string> RawPublicKey(EVP_PKEY* key) {
  unsigned char raw[kPublicKeySize];
  size_t length = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(key, raw, &length) != 1 ||
      length != kPublicKeySize) {
    return absl::InternalError(
        absl::StrCat("reading the Ed25519 public key: ", OpenSslErrors()));
  }
  return std::string(reinterpret_cast<char*>(raw), length);
}

// First 4 bytes of SHA-256(name || '\n' || 0x01 || public key).
std::string KeyId(std::string_view key_name, std::string_view public_key_raw) {
  Sha256 hash;
  hash.Update(key_name);
  hash.Update("\n");
  hash.Update(std::string_view(&kEd25519Type, 1));
  hash.Update(public_key_raw);
  return hash.FinishRaw().substr(0, kKeyIdSize);
}

absl::StatusOr<PkeyPtr> ParsePrivateKeyPem(const std::string& pem,
                                           const std::string& path) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::ResourceExhaustedError("BIO_new_mem_buf");
  PkeyPtr key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds no PEM private key: ", OpenSslErrors()));
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds a private key that is not Ed25519"));
  }
  return key;
}

absl::StatusOr<PkeyPtr> ParsePublicKeyPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::ResourceExhaustedError("BIO_new_mem_buf");
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a PEM public key: ", OpenSslErrors()));
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("public key is not Ed25519");
  }
  return key;
}

absl::StatusOr<std::string> PublicKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return absl::InternalError(
        absl::StrCat("writing the public key PEM: ", OpenSslErrors()));
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

absl::StatusOr<std::string> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  // Unencrypted PKCS#8; the file mode (0600) is what protects it.
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    return absl::InternalError(
        absl::StrCat("writing the private key PEM: ", OpenSslErrors()));
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

absl::StatusOr<PkeyPtr> GenerateKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (key == nullptr) {
    return absl::InternalError(
        absl::StrCat("generating an Ed25519 key: ", OpenSslErrors()));
  }
  return key;
}

// Parses "<origin>\n<size>\n<base64 root>\n[extension lines]".
absl::StatusOr<Checkpoint> ParseBody(std::string_view body) {
  std::vector<std::string_view> lines;
  while (!body.empty()) {
    size_t newline = body.find('\n');
    if (newline == std::string_view::npos) {
      return absl::InvalidArgumentError(
          "checkpoint body does not end with a newline");
    }
    lines.push_back(body.substr(0, newline));
    body.remove_prefix(newline + 1);
  }
  if (lines.size() < 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint body has ", lines.size(), " lines, want at least 3"));
  }
  Checkpoint checkpoint;
  if (lines[0].empty()) {
    return absl::InvalidArgumentError("checkpoint origin is empty");
  }
  checkpoint.origin = std::string(lines[0]);

  std::string_view size = lines[1];
  bool canonical = !size.empty() && !(size.size() > 1 && size[0] == '0');
  uint64_t value = 0;
  for (char c : size) {
    if (!canonical) break;
    if (c < '0' || c > '9') {
      canonical = false;
      break;
    }
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) {
      canonical = false;
      break;
    }
    value = value * 10 + digit;
  }
  if (!canonical) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint size \"", AbslView(size), "\" is not a decimal uint64"));
  }
  checkpoint.size = value;

  if (!StrictBase64Decode(lines[2], &checkpoint.root_hash) ||
      checkpoint.root_hash.size() != kRootHashSize) {
    return absl::InvalidArgumentError(
        "checkpoint root is not the base64 of 32 bytes");
  }
  return checkpoint;
}

}  // namespace

std::string CheckpointBody(const Checkpoint& checkpoint) {
  return absl::StrCat(checkpoint.origin, "\n", checkpoint.size, "\n",
                      absl::Base64Escape(checkpoint.root_hash), "\n");
}

absl::StatusOr<std::unique_ptr<CheckpointSigner>>
CheckpointSigner::LoadOrCreate(const std::string& private_key_path,
                               const std::string& key_name) {
  if (!key_name.empty() && !IsValidKeyName(key_name)) {
    return InvalidKeyName(key_name);
  }
  PkeyPtr key;
  std::string public_key_path = private_key_path + ".pub";
  struct stat info;
  if (::stat(private_key_path.c_str(), &info) == 0) {
    ASSIGN_OR_RETURN(std::string pem, ReadFile(private_key_path));
    ASSIGN_OR_RETURN(key, ParsePrivateKeyPem(pem, private_key_path));
    if (::stat(public_key_path.c_str(), &info) != 0 && errno == ENOENT) {
      // A crash between the two writes below; auditors need the .pub.
      ASSIGN_OR_RETURN(std::string public_pem, PublicKeyPem(key.get()));
      RETURN_IF_ERROR(WriteFileAtomically(public_key_path, public_pem));
    }
  } else if (errno == ENOENT) {
    ASSIGN_OR_RETURN(key, GenerateKey());
    ASSIGN_OR_RETURN(std::string public_pem, PublicKeyPem(key.get()));
    ASSIGN_OR_RETURN(std::string private_pem, PrivateKeyPem(key.get()));
    // Public key first: once the private key exists, so does its .pub.
    RETURN_IF_ERROR(WriteFileAtomically(public_key_path, public_pem));
    RETURN_IF_ERROR(WriteFileAtomically(private_key_path, private_pem));
  } else {
    return absl::InternalError(
        absl::StrCat("stat ", private_key_path, ": ", std::strerror(errno)));
  }

  ASSIGN_OR_RETURN(std::string public_key_raw, RawPublicKey(key.get()));
  std::unique_ptr<CheckpointSigner> signer(new CheckpointSigner());
  signer->key_ = key.release();
  signer->public_key_raw_ = std::move(public_key_raw);
  signer->private_key_path_ = private_key_path;
  if (!key_name.empty()) RETURN_IF_ERROR(signer->SetKeyName(key_name));
  return signer;
}

absl::Status CheckpointSigner::SetKeyName(const std::string& key_name) {
  if (!IsValidKeyName(key_name)) return InvalidKeyName(key_name);
  key_name_ = key_name;
  std::string path = VerifierKeyPath(private_key_path_);
  std::string vkey = absl::StrCat(verifier_key(), "\n");
  absl::StatusOr<std::string> existing = ReadFile(path);
  if (existing.ok() && *existing == vkey) return absl::OkStatus();
  return WriteFileAtomically(path, vkey);
}

std::string CheckpointSigner::verifier_key() const {
  return VerifierKey(key_name_, public_key_raw_);
}

std::string VerifierKey(std::string_view key_name,
                        std::string_view public_key_raw) {
  return absl::StrCat(AbslView(key_name), "+",
                      absl::BytesToHexString(KeyId(key_name, public_key_raw)),
                      "+",
                      absl::Base64Escape(absl::StrCat(
                          AbslView(std::string_view(&kEd25519Type, 1)),
                          AbslView(public_key_raw))));
}

std::string VerifierKeyPath(const std::string& private_key_path) {
  absl::string_view path = private_key_path;
  if (absl::ConsumeSuffix(&path, ".key")) return absl::StrCat(path, ".vkey");
  return absl::StrCat(private_key_path, ".vkey");
}

absl::Status CheckExtends(const Checkpoint& remembered,
                          const Checkpoint& current,
                          const std::vector<std::string>& consistency_proof) {
  if (current.size < remembered.size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rollback: the log of ", current.origin, " now has ", current.size,
        " entries, but a checkpoint of ", remembered.size,
        " entries was verified before: entries were removed or an older copy "
        "of the log was restored"));
  }
  absl::Status consistent;
  if (current.size == remembered.size) {
    if (current.root_hash != remembered.root_hash) {
      consistent = absl::DataLossError(absl::StrCat(
          "same size, different root (",
          absl::BytesToHexString(current.root_hash), " instead of ",
          absl::BytesToHexString(remembered.root_hash), ")"));
    }
  } else if (remembered.size == 0) {
    if (remembered.root_hash != merkle::EmptyRootHash())
      consistent = absl::DataLossError("the remembered empty tree has a root");
  } else {
    consistent = merkle::VerifyConsistency(
        remembered.size, current.size, consistency_proof, remembered.root_hash,
        current.root_hash);
  }
  if (!consistent.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "fork: the checkpoint of ", current.size, " entries of ",
        current.origin, " does not extend the checkpoint of ", remembered.size,
        " entries verified before (the history was rewritten, or an older "
        "copy of the log was restored and grew again): ",
        consistent.message()));
  }
  return absl::OkStatus();
}

CheckpointSigner::~CheckpointSigner() {
  EVP_PKEY_free(static_cast<EVP_PKEY*>(key_));
}

absl::StatusOr<std::string> CheckpointSigner::Sign(
    const Checkpoint& checkpoint) const {
  if (key_name_.empty()) {
    return absl::FailedPreconditionError(
        "checkpoint signer: no key name yet (SetKeyName)");
  }
  if (checkpoint.origin.empty() ||
      checkpoint.origin.find('\n') != std::string::npos) {
    return absl::InvalidArgumentError(
        "checkpoint origin must be one non-empty line");
  }
  if (checkpoint.root_hash.size() != kRootHashSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint root hash is ", checkpoint.root_hash.size(),
                     " bytes, want ", kRootHashSize));
  }
  std::string body = CheckpointBody(checkpoint);

  MdCtxPtr ctx(EVP_MD_CTX_new());
  unsigned char signature[kSignatureSize];
  size_t signature_size = sizeof(signature);
  // Ed25519 is "pure": no digest, one-shot over the whole message.
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr,
                         static_cast<EVP_PKEY*>(key_)) != 1 ||
      EVP_DigestSign(ctx.get(), signature, &signature_size,
                     reinterpret_cast<const unsigned char*>(body.data()),
                     body.size()) != 1 ||
      signature_size != kSignatureSize) {
    return absl::InternalError(
        absl::StrCat("Ed25519 signing: ", OpenSslErrors()));
  }
  std::string key_id_and_signature =
      KeyId(key_name_, public_key_raw_) +
      std::string(reinterpret_cast<char*>(signature), signature_size);
  return absl::StrCat(body, "\n", AbslView(kSignaturePrefix), key_name_, " ",
                      absl::Base64Escape(key_id_and_signature), "\n");
}

std::string CheckpointSigner::public_key_pem() const {
  absl::StatusOr<std::string> pem = PublicKeyPem(static_cast<EVP_PKEY*>(key_));
  // Cannot fail for a key that loaded: only a memory BIO is involved.
  return pem.ok() ? *std::move(pem) : std::string();
}

absl::StatusOr<Checkpoint> ParseCheckpointNote(std::string_view note) {
  size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) {
    return absl::InvalidArgumentError(
        "signed note has no blank line before its signatures");
  }
  return ParseBody(note.substr(0, split + 1));
}

absl::StatusOr<Checkpoint> VerifyCheckpoint(std::string_view note,
                                            std::string_view public_key_pem,
                                            std::string_view key_name) {
  ASSIGN_OR_RETURN(PkeyPtr key, ParsePublicKeyPem(public_key_pem));
  ASSIGN_OR_RETURN(std::string public_key_raw, RawPublicKey(key.get()));

  // The text ends at the last blank line; signature lines follow it.
  size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) {
    return absl::InvalidArgumentError(
        "signed note has no blank line before its signatures");
  }
  std::string_view body = note.substr(0, split + 1);
  std::string_view signatures = note.substr(split + 2);
  if (signatures.empty() || signatures.back() != '\n') {
    return absl::InvalidArgumentError(
        "signed note has no signature lines, or they lack a final newline");
  }

  std::string want_key_id = KeyId(key_name, public_key_raw);
  bool found = false;
  while (!signatures.empty()) {
    size_t newline = signatures.find('\n');
    std::string_view line = signatures.substr(0, newline);
    signatures.remove_prefix(newline + 1);
    if (line.substr(0, kSignaturePrefix.size()) != kSignaturePrefix) {
      return absl::InvalidArgumentError(
          "signature line does not start with an em dash and a space");
    }
    line.remove_prefix(kSignaturePrefix.size());
    size_t space = line.find(' ');
    if (space == std::string_view::npos) {
      return absl::InvalidArgumentError("signature line has no signature");
    }
    std::string_view name = line.substr(0, space);
    std::string decoded;
    if (!IsValidKeyName(name) ||
        !StrictBase64Decode(line.substr(space + 1), &decoded) ||
        decoded.size() <= kKeyIdSize) {
      return absl::InvalidArgumentError("malformed signature line");
    }
    std::string_view key_id_and_signature = decoded;
    if (name != key_name ||
        key_id_and_signature.substr(0, kKeyIdSize) != want_key_id) {
      continue;  // Another signer's line.
    }
    found = true;
    std::string_view signature = key_id_and_signature.substr(kKeyIdSize);
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr,
                                               nullptr, key.get()) != 1) {
      return absl::InternalError(
          absl::StrCat("Ed25519 verification setup: ", OpenSslErrors()));
    }
    int verified = EVP_DigestVerify(
        ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
        signature.size(), reinterpret_cast<const unsigned char*>(body.data()),
        body.size());
    ERR_clear_error();
    if (verified != 1) {
      return absl::PermissionDeniedError(absl::StrCat(
          "checkpoint signature by ", AbslView(key_name), " does not verify"));
    }
  }
  if (!found) {
    return absl::PermissionDeniedError(
        absl::StrCat("checkpoint carries no signature by ", AbslView(key_name),
                     " with this public key"));
  }
  return ParseBody(body);
}

}  // namespace dsar::audit
