#ifndef DSAR_COMMON_SHA256_H_
#define DSAR_COMMON_SHA256_H_

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

std::string Sha256Hex(std::string_view data);

// Hashes a file in 64 KiB reads; memory does not grow with the file.
absl::StatusOr<std::string> Sha256FileHex(const std::string& path);

}  // namespace dsar

#endif  // DSAR_COMMON_SHA256_H_
