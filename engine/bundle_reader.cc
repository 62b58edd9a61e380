#include "engine/bundle_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/encrypted_file.h"

namespace dsar {
namespace {

class PlainBundleReader final : public BundleReader {
 public:
  PlainBundleReader(std::string path, int fd, int64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PlainBundleReader() override { ::close(fd_); }

  int64_t size() const override { return size_; }

  absl::StatusOr<size_t> ReadAt(int64_t offset, char* out, size_t n) override {
    if (offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("offset: ", offset, " is negative"));
    }
    size_t done = 0;
    while (done < n && offset + static_cast<int64_t>(done) < size_) {
      ssize_t got =
          ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        return absl::InternalError(
            absl::StrCat("cannot read ", path_, ": ", std::strerror(errno)));
      }
      if (got == 0) {
        return absl::DataLossError(absl::StrCat(path_, " is shorter than the ",
                                                size_, " bytes it had"));
      }
      done += static_cast<size_t>(got);
    }
    return done;
  }

 private:
  std::string path_;
  int fd_;
  int64_t size_;
};

class EncryptedBundleReader final : public BundleReader {
 public:
  explicit EncryptedBundleReader(std::unique_ptr<EncryptedFileReader> file)
      : file_(std::move(file)) {}

  int64_t size() const override { return file_->size(); }
  absl::StatusOr<size_t> ReadAt(int64_t offset, char* out, size_t n) override {
    return file_->ReadAt(offset, out, n);
  }

 private:
  std::unique_ptr<EncryptedFileReader> file_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BundleReader>> OpenEncryptedBundle(
    const std::string& path, std::string data_key,
    const std::string& request_id) {
  absl::StatusOr<std::unique_ptr<EncryptedFileReader>> file =
      EncryptedFileReader::Open(path, std::move(data_key),
                                BundleFileContext(request_id));
  if (!file.ok()) return file.status();
  return std::make_unique<EncryptedBundleReader>(*std::move(file));
}

absl::StatusOr<std::unique_ptr<BundleReader>> OpenPlainBundle(
    const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    std::string message =
        absl::StrCat("cannot open ", path, ": ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(message);
    return absl::InternalError(message);
  }
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    int error = errno;
    ::close(fd);
    return absl::InternalError(
        absl::StrCat("cannot stat ", path, ": ", std::strerror(error)));
  }
  return std::make_unique<PlainBundleReader>(
      path, fd, static_cast<int64_t>(info.st_size));
}

}  // namespace dsar
