#include "workers/connectors/jsonl.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/export_writer.h"
#include "workers/connectors/identity_match.h"

namespace dsar {
namespace {

// ordered_json keeps the fields in the order the log wrote them.
using Json = nlohmann::ordered_json;

// Erase writes its temp file as "<log>.dsar-erase.<pid>.<n>.tmp".
constexpr char kTempInfix[] = ".dsar-erase.";
constexpr char kTempSuffix[] = ".tmp";
constexpr size_t kWriteBufferBytes = 64 * 1024;

absl::Status ErrnoStatus(int error, absl::string_view context) {
  std::string message = absl::StrCat(context, ": ", std::strerror(error));
  switch (error) {
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:  // ENOENT, EIO, ...: the file may come back; worth a retry.
      return absl::UnavailableError(message);
  }
}

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) : fd_(std::exchange(other.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now, reporting the error close(2) may return.
  int Close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

// Reads a file one line at a time; each line keeps its '\n' (the last one
// may have none), so lines can be copied back byte for byte.
class LineReader {
 public:
  static absl::StatusOr<LineReader> Open(const std::string& path,
                                         const std::string& store) {
    FILE* file = std::fopen(path.c_str(), "rbe");
    if (file == nullptr) {
      return ErrnoStatus(errno, absl::StrCat("store ", store, ": open ", path));
    }
    return LineReader(file, path);
  }

  LineReader(LineReader&& other)
      : file_(std::exchange(other.file_, nullptr)),
        buffer_(std::exchange(other.buffer_, nullptr)),
        capacity_(other.capacity_),
        path_(std::move(other.path_)) {}
  LineReader& operator=(LineReader&&) = delete;
  ~LineReader() {
    if (file_ != nullptr) std::fclose(file_);
    std::free(buffer_);
  }

  // Sets `*line` to the next line; false at the end of the file.
  absl::StatusOr<bool> Next(std::string_view* line) {
    errno = 0;
    ssize_t n = ::getline(&buffer_, &capacity_, file_);
    if (n < 0) {
      if (std::ferror(file_)) {
        return ErrnoStatus(errno, absl::StrCat("read ", path_));
      }
      return false;
    }
    *line = std::string_view(buffer_, static_cast<size_t>(n));
    return true;
  }

  int fd() const { return ::fileno(file_); }

 private:
  LineReader(FILE* file, std::string path) : file_(file), path_(path) {}

  FILE* file_;
  char* buffer_ = nullptr;
  size_t capacity_ = 0;
  std::string path_;
};

// The line as a JSON object; nullopt when it is not one.
std::optional<Json> ParseObject(std::string_view line) {
  Json value = Json::parse(line.begin(), line.end(), nullptr,
                           /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) return std::nullopt;
  return value;
}

// A field's value as an identity value: strings as they are, integral
// numbers in decimal; nullopt for anything else.
std::optional<std::string> FieldAsIdentity(const Json& value) {
  switch (value.type()) {
    case Json::value_t::string:
      return value.get<std::string>();
    case Json::value_t::number_integer:
      return absl::StrCat(value.get<int64_t>());
    case Json::value_t::number_unsigned:
      return absl::StrCat(value.get<uint64_t>());
    case Json::value_t::number_float: {
      double number = value.get<double>();
      if (std::isfinite(number) && std::trunc(number) == number &&
          std::fabs(number) < 9.0e15) {
        return absl::StrCat(static_cast<int64_t>(number));
      }
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

bool RecordMatches(const Json& record, const CollectionSpec& collection,
                   const IdentityMatcher& matcher) {
  for (const auto& [key, field] : collection.identity_fields) {
    auto it = record.find(field);
    if (it == record.end()) continue;
    std::optional<std::string> value = FieldAsIdentity(*it);
    if (value.has_value() && matcher.Matches(key, *value)) return true;
  }
  return false;
}

// Streams the log, handing each matching record to `on_match`.
template <typename OnMatch>
absl::StatusOr<ConnectorResult> ScanMatchingRecords(
    const StoreSpec& store, const std::vector<Identity>& identities,
    OnMatch on_match) {
  const CollectionSpec& collection = store.collections.front();
  IdentityMatcher matcher(identities);
  DiscoveredIdentities discovered(identities);
  ConnectorResult result;
  ASSIGN_OR_RETURN(LineReader reader, LineReader::Open(store.path, store.name));
  std::string_view line;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader.Next(&line));
    if (!more) break;
    if (matcher.empty()) continue;
    std::optional<Json> record = ParseObject(line);
    if (!record.has_value() || !RecordMatches(*record, collection, matcher)) {
      continue;
    }
    ++result.record_count;
    for (const auto& [key, field] : collection.identity_fields) {
      auto it = record->find(field);
      if (it == record->end()) continue;
      std::optional<std::string> value = FieldAsIdentity(*it);
      if (value.has_value()) discovered.Add(key, std::move(*value));
    }
    RETURN_IF_ERROR(on_match(collection, *record));
  }
  result.discovered = discovered.Take();
  return result;
}

absl::Status WriteAll(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("write ", path));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Removes temp files a crashed erase left next to `log_path` (they hold a
// copy of the log). REQUIRES: the directory lock is held.
void RemoveStaleTempFiles(const std::string& log_path) {
  std::filesystem::path log(log_path);
  std::string prefix = log.filename().string() + kTempInfix;
  std::error_code error;
  for (const auto& entry :
       std::filesystem::directory_iterator(log.parent_path(), error)) {
    std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, prefix) && absl::EndsWith(name, kTempSuffix)) {
      std::filesystem::remove(entry.path(), error);
    }
  }
}

}  // namespace

absl::StatusOr<ConnectorResult> JsonlConnector::Export(
    const std::vector<Identity>& identities, ByteSink& sink) {
  ExportWriter writer(sink, store_.name);
  ASSIGN_OR_RETURN(
      ConnectorResult result,
      ScanMatchingRecords(
          store_, identities,
          [&](const CollectionSpec& collection, const Json& record) {
            return writer.AddRecord(collection.name, record);
          }));
  RETURN_IF_ERROR(writer.Finish());
  return result;
}

absl::StatusOr<ConnectorResult> JsonlConnector::Discover(
    const std::vector<Identity>& identities) {
  return ScanMatchingRecords(
      store_, identities,
      [](const CollectionSpec&, const Json&) { return absl::OkStatus(); });
}

absl::StatusOr<int64_t> JsonlConnector::Erase(
    const std::vector<Identity>& identities) {
  static std::atomic<uint64_t> temp_counter{0};
  const CollectionSpec& collection = store_.collections.front();
  IdentityMatcher matcher(identities);
  const std::string& path = store_.path;
  std::string dir = DirName(path);
  std::string context = absl::StrCat("store ", store_.name);

  // One rewrite at a time per directory: two concurrent rewrites of one log
  // would each rename their copy over it, and the first one's erasure would
  // be undone. flock locks belong to the open file description, so this also
  // excludes other threads of this process.
  ScopedFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) {
    return ErrnoStatus(errno, absl::StrCat(context, ": open directory ", dir));
  }
  while (::flock(dir_fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      return ErrnoStatus(errno, absl::StrCat(context, ": lock ", dir));
    }
  }
  RemoveStaleTempFiles(path);

  ASSIGN_OR_RETURN(LineReader reader, LineReader::Open(path, store_.name));
  if (matcher.empty()) return 0;
  struct stat original;
  if (::fstat(reader.fd(), &original) != 0) {
    return ErrnoStatus(errno, absl::StrCat(context, ": stat ", path));
  }

  std::string temp = absl::StrCat(path, kTempInfix, ::getpid(), ".",
                                  temp_counter.fetch_add(1), kTempSuffix);
  ScopedFd out(
      ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (out.get() < 0) {
    return ErrnoStatus(errno, absl::StrCat(context, ": create ", temp));
  }
  bool renamed = false;
  auto cleanup = [&]() {
    if (!renamed) ::unlink(temp.c_str());
  };

  int64_t erased = 0;
  absl::Status status = [&]() -> absl::Status {
    std::string buffer;
    std::string_view line;
    while (true) {
      ASSIGN_OR_RETURN(bool more, reader.Next(&line));
      if (!more) break;
      std::optional<Json> record = ParseObject(line);
      if (record.has_value() && RecordMatches(*record, collection, matcher)) {
        ++erased;
        continue;
      }
      buffer.append(line);
      if (buffer.size() >= kWriteBufferBytes) {
        RETURN_IF_ERROR(WriteAll(out.get(), buffer, temp));
        buffer.clear();
      }
    }
    if (erased == 0) return absl::OkStatus();  // Leave the log untouched.
    RETURN_IF_ERROR(WriteAll(out.get(), buffer, temp));
    // Keep the log's permissions and, when allowed, its owner.
    if (::fchmod(out.get(), original.st_mode & 07777) != 0) {
      return ErrnoStatus(errno, absl::StrCat(context, ": chmod ", temp));
    }
    if (::fchown(out.get(), original.st_uid, original.st_gid) != 0) {
      // Only root may give a file away; the owner then stays ours.
    }
    if (::fsync(out.get()) != 0) {
      return ErrnoStatus(errno, absl::StrCat(context, ": fsync ", temp));
    }
    if (out.Close() != 0) {
      return ErrnoStatus(errno, absl::StrCat(context, ": close ", temp));
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      return ErrnoStatus(errno, absl::StrCat(context, ": rename ", temp));
    }
    renamed = true;
    return FsyncDirectory(dir);
  }();
  cleanup();
  if (!status.ok()) return status;
  return erased;
}

}  // namespace dsar
