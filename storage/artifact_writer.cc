#include "storage/artifact_writer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace dsar {

std::string ArtifactDigestPath(const std::string& artifact_path) {
  return absl::StrCat(artifact_path, ".sha256");
}

absl::StatusOr<std::unique_ptr<ArtifactWriter>> ArtifactWriter::Create(
    const std::string& final_path, std::string data_key, std::string context) {
  ASSIGN_OR_RETURN(std::unique_ptr<EncryptedFileWriter> file,
                   EncryptedFileWriter::Create(final_path, std::move(data_key),
                                               std::move(context)));
  return std::unique_ptr<ArtifactWriter>(
      new ArtifactWriter(final_path, std::move(file)));
}

absl::Status ArtifactWriter::Append(std::string_view bytes) {
  hash_.Update(bytes);
  return file_->Append(bytes);
}

absl::StatusOr<ArtifactInfo> ArtifactWriter::Commit() {
  RETURN_IF_ERROR(file_->Commit());
  ArtifactInfo info;
  info.sha256 = hash_.FinishHex();
  info.size_bytes = file_->size();
  // Atomic write of the digest also fsyncs the directory again.
  RETURN_IF_ERROR(
      WriteFileAtomically(ArtifactDigestPath(final_path_), info.sha256));
  return info;
}

}  // namespace dsar
