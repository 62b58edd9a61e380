#ifndef DSAR_STORAGE_KEY_RING_H_
#define DSAR_STORAGE_KEY_RING_H_

// Key-encryption keys (KEKs): they wrap the per-request data keys that
// encrypt personal data at rest (docs/storage.md "Encryption at rest").
// `KeyEncryptionKeys` is the boundary a KMS client implements; `FileKeyRing`
// keeps the KEKs in files, ideally on another volume than the data.
//
// Rotation makes a new KEK active: data keys made from then on are wrapped
// under it, and keys wrapped under an older KEK still unwrap as long as that
// KEK is kept. Every wrapped key carries the id of its KEK.

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dsar {

struct WrappedKey {
  std::string kek_id;   // Which KEK wrapped it.
  std::string wrapped;  // Opaque to callers.
};

class KeyEncryptionKeys {
 public:
  virtual ~KeyEncryptionKeys() = default;

  // Wraps `data_key` under the active KEK, bound to `owner` (e.g. the
  // request id): it unwraps only for the same owner.
  virtual absl::StatusOr<WrappedKey> Wrap(absl::string_view data_key,
                                          absl::string_view owner) = 0;
  // NOT_FOUND naming the KEK id when that KEK is not (or no longer) held;
  // DATA_LOSS when `wrapped` was altered or belongs to another owner.
  virtual absl::StatusOr<std::string> Unwrap(const WrappedKey& wrapped,
                                             absl::string_view owner) = 0;
  // Makes a new KEK active and returns its id. Durable when it returns.
  virtual absl::StatusOr<std::string> Rotate() = 0;
  virtual std::string ActiveKeyId() const = 0;
};

// KEKs as files in one directory (mode 0700): `kek-<id>.key` (64 hex digits,
// 0600) and `ACTIVE` (the active id). Ids are "1", "2", ... in order of
// creation. Thread-safe.
class FileKeyRing : public KeyEncryptionKeys {
 public:
  // Loads the ring under `dir`, creating the directory and a first KEK when
  // there is none. FAILED_PRECONDITION naming the file when a key file is
  // unreadable or malformed, or ACTIVE names a key that is not there: a
  // ring is never silently replaced, since that would lose every data key.
  static absl::StatusOr<std::unique_ptr<FileKeyRing>> Open(
      const std::string& dir);

  absl::StatusOr<WrappedKey> Wrap(absl::string_view data_key,
                                  absl::string_view owner) override;
  absl::StatusOr<std::string> Unwrap(const WrappedKey& wrapped,
                                     absl::string_view owner) override;
  absl::StatusOr<std::string> Rotate() override;
  std::string ActiveKeyId() const override;

 private:
  explicit FileKeyRing(std::string dir) : dir_(std::move(dir)) {}
  absl::Status AddNewKey();  // REQUIRES: mu_ held.

  const std::string dir_;
  mutable std::mutex mu_;
  std::map<int, std::string> keys_;  // GUARDED_BY(mu_): id -> key bytes.
  int active_ = 0;                   // GUARDED_BY(mu_)
};

// Random bytes for a new data key (32, AES-256).
absl::StatusOr<std::string> NewDataKey();

}  // namespace dsar

#endif  // DSAR_STORAGE_KEY_RING_H_
