#ifndef DSAR_STORAGE_SEALED_BOX_H_
#define DSAR_STORAGE_SEALED_BOX_H_

// Authenticated encryption of small secrets at rest (AES-256-GCM through
// OpenSSL EVP): a one-time code waiting in the outbox, and later any
// personal field kept beside a request. The associated data binds a sealed
// value to where it belongs (e.g. the notification id), so it cannot be
// moved to another record unnoticed.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dsar {

inline constexpr size_t kSealedBoxKeyBytes = 32;

class SealedBox {
 public:
  // INVALID_ARGUMENT unless `key` has kSealedBoxKeyBytes bytes.
  static absl::StatusOr<SealedBox> Create(std::string key);

  // nonce (12 random bytes) || ciphertext || tag (16 bytes).
  absl::StatusOr<std::string> Seal(std::string_view plaintext,
                                   std::string_view associated_data) const;
  // DATA_LOSS when `sealed` was altered, is too short, or was sealed under
  // another key or associated data.
  absl::StatusOr<std::string> Open(std::string_view sealed,
                                   std::string_view associated_data) const;

 private:
  explicit SealedBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

// Reads the hex key at `path`, creating it (random, mode 0600) on first use.
absl::StatusOr<std::string> LoadOrCreateKeyFile(const std::string& path);

}  // namespace dsar

#endif  // DSAR_STORAGE_SEALED_BOX_H_
