#include "storage/artifact_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace dsar {
namespace {

std::atomic<uint64_t> temp_counter{0};

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

std::string ArtifactDigestPath(const std::string& artifact_path) {
  return absl::StrCat(artifact_path, ".sha256");
}

absl::StatusOr<std::unique_ptr<ArtifactWriter>> ArtifactWriter::Create(
    const std::string& final_path) {
  RETURN_IF_ERROR(MakeDirectories(DirName(final_path)));
  std::string temp_path = absl::StrCat(final_path, ".upload.", ::getpid(), ".",
                                       temp_counter.fetch_add(1));
  int fd =
      ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("create", temp_path);
  return std::unique_ptr<ArtifactWriter>(
      new ArtifactWriter(final_path, std::move(temp_path), fd));
}

ArtifactWriter::~ArtifactWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

absl::Status ArtifactWriter::Append(std::string_view bytes) {
  hash_.Update(bytes);
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd_, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", temp_path_);
    }
    written += static_cast<size_t>(n);
  }
  size_ += static_cast<int64_t>(bytes.size());
  return absl::OkStatus();
}

absl::StatusOr<ArtifactInfo> ArtifactWriter::Commit() {
  if (::fsync(fd_) != 0) return ErrnoError("fsync", temp_path_);
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    return ErrnoError("rename", temp_path_);
  }
  committed_ = true;
  ArtifactInfo info;
  info.sha256 = hash_.FinishHex();
  info.size_bytes = size_;
  // Atomic write of the digest also fsyncs the directory for the rename above.
  RETURN_IF_ERROR(
      WriteFileAtomically(ArtifactDigestPath(final_path_), info.sha256));
  return info;
}

}  // namespace dsar
