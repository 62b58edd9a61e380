#include "workers/connectors/jsonl_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "workers/connectors/connector.h"

namespace dsar {
namespace {

// How much of the log one read brings in while indexing.
constexpr size_t kReadChunkBytes = 1 << 20;
// How much of the end of what was indexed is kept to check it is still there.
constexpr size_t kTailBytes = 256;

absl::Status ReadError(int error, const std::string& what,
                       const std::string& path) {
  return absl::UnavailableError(
      absl::StrCat(what, " ", path, ": ", std::strerror(error)));
}

uint64_t IdentityHash(std::string_view key, std::string_view value) {
  return absl::HashOf(key, value);
}

}  // namespace

absl::StatusOr<uint64_t> ReadLogGeneration(const std::string& log_path) {
  std::string path = log_path + kLogGenerationSuffix;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return 0;
    return ReadError(errno, "open", path);
  }
  char bytes[32];
  ssize_t n = ::pread(fd, bytes, sizeof(bytes), 0);
  int error = errno;
  ::close(fd);
  if (n < 0) return ReadError(error, "read", path);
  uint64_t generation = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(
                            absl::string_view(bytes, static_cast<size_t>(n))),
                        &generation)) {
    return absl::DataLossError(
        absl::StrCat(path, ": not a generation number; remove the file"));
  }
  return generation;
}

absl::Status BumpLogGeneration(const std::string& log_path) {
  std::string path = log_path + kLogGenerationSuffix;
  absl::StatusOr<uint64_t> generation = ReadLogGeneration(log_path);
  // A damaged number is replaced: any change of it makes indexes rebuild.
  uint64_t next = generation.ok() ? *generation + 1 : 1;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ReadError(errno, "open", path);
  // Fixed width, written at once over the old number: no truncation, so a
  // reader never sees an empty file.
  std::string text = absl::StrFormat("%020u\n", next);
  ssize_t n = ::pwrite(fd, text.data(), text.size(), 0);
  int error = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return ReadError(n < 0 ? error : EIO, "write", path);
  }
  return absl::OkStatus();
}

JsonlLineIndex::JsonlLineIndex(std::string path, std::string store,
                               LineIdentities identities_of)
    : path_(std::move(path)),
      store_(std::move(store)),
      identities_of_(std::move(identities_of)) {}

void JsonlLineIndex::Clear() {
  lines_.clear();
  tail_.clear();
  end_ = 0;
  built_ = false;
}

void JsonlLineIndex::Reset() {
  absl::MutexLock lock(&mu_);
  Clear();
}

uint64_t JsonlLineIndex::indexed_bytes() {
  absl::MutexLock lock(&mu_);
  return end_;
}

absl::StatusOr<uint64_t> JsonlLineIndex::CatchUp(
    int fd, const std::atomic<bool>* cancel) {
  struct stat info;
  if (::fstat(fd, &info) != 0) return ReadError(errno, "stat", path_);
  absl::StatusOr<uint64_t> generation = ReadLogGeneration(path_);
  if (!generation.ok()) return generation.status();
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  if (!built_ || info.st_dev != device_ || info.st_ino != inode_ ||
      *generation != generation_ || size < end_) {
    Clear();
  } else if (!tail_.empty()) {
    // Truncated and grown again since (copytruncate rotation) leaves other
    // bytes where the last indexed line was.
    std::string now(tail_.size(), '\0');
    ssize_t n = ::pread(fd, now.data(), now.size(),
                        static_cast<off_t>(end_ - tail_.size()));
    if (n != static_cast<ssize_t>(now.size()) || now != tail_) Clear();
  }
  if (!built_) {
    device_ = info.st_dev;
    inode_ = info.st_ino;
    generation_ = *generation;
    built_ = true;
  }
  std::string buffer;
  uint64_t offset = end_;  // Of buffer[0] in the log.
  uint64_t next_read = end_;
  while (next_read < size) {
    if (internal::Cancelled(cancel)) return internal::CancelledError(store_);
    size_t want = static_cast<size_t>(
        std::min<uint64_t>(kReadChunkBytes, size - next_read));
    size_t kept = buffer.size();
    buffer.resize(kept + want);
    ssize_t n =
        ::pread(fd, buffer.data() + kept, want, static_cast<off_t>(next_read));
    if (n < 0) {
      if (errno == EINTR) {
        buffer.resize(kept);
        continue;
      }
      return ReadError(errno, "read", path_);
    }
    buffer.resize(kept + static_cast<size_t>(n));
    if (n == 0) break;  // Shorter than fstat said: index what is there.
    next_read += static_cast<uint64_t>(n);
    size_t start = 0;
    for (size_t newline = buffer.find('\n', kept); newline != std::string::npos;
         newline = buffer.find('\n', newline + 1)) {
      const uint64_t line_offset = offset + start;
      identities_of_(std::string_view(buffer.data() + start, newline - start),
                     [&](std::string_view key, std::string_view value) {
                       std::vector<uint64_t>& offsets =
                           lines_[IdentityHash(key, value)];
                       if (offsets.empty() || offsets.back() != line_offset) {
                         offsets.push_back(line_offset);
                       }
                     });
      start = newline + 1;
    }
    if (start > 0) {
      size_t tail = std::min(start, kTailBytes);
      tail_.assign(buffer, start - tail, tail);
    }
    // Keep the unfinished line for the next chunk.
    buffer.erase(0, start);
    offset += start;
    end_ = offset;
  }
  return size;
}

absl::StatusOr<std::vector<uint64_t>> JsonlLineIndex::Lookup(
    int fd, absl::Span<const std::pair<std::string, std::string>> identities,
    const std::atomic<bool>* cancel) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<uint64_t> size = CatchUp(fd, cancel);
  if (!size.ok()) {
    // Half-read: start again next time rather than trust it.
    Clear();
    return size.status();
  }
  std::vector<uint64_t> candidates;
  for (const auto& [key, value] : identities) {
    auto it = lines_.find(IdentityHash(key, value));
    if (it == lines_.end()) continue;
    candidates.insert(candidates.end(), it->second.begin(), it->second.end());
  }
  if (*size > end_) candidates.push_back(end_);
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()),
                   candidates.end());
  return candidates;
}

}  // namespace dsar
