#ifndef DSAR_STORAGE_AUDIT_CHECKPOINT_H_
#define DSAR_STORAGE_AUDIT_CHECKPOINT_H_

// Signed checkpoints of the audit log in the C2SP tlog-checkpoint v1.0.0
// format, as a C2SP signed note with an Ed25519 signature (OpenSSL EVP):
//
//   <origin>\n<tree size>\n<base64 root hash>\n
//   \n
//   — <key name> <base64(key id (4 bytes) || signature (64 bytes))>\n
//
// key id = first 4 bytes of SHA-256(<key name> || 0x0A || 0x01 || public key)
// (0x01 is the Ed25519 signature type of signed notes).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dsar::audit {

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  std::string root_hash;  // 32 raw bytes.
};

// The note body: "<origin>\n<size>\n<base64 root>\n".
std::string CheckpointBody(const Checkpoint& checkpoint);

class CheckpointSigner {
 public:
  // Loads the Ed25519 private key (PEM, PKCS#8) at `private_key_path`; when
  // the file does not exist, generates a key, writes it there (mode 0600)
  // and the public key next to it as "<path>.pub" (PEM SubjectPublicKeyInfo).
  // `key_name` is the signed-note key name (usually the origin).
  static absl::StatusOr<std::unique_ptr<CheckpointSigner>> LoadOrCreate(
      const std::string& private_key_path, const std::string& key_name);
  ~CheckpointSigner();
  CheckpointSigner(const CheckpointSigner&) = delete;  // Owns the key.
  CheckpointSigner& operator=(const CheckpointSigner&) = delete;

  // The complete signed note for `checkpoint`.
  absl::StatusOr<std::string> Sign(const Checkpoint& checkpoint) const;
  const std::string& key_name() const { return key_name_; }
  std::string public_key_pem() const;

 private:
  CheckpointSigner() = default;
  void* key_ = nullptr;  // EVP_PKEY*
  std::string key_name_;
  std::string public_key_raw_;  // 32 bytes.
};

// Parses a signed note and checks its signature with the PEM public key.
// INVALID_ARGUMENT for a malformed note, PERMISSION_DENIED (code
// kPermissionDenied) for a signature that does not verify or a note signed
// by another key; then parses the body.
absl::StatusOr<Checkpoint> VerifyCheckpoint(std::string_view note,
                                            std::string_view public_key_pem,
                                            std::string_view key_name);

}  // namespace dsar::audit

#endif  // DSAR_STORAGE_AUDIT_CHECKPOINT_H_
