#ifndef DSAR_COMMON_SHA256_H_
#define DSAR_COMMON_SHA256_H_

#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dsar {

// Incremental SHA-256 (OpenSSL EVP). Not thread-safe; one hash per object.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // Returns the 32-byte digest. The object must not be used afterwards.
  std::string FinishRaw();
  // Returns the digest as 64 lowercase hex characters.
  std::string FinishHex();

 private:
  void* ctx_;  // EVP_MD_CTX*
};

inline constexpr size_t kSha256Size = 32;

// Writes SHA-256 of the concatenation of `parts` to `digest` (kSha256Size
// bytes). Reuses one context per thread instead of allocating one per hash,
// so a small hash (a Merkle node is 65 bytes) costs little more than its
// compression rounds. Thread-safe.
void Sha256Concat(std::initializer_list<std::string_view> parts,
                  unsigned char* digest);

std::string Sha256Hex(std::string_view data);

// Hashes a file in 64 KiB reads; memory does not grow with the file.
absl::StatusOr<std::string> Sha256FileHex(const std::string& path);

}  // namespace dsar

#endif  // DSAR_COMMON_SHA256_H_
