#ifndef DSAR_ENGINE_BUNDLE_READER_H_
#define DSAR_ENGINE_BUNDLE_READER_H_

// Random access to the bytes of a request's bundle as the subject receives
// them (the ZIP), whatever its form on disk. The download path reads through
// it in fixed-size chunks, so memory does not grow with the bundle.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace dsar {

class BundleReader {
 public:
  virtual ~BundleReader() = default;
  // Bytes in the bundle.
  virtual int64_t size() const = 0;
  // Reads up to `n` bytes at `offset` into `out`; fewer only at the end (0 at
  // or past it). INVALID_ARGUMENT for a negative offset; DATA_LOSS or
  // INTERNAL naming the file when it cannot be read. Not thread-safe.
  virtual absl::StatusOr<size_t> ReadAt(int64_t offset, char* out,
                                        size_t n) = 0;
};

// A bundle stored as a plain file. NOT_FOUND naming the path when it does not
// exist, INTERNAL when it cannot be opened.
absl::StatusOr<std::unique_ptr<BundleReader>> OpenPlainBundle(
    const std::string& path);

// A bundle encrypted at rest (storage/encrypted_file.h) under the request's
// `data_key`, context BundleFileContext(request_id); reads return plaintext
// and fail with DATA_LOSS on a chunk that does not authenticate. Errors as
// EncryptedFileReader::Open (NOT_FOUND, DATA_LOSS, INVALID_ARGUMENT).
absl::StatusOr<std::unique_ptr<BundleReader>> OpenEncryptedBundle(
    const std::string& path, std::string data_key,
    const std::string& request_id);

}  // namespace dsar

#endif  // DSAR_ENGINE_BUNDLE_READER_H_
