#ifndef DSAR_STORAGE_ARTIFACT_WRITER_H_
#define DSAR_STORAGE_ARTIFACT_WRITER_H_

// Writes one uploaded export to disk as it streams in, hashing it on the way.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/sha256.h"

namespace dsar {

struct ArtifactInfo {
  std::string sha256;  // Hex.
  int64_t size_bytes = 0;
};

// Where the SHA-256 (hex) of a committed artifact is kept, beside it.
std::string ArtifactDigestPath(const std::string& artifact_path);

class ArtifactWriter {
 public:
  // Creates the parent directory and a temporary file next to `final_path`.
  static absl::StatusOr<std::unique_ptr<ArtifactWriter>> Create(
      const std::string& final_path);
  // Removes the temporary file unless Commit succeeded.
  ~ArtifactWriter();

  absl::Status Append(std::string_view bytes);
  // fsyncs the data, renames it to the final path, writes its digest to
  // ArtifactDigestPath and fsyncs the directory: when this returns OK the
  // artifact and its digest survive a crash.
  absl::StatusOr<ArtifactInfo> Commit();

 private:
  ArtifactWriter(std::string final_path, std::string temp_path, int fd)
      : final_path_(std::move(final_path)),
        temp_path_(std::move(temp_path)),
        fd_(fd) {}

  std::string final_path_;
  std::string temp_path_;
  int fd_;
  bool committed_ = false;
  int64_t size_ = 0;
  Sha256 hash_;
};

}  // namespace dsar

#endif  // DSAR_STORAGE_ARTIFACT_WRITER_H_
