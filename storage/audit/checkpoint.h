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
#include <vector>

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
  // `key_name` is the signed-note key name (the origin); empty leaves it to
  // a later SetKeyName (Sign fails until then). With a name, the C2SP
  // verifier key is (re)written to VerifierKeyPath(private_key_path).
  static absl::StatusOr<std::unique_ptr<CheckpointSigner>> LoadOrCreate(
      const std::string& private_key_path, const std::string& key_name);
  ~CheckpointSigner();
  CheckpointSigner(const CheckpointSigner&) = delete;  // Owns the key.
  CheckpointSigner& operator=(const CheckpointSigner&) = delete;

  // The complete signed note for `checkpoint`.
  absl::StatusOr<std::string> Sign(const Checkpoint& checkpoint) const;
  const std::string& key_name() const { return key_name_; }
  // Names the key (INVALID_ARGUMENT for a name a note cannot carry) and
  // writes the verifier key file when its content changes.
  absl::Status SetKeyName(const std::string& key_name);
  std::string public_key_pem() const;
  const std::string& public_key_raw() const { return public_key_raw_; }
  // VerifierKey(key_name(), public_key_raw()).
  std::string verifier_key() const;

 private:
  CheckpointSigner() = default;
  void* key_ = nullptr;  // EVP_PKEY*
  std::string key_name_;
  std::string public_key_raw_;  // 32 bytes.
  std::string private_key_path_;
};

// The C2SP signed-note verifier key of an Ed25519 key:
//   <name>+<hex key id (8 digits)>+<base64(0x01 || 32-byte public key)>
// the form Go's golang.org/x/mod/sumdb/note and other tlog tools read.
std::string VerifierKey(std::string_view key_name,
                        std::string_view public_key_raw);
// Where the verifier key of the private key at `private_key_path` is
// published: "keys/checkpoint.key" -> "keys/checkpoint.vkey".
std::string VerifierKeyPath(const std::string& private_key_path);

// Rollback and fork detection against a checkpoint verified earlier (both
// signatures already checked, same origin). OK when `current` extends
// `remembered`: same root at the same size, or `consistency_proof` (RFC 9162,
// from remembered.size to current.size; ignored otherwise) verifies.
// FAILED_PRECONDITION whose message starts with "rollback:" when `current` is
// smaller, with "fork:" when it is not consistent with `remembered`.
absl::Status CheckExtends(const Checkpoint& remembered,
                          const Checkpoint& current,
                          const std::vector<std::string>& consistency_proof);

// Parses the body of a signed note (the text before its signatures)
// without checking any signature: for the note a log stored itself, which
// may be signed by a key it no longer holds. INVALID_ARGUMENT for a
// malformed note.
absl::StatusOr<Checkpoint> ParseCheckpointNote(std::string_view note);

// Parses a signed note and checks its signature with the PEM public key.
// INVALID_ARGUMENT for a malformed note, PERMISSION_DENIED (code
// kPermissionDenied) for a signature that does not verify or a note signed
// by another key; then parses the body.
absl::StatusOr<Checkpoint> VerifyCheckpoint(std::string_view note,
                                            std::string_view public_key_pem,
                                            std::string_view key_name);

}  // namespace dsar::audit

#endif  // DSAR_STORAGE_AUDIT_CHECKPOINT_H_
