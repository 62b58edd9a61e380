#ifndef DSAR_STORAGE_ARTIFACT_WRITER_H_
#define DSAR_STORAGE_ARTIFACT_WRITER_H_

// Writes one uploaded export to disk as it streams in, encrypted
// (storage/encrypted_file.h) under the request's data key, hashing its
// plaintext on the way.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/sha256.h"
#include "storage/encrypted_file.h"

namespace dsar {

struct ArtifactInfo {
  std::string sha256;      // Hex, of the plaintext (what the worker sent).
  int64_t size_bytes = 0;  // Plaintext bytes.
};

// Where the SHA-256 (hex) of a committed artifact's plaintext is kept,
// beside it.
std::string ArtifactDigestPath(const std::string& artifact_path);

class ArtifactWriter {
 public:
  // Creates the parent directory (0700) and a temporary file next to
  // `final_path` that is encrypted under `data_key` (kEncryptedFileKeyBytes
  // bytes) bound to `context` (ExportFileContext(request id)). Errors as
  // EncryptedFileWriter::Create's.
  static absl::StatusOr<std::unique_ptr<ArtifactWriter>> Create(
      const std::string& final_path, std::string data_key, std::string context);
  // Removes the temporary file unless Commit succeeded.
  ~ArtifactWriter() = default;

  absl::Status Append(std::string_view bytes);
  // Seals and fsyncs the data, renames it to the final path, writes the
  // plaintext's digest to ArtifactDigestPath and fsyncs the directory: when
  // this returns OK the artifact and its digest survive a crash.
  absl::StatusOr<ArtifactInfo> Commit();

 private:
  ArtifactWriter(std::string final_path,
                 std::unique_ptr<EncryptedFileWriter> file)
      : final_path_(std::move(final_path)), file_(std::move(file)) {}

  std::string final_path_;
  std::unique_ptr<EncryptedFileWriter> file_;
  Sha256 hash_;
};

}  // namespace dsar

#endif  // DSAR_STORAGE_ARTIFACT_WRITER_H_
