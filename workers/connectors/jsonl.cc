#include "workers/connectors/jsonl.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "model/identity.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/corrections.h"
#include "workers/connectors/export_writer.h"
#include "workers/connectors/identity_match.h"
#include "workers/connectors/jsonl_index.h"

namespace dsar {
namespace {

// ordered_json keeps the fields in the order the log wrote them.
using Json = nlohmann::ordered_json;

// The rewrite journal (jsonl.h): "<log>.dsar-rewrite" once complete, and
// "<log>.dsar-rewrite.tmp" while it is written.
constexpr char kJournalSuffix[] = ".dsar-rewrite";
constexpr char kJournalTempSuffix[] = ".dsar-rewrite.tmp";
constexpr char kJournalMagic[8] = {'D', 'S', 'A', 'R', 'R', 'W', '1', '\n'};
constexpr size_t kJournalHeaderBytes = 32;
// The erase journal (jsonl.h, "Erasure"): "<log>.dsar-erase" once complete,
// "<log>.dsar-erase.tmp" while it is written.
constexpr char kEraseJournalSuffix[] = ".dsar-erase";
constexpr char kEraseJournalTempSuffix[] = ".dsar-erase.tmp";
constexpr char kEraseJournalMagic[8] = {'D', 'S', 'A', 'R',
                                        'E', 'R', '1', '\n'};
constexpr size_t kWriteBufferBytes = 64 * 1024;
// How often a cancellable wait for the log's lock looks at its flag.
constexpr int kLockPollMaxMs = 20;

absl::Status ErrnoStatus(int error, absl::string_view context) {
  std::string message = absl::StrCat(context, ": ", std::strerror(error));
  switch (error) {
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:  // ENOENT, EIO, ...: the file may come back; worth a retry.
      return absl::UnavailableError(message);
  }
}

// `status` with `prefix` before its message, keeping its payloads (the
// error name, model/connector_errors.h).
absl::Status Prefixed(const absl::Status& status, absl::string_view prefix) {
  absl::Status out(status.code(), absl::StrCat(prefix, status.message()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) : fd_(std::exchange(other.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& other) {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
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
// may have none), so lines can be copied back byte for byte. A reader given a
// cancel flag checks it before each line.
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

  // Reads the file open at `fd` from its start; `fd` stays the caller's.
  // `cancel` (may be null) makes Next() CANCELLED for `store` once set.
  static absl::StatusOr<LineReader> FromFd(int fd, const std::string& path,
                                           const std::string& store,
                                           const std::atomic<bool>* cancel) {
    int copy = ::dup(fd);
    FILE* file = copy < 0 ? nullptr : ::fdopen(copy, "rb");
    if (file == nullptr) {
      if (copy >= 0) ::close(copy);
      return ErrnoStatus(errno, absl::StrCat("read ", path));
    }
    if (std::fseek(file, 0, SEEK_SET) != 0) {
      std::fclose(file);
      return ErrnoStatus(errno, absl::StrCat("seek ", path));
    }
    LineReader reader(file, path);
    reader.store_ = store;
    reader.cancel_ = cancel;
    return reader;
  }

  LineReader(LineReader&& other)
      : file_(std::exchange(other.file_, nullptr)),
        buffer_(std::exchange(other.buffer_, nullptr)),
        capacity_(other.capacity_),
        path_(std::move(other.path_)),
        store_(std::move(other.store_)),
        cancel_(other.cancel_) {}
  LineReader& operator=(LineReader&&) = delete;
  ~LineReader() {
    if (file_ != nullptr) std::fclose(file_);
    std::free(buffer_);
  }

  // Sets `*line` to the next line; false at the end of the file.
  absl::StatusOr<bool> Next(std::string_view* line) {
    if (internal::Cancelled(cancel_)) return internal::CancelledError(store_);
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
  std::string store_;
  const std::atomic<bool>* cancel_ = nullptr;
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

// The identity keys through which `record` matches; empty when it does not.
std::set<std::string> MatchedKeys(const Json& record,
                                  const CollectionSpec& collection,
                                  const IdentityMatcher& matcher) {
  std::set<std::string> matched;
  for (const auto& [key, field] : collection.identity_fields) {
    auto it = record.find(field);
    if (it == record.end()) continue;
    std::optional<std::string> value = FieldAsIdentity(*it);
    if (value.has_value() && matcher.Matches(key, *value)) matched.insert(key);
  }
  return matched;
}

// True when `line` is a record of the subject; adds it to `conflicts`.
bool LineMatches(std::string_view line, const CollectionSpec& collection,
                 const IdentityMatcher& matcher,
                 IdentityConflictDetector& conflicts,
                 std::optional<Json>* record) {
  *record = ParseObject(line);
  if (!record->has_value()) return false;
  std::set<std::string> matched = MatchedKeys(**record, collection, matcher);
  if (matched.empty()) return false;
  conflicts.AddRecord(matched);
  return true;
}

absl::StatusOr<ScopedFd> OpenLockedLog(const StoreSpec& store, bool exclusive,
                                       const std::atomic<bool>* cancel);

// One of the subject's lines: where it starts, its bytes without the '\n',
// and the record.
struct MatchedLine {
  uint64_t offset;
  std::string text;
  Json record;
};

absl::StatusOr<std::string> ReadLineAt(int fd, const std::string& path,
                                       uint64_t offset, bool* at_line_start);

// The identities `matcher` holds for the collection's identity fields, as the
// index keys them.
std::vector<std::pair<std::string, std::string>> IndexKeys(
    const CollectionSpec& collection, const IdentityMatcher& matcher) {
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& [key, field] : collection.identity_fields) {
    for (const std::string& value : matcher.ValuesFor(key)) {
      keys.emplace_back(key, value);
    }
  }
  return keys;
}

// The lines of the log open (and locked) at `fd` that match `matcher`, in
// log order, found through `index`; each is added to `conflicts`. A
// candidate that is not at the start of a line means the log was changed
// against its contract: the index is rebuilt and the lookup done again once.
absl::StatusOr<std::vector<MatchedLine>> FindMatchingLines(
    const StoreSpec& store, JsonlLineIndex& index, int fd,
    const IdentityMatcher& matcher, IdentityConflictDetector& conflicts,
    const std::atomic<bool>* cancel) {
  const CollectionSpec& collection = store.collections.front();
  std::vector<std::pair<std::string, std::string>> keys =
      IndexKeys(collection, matcher);
  if (keys.empty()) return std::vector<MatchedLine>();
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(std::vector<uint64_t> candidates,
                     index.Lookup(fd, keys, cancel));
    std::vector<MatchedLine> lines;
    IdentityConflictDetector found;
    bool stale = false;
    for (uint64_t offset : candidates) {
      if (internal::Cancelled(cancel)) {
        return internal::CancelledError(store.name);
      }
      bool at_line_start = false;
      ASSIGN_OR_RETURN(std::string text,
                       ReadLineAt(fd, store.path, offset, &at_line_start));
      if (!at_line_start) {
        stale = true;
        break;
      }
      std::optional<Json> record;
      if (!LineMatches(text, collection, matcher, found, &record)) continue;
      lines.push_back({offset, std::move(text), *std::move(record)});
    }
    if (!stale) {
      conflicts = std::move(found);
      return lines;
    }
    if (attempt > 0) {
      return absl::InternalError(
          absl::StrCat("store ", store.name, ": ", store.path,
                       " changed other than by appending whole lines; see "
                       "docs/inventory.md for the log's contract"));
    }
    index.Reset();
  }
}

// Finds the matching records through `index` and hands each to `on_match`,
// after refusing an identity conflict (so nothing is handed over for an
// ambiguous subject). Under LOCK_SH. CANCELLED once `cancel` (may be null)
// is set.
template <typename OnMatch>
absl::StatusOr<ConnectorResult> ScanMatchingRecords(
    const StoreSpec& store, JsonlLineIndex& index,
    const std::atomic<bool>* cancel, const std::vector<Identity>& identities,
    OnMatch on_match) {
  const CollectionSpec& collection = store.collections.front();
  IdentityMatcher matcher(identities, store.default_phone_region);
  DiscoveredIdentities discovered(identities, matcher);
  ConnectorResult result;
  IdentityConflictDetector conflicts;
  // LOCK_SH: no rewrite runs meanwhile, and appenders wait until the read
  // is done.
  ASSIGN_OR_RETURN(ScopedFd log_fd,
                   OpenLockedLog(store, /*exclusive=*/false, cancel));
  ASSIGN_OR_RETURN(std::vector<MatchedLine> lines,
                   FindMatchingLines(store, index, log_fd.get(), matcher,
                                     conflicts, cancel));
  RETURN_IF_ERROR(conflicts.Check(store.name, collection.name));
  for (const MatchedLine& line : lines) {
    if (internal::Cancelled(cancel)) {
      return internal::CancelledError(store.name);
    }
    ++result.record_count;
    for (const auto& [key, field] : collection.identity_fields) {
      auto it = line.record.find(field);
      if (it == line.record.end()) continue;
      std::optional<std::string> value = FieldAsIdentity(*it);
      if (value.has_value()) discovered.Add(key, std::move(*value));
    }
    RETURN_IF_ERROR(on_match(collection, line.record));
  }
  result.discovered = discovered.Take();
  return result;
}

absl::Status PreadAll(int fd, char* data, size_t size, uint64_t offset,
                      const std::string& path) {
  while (size > 0) {
    ssize_t n = ::pread(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("read ", path));
    if (n == 0) {
      return absl::DataLossError(absl::StrCat("read ", path, ": too short"));
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status PwriteAll(int fd, std::string_view bytes, uint64_t offset,
                       const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n =
        ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("write ", path));
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status Fsync(int fd, const std::string& path) {
  if (::fsync(fd) != 0) {
    return ErrnoStatus(errno, absl::StrCat("fsync ", path));
  }
  return absl::OkStatus();
}

// The line that starts at `offset` of the log open at `fd`, without its
// '\n'; `*at_line_start` tells whether `offset` is the start of a line (0,
// or just after a '\n').
absl::StatusOr<std::string> ReadLineAt(int fd, const std::string& path,
                                       uint64_t offset, bool* at_line_start) {
  constexpr size_t kChunk = 4096;
  // One byte before the line, to see the '\n' that ends the one before.
  uint64_t from = offset == 0 ? 0 : offset - 1;
  std::string bytes;
  size_t line_begin = static_cast<size_t>(offset - from);
  size_t newline = std::string::npos;
  while (newline == std::string::npos) {
    size_t kept = bytes.size();
    bytes.resize(kept + kChunk);
    ssize_t n = ::pread(fd, bytes.data() + kept, kChunk,
                        static_cast<off_t>(from + kept));
    if (n < 0) {
      if (errno == EINTR) {
        bytes.resize(kept);
        continue;
      }
      return ErrnoStatus(errno, absl::StrCat("read ", path));
    }
    bytes.resize(kept + static_cast<size_t>(n));
    if (n == 0) break;  // The last line, without '\n'.
    newline = bytes.find('\n', std::max(kept, line_begin));
  }
  *at_line_start = offset == 0 || (!bytes.empty() && bytes[0] == '\n');
  if (bytes.size() < line_begin) return std::string();
  size_t end = newline == std::string::npos ? bytes.size() : newline;
  return bytes.substr(line_begin, end - line_begin);
}

// Locks the log open at `fd` (flock LOCK_SH or LOCK_EX), waiting for the
// holder: the lock appenders take for each line (jsonl.h). With a cancel
// flag, the wait polls (flock cannot be woken otherwise) and is CANCELLED
// for `store` once the flag is set.
absl::Status LockLog(int fd, int operation, const std::string& path,
                     const std::string& store,
                     const std::atomic<bool>* cancel) {
  if (cancel == nullptr) {
    while (::flock(fd, operation) != 0) {
      if (errno != EINTR) {
        return ErrnoStatus(errno, absl::StrCat("lock ", path));
      }
    }
    return absl::OkStatus();
  }
  // Appenders hold the lock for one write(2); a rewrite by another process
  // holds it longer. Short waits first, then every kLockPollMaxMs.
  int wait_ms = 1;
  while (::flock(fd, operation | LOCK_NB) != 0) {
    int error = errno;
    if (error != EWOULDBLOCK && error != EINTR) {
      return ErrnoStatus(error, absl::StrCat("lock ", path));
    }
    if (internal::Cancelled(cancel)) return internal::CancelledError(store);
    if (error == EWOULDBLOCK) {
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
      wait_ms = std::min(wait_ms * 2, kLockPollMaxMs);
    }
  }
  return absl::OkStatus();
}

// The journal header (jsonl.h): phase, the log's size when the rewrite
// began, and the size of the rewritten log (the bytes after the header).
struct JournalHeader {
  uint64_t phase = 0;
  uint64_t old_size = 0;
  uint64_t new_size = 0;
};

void PutU64(uint64_t value, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(value >> (8 * i));
}
uint64_t GetU64(const char* in) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) {
    value = (value << 8) | static_cast<unsigned char>(in[i]);
  }
  return value;
}

std::string EncodeHeader(const JournalHeader& header) {
  std::string bytes(kJournalHeaderBytes, '\0');
  std::memcpy(bytes.data(), kJournalMagic, sizeof(kJournalMagic));
  PutU64(header.phase, bytes.data() + 8);
  PutU64(header.old_size, bytes.data() + 16);
  PutU64(header.new_size, bytes.data() + 24);
  return bytes;
}

// Records the phase in the journal, durably, before the step it announces.
absl::Status SetPhase(int journal_fd, uint64_t phase,
                      const std::string& journal) {
  char bytes[8];
  PutU64(phase, bytes);
  RETURN_IF_ERROR(
      PwriteAll(journal_fd, std::string_view(bytes, 8), 8, journal));
  return Fsync(journal_fd, journal);
}

// Makes the log at `log_fd` hold the journal's content, in place (same
// inode), then deletes the journal. REQUIRES: LOCK_EX on the log is held and
// the journal at `journal` is complete (renamed from its temp name, the
// directory synced). Safe to run again after a crash at any point: see
// RecoverInterruptedRewrite.
absl::Status ApplyJournal(const StoreSpec& store, int log_fd, int journal_fd,
                          const std::string& journal,
                          const JournalHeader& header) {
  const std::string& path = store.path;
  const uint64_t old_size = header.old_size;
  const uint64_t new_size = header.new_size;
  // Lines are about to move: every process's line index must be rebuilt.
  RETURN_IF_ERROR(BumpLogGeneration(path));
  // The log changes size exactly once, between phase 1 and phase 2: a
  // growing log before its content is copied, a shrinking one after.
  auto resize = [&]() -> absl::Status {
    RETURN_IF_ERROR(SetPhase(journal_fd, 1, journal));
    if (::ftruncate(log_fd, static_cast<off_t>(new_size)) != 0) {
      return ErrnoStatus(errno, absl::StrCat("truncate ", path));
    }
    RETURN_IF_ERROR(Fsync(log_fd, path));
    return SetPhase(journal_fd, 2, journal);
  };
  if (new_size > old_size) RETURN_IF_ERROR(resize());
  std::string buffer(kWriteBufferBytes, '\0');
  for (uint64_t done = 0; done < new_size;) {
    size_t n =
        static_cast<size_t>(std::min<uint64_t>(buffer.size(), new_size - done));
    RETURN_IF_ERROR(PreadAll(journal_fd, buffer.data(), n,
                             kJournalHeaderBytes + done, journal));
    RETURN_IF_ERROR(
        PwriteAll(log_fd, std::string_view(buffer.data(), n), done, path));
    done += n;
  }
  if (new_size < old_size) {
    // NUL bytes, which no JSON text holds, mark the bytes about to be cut
    // off, so that recovery can tell whether the cut happened.
    std::string zeros(static_cast<size_t>(std::min<uint64_t>(
                          kWriteBufferBytes, old_size - new_size)),
                      '\0');
    for (uint64_t at = new_size; at < old_size;) {
      size_t n =
          static_cast<size_t>(std::min<uint64_t>(zeros.size(), old_size - at));
      RETURN_IF_ERROR(
          PwriteAll(log_fd, std::string_view(zeros.data(), n), at, path));
      at += n;
    }
  }
  RETURN_IF_ERROR(Fsync(log_fd, path));
  if (new_size < old_size) RETURN_IF_ERROR(resize());
  if (::unlink(journal.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("remove ", journal));
  }
  return FsyncDirectory(DirName(path));
}

// Makes the journal written to `temp` (open at `temp_fd`) complete: synced,
// renamed to `journal`, the directory of the log at `log_path` synced.
absl::Status PublishJournal(int temp_fd, const std::string& temp,
                            const std::string& journal,
                            const std::string& log_path) {
  RETURN_IF_ERROR(Fsync(temp_fd, temp));
  if (::rename(temp.c_str(), journal.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rename ", temp));
  }
  return FsyncDirectory(DirName(log_path));
}

// Writes a complete journal for `header` whose content is `content_fd`'s
// bytes [content_offset, content_offset + header.new_size) followed by
// `tail`: the temp file is written, synced and renamed into place, and the
// directory synced. Returns the journal, open.
absl::StatusOr<ScopedFd> CommitJournal(const StoreSpec& store, ScopedFd temp_fd,
                                       const JournalHeader& header) {
  std::string temp = store.path + kJournalTempSuffix;
  RETURN_IF_ERROR(PwriteAll(temp_fd.get(), EncodeHeader(header), 0, temp));
  RETURN_IF_ERROR(PublishJournal(temp_fd.get(), temp,
                                 store.path + kJournalSuffix, store.path));
  return temp_fd;
}

// A new, empty journal temp file at `temp`.
absl::StatusOr<ScopedFd> CreateJournalTemp(const std::string& temp) {
  ScopedFd fd(
      ::open(temp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    return ErrnoStatus(errno, absl::StrCat("create ", temp));
  }
  return fd;
}

// A line erased in place: bytes [offset, offset + length) of the log, its
// '\n' excluded.
struct LineRange {
  uint64_t offset;
  uint64_t length;
};

// Overwrites each range with an empty JSON object of the same length ("{",
// spaces, "}"), syncs the log, then deletes the erase journal at `journal`
// and syncs the directory. REQUIRES: LOCK_EX on the log; the journal lists
// `ranges` and is complete. Running it again changes nothing more.
absl::Status ApplyEraseJournal(const StoreSpec& store, int log_fd,
                               const std::string& journal,
                               const std::vector<LineRange>& ranges) {
  std::string filler;
  for (const LineRange& range : ranges) {
    filler.assign(static_cast<size_t>(range.length), ' ');
    filler.front() = '{';
    filler.back() = '}';
    RETURN_IF_ERROR(PwriteAll(log_fd, filler, range.offset, store.path));
  }
  RETURN_IF_ERROR(Fsync(log_fd, store.path));
  if (::unlink(journal.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("remove ", journal));
  }
  // Durably gone before the lock is released: applied again after a later
  // rewrite moved lines, it would hit others.
  return FsyncDirectory(DirName(store.path));
}

// Erases the lines at `ranges` in place (jsonl.h, "Erasure"): the journal
// listing them is written, synced and renamed into place, then applied.
// REQUIRES: LOCK_EX on the log at `log_fd`; every range is a whole line of
// at least 2 bytes (a JSON object). Once `cancel` (may be null) is set
// before the journal is committed, CANCELLED with the log untouched.
absl::Status EraseLinesInPlace(const StoreSpec& store, int log_fd,
                               const std::vector<LineRange>& ranges,
                               const std::atomic<bool>* cancel) {
  std::string temp = store.path + kEraseJournalTempSuffix;
  std::string journal = store.path + kEraseJournalSuffix;
  std::string bytes(kEraseJournalMagic, sizeof(kEraseJournalMagic));
  char number[8];
  PutU64(ranges.size(), number);
  bytes.append(number, 8);
  for (const LineRange& range : ranges) {
    PutU64(range.offset, number);
    bytes.append(number, 8);
    PutU64(range.length, number);
    bytes.append(number, 8);
  }
  ASSIGN_OR_RETURN(ScopedFd temp_fd, CreateJournalTemp(temp));
  absl::Status written = [&]() -> absl::Status {
    RETURN_IF_ERROR(PwriteAll(temp_fd.get(), bytes, 0, temp));
    // The last point at which the log can be left as it is.
    if (internal::Cancelled(cancel)) {
      return internal::CancelledError(store.name);
    }
    return PublishJournal(temp_fd.get(), temp, journal, store.path);
  }();
  if (!written.ok()) {
    ::unlink(temp.c_str());
    return written;
  }
  return ApplyEraseJournal(store, log_fd, journal, ranges);
}

// Finishes an erasure a crash interrupted. REQUIRES: LOCK_EX on the log at
// `log_fd`. An unfinished journal (".tmp") is deleted: the log was not
// touched. A complete one is applied again; the lines it names have not
// moved, since every operation recovers before anything else.
absl::Status RecoverInterruptedErase(const StoreSpec& store, int log_fd) {
  std::string temp = store.path + kEraseJournalTempSuffix;
  std::string journal = store.path + kEraseJournalSuffix;
  if (::unlink(temp.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("remove ", temp));
  }
  absl::StatusOr<std::string> bytes = ReadFile(journal);
  if (!bytes.ok()) {
    if (!std::filesystem::exists(journal)) return absl::OkStatus();
    return bytes.status();
  }
  struct stat info;
  if (::fstat(log_fd, &info) != 0) {
    return ErrnoStatus(errno, absl::StrCat("stat ", store.path));
  }
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  auto damaged = [&] {
    return absl::DataLossError(absl::StrCat(
        journal, ": not an erase journal of this log; move it away"));
  };
  if (bytes->size() < 16 || std::memcmp(bytes->data(), kEraseJournalMagic,
                                        sizeof(kEraseJournalMagic)) != 0) {
    return damaged();
  }
  uint64_t count = GetU64(bytes->data() + 8);
  if (count > (bytes->size() - 16) / 16 || bytes->size() != 16 + 16 * count) {
    return damaged();
  }
  std::vector<LineRange> ranges;
  for (uint64_t i = 0; i < count; ++i) {
    LineRange range{GetU64(bytes->data() + 16 + 16 * i),
                    GetU64(bytes->data() + 24 + 16 * i)};
    if (range.length < 2 || range.offset > size ||
        range.length > size - range.offset) {
      return damaged();
    }
    ranges.push_back(range);
  }
  return ApplyEraseJournal(store, log_fd, journal, ranges);
}

// True when a rewrite or an erasure left a journal to finish.
bool ChangePending(const std::string& path) {
  return ::access((path + kJournalSuffix).c_str(), F_OK) == 0 ||
         ::access((path + kEraseJournalSuffix).c_str(), F_OK) == 0;
}

// Finishes a rewrite a crash interrupted. REQUIRES: LOCK_EX on the log at
// `log_fd`. A journal temp file is an unfinished journal: the log was not
// touched yet, so it is deleted. A complete journal is applied again, keeping
// the lines appenders wrote after the crash: they start where the log ended
// when the crash happened, which the journal's phase tells (jsonl.h).
absl::Status RecoverInterruptedRewrite(const StoreSpec& store, int log_fd) {
  const std::string& path = store.path;
  std::string temp = path + kJournalTempSuffix;
  std::string journal = path + kJournalSuffix;
  if (::unlink(temp.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("remove ", temp));
  }
  ScopedFd journal_fd(::open(journal.c_str(), O_RDONLY | O_CLOEXEC));
  if (journal_fd.get() < 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("open ", journal));
  }
  char bytes[kJournalHeaderBytes];
  RETURN_IF_ERROR(PreadAll(journal_fd.get(), bytes, sizeof(bytes), 0, journal));
  if (std::memcmp(bytes, kJournalMagic, sizeof(kJournalMagic)) != 0) {
    return absl::DataLossError(
        absl::StrCat(journal, ": not a rewrite journal; move it away"));
  }
  JournalHeader header{GetU64(bytes + 8), GetU64(bytes + 16),
                       GetU64(bytes + 24)};
  struct stat info;
  if (::fstat(log_fd, &info) != 0) {
    return ErrnoStatus(errno, absl::StrCat("stat ", path));
  }
  uint64_t size = static_cast<uint64_t>(info.st_size);
  uint64_t lo = std::min(header.old_size, header.new_size);
  uint64_t hi = std::max(header.old_size, header.new_size);
  uint64_t tail_start = header.phase == 0   ? header.old_size
                        : header.phase == 2 ? header.new_size
                                            : lo;
  if (header.phase == 1 && lo < hi && size >= hi) {
    char first = 0;
    RETURN_IF_ERROR(PreadAll(log_fd, &first, 1, lo, path));
    if (first == '\0') tail_start = hi;  // The resize had not happened.
  }
  tail_start = std::min(tail_start, size);

  // A new journal: the rewritten content, then the lines appended since.
  ASSIGN_OR_RETURN(ScopedFd temp_fd, CreateJournalTemp(temp));
  std::string buffer(kWriteBufferBytes, '\0');
  uint64_t written = 0;
  auto copy = [&](int from, const std::string& from_path, uint64_t offset,
                  uint64_t length) -> absl::Status {
    for (uint64_t done = 0; done < length;) {
      size_t n =
          static_cast<size_t>(std::min<uint64_t>(buffer.size(), length - done));
      RETURN_IF_ERROR(
          PreadAll(from, buffer.data(), n, offset + done, from_path));
      RETURN_IF_ERROR(PwriteAll(temp_fd.get(),
                                std::string_view(buffer.data(), n),
                                kJournalHeaderBytes + written, temp));
      done += n;
      written += n;
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(
      copy(journal_fd.get(), journal, kJournalHeaderBytes, header.new_size));
  RETURN_IF_ERROR(copy(log_fd, path, tail_start, size - tail_start));
  JournalHeader redo{0, size, written};
  ASSIGN_OR_RETURN(ScopedFd redo_fd,
                   CommitJournal(store, std::move(temp_fd), redo));
  return ApplyJournal(store, log_fd, redo_fd.get(), journal, redo);
}

// Opens the log and takes its lock: LOCK_EX for a rewrite, LOCK_SH for a
// read. A rewrite a crash interrupted is finished first (which needs
// LOCK_EX, taken and released here for a reader). CANCELLED when `cancel`
// (may be null) is set while waiting for the lock.
absl::StatusOr<ScopedFd> OpenLockedLog(const StoreSpec& store, bool exclusive,
                                       const std::atomic<bool>* cancel) {
  const std::string& path = store.path;
  std::string context = absl::StrCat("store ", store.name);
  while (true) {
    ScopedFd fd(
        ::open(path.c_str(), (exclusive ? O_RDWR : O_RDONLY) | O_CLOEXEC));
    if (fd.get() < 0) {
      return ErrnoStatus(errno, absl::StrCat(context, ": open ", path));
    }
    bool journal = ChangePending(path);
    if (exclusive || journal) {
      if (!exclusive) fd = ScopedFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
      if (fd.get() < 0) {
        return ErrnoStatus(errno, absl::StrCat(context, ": open ", path));
      }
      RETURN_IF_ERROR(LockLog(fd.get(), LOCK_EX, path, store.name, cancel));
      absl::Status recovered = RecoverInterruptedErase(store, fd.get());
      if (recovered.ok()) {
        recovered = RecoverInterruptedRewrite(store, fd.get());
      }
      if (!recovered.ok()) {
        return absl::Status(recovered.code(),
                            absl::StrCat(context,
                                         ": recovering an "
                                         "interrupted change: ",
                                         recovered.message()));
      }
      if (exclusive) return fd;
      continue;  // Closing `fd` released the lock; now read.
    }
    RETURN_IF_ERROR(LockLog(fd.get(), LOCK_SH, path, store.name, cancel));
    if (ChangePending(path)) continue;
    return fd;
  }
}

// Rewrites the log at `store.path` line by line, in place: `transform(line,
// &out)` appends what replaces `line` to `out` (nothing drops it) and
// returns whether the line changed. Under LOCK_EX on the log (appenders
// wait), the new content goes to a journal, which is synced and then copied
// over the log (jsonl.h: "Rewrites"). When no line changed the log is not
// touched. Returns the number of changed lines. Once `cancel` (may be null)
// is set, CANCELLED with the log untouched, unless the journal is already
// committed: then the rewrite is finished first.
template <typename Transform>
absl::StatusOr<int64_t> RewriteLog(const StoreSpec& store,
                                   const std::atomic<bool>* cancel, bool skip,
                                   const IdentityConflictDetector& conflicts,
                                   Transform transform) {
  const std::string& path = store.path;
  std::string context = absl::StrCat("store ", store.name);
  ASSIGN_OR_RETURN(ScopedFd log_fd,
                   OpenLockedLog(store, /*exclusive=*/true, cancel));
  if (skip) return 0;
  ASSIGN_OR_RETURN(LineReader reader,
                   LineReader::FromFd(log_fd.get(), path, store.name, cancel));
  std::string temp = path + kJournalTempSuffix;
  ASSIGN_OR_RETURN(ScopedFd temp_fd, CreateJournalTemp(temp));
  int64_t changed = 0;
  JournalHeader header;
  absl::Status status = [&]() -> absl::Status {
    std::string buffer;
    std::string_view line;
    int64_t line_number = 0;
    auto flush = [&]() -> absl::Status {
      RETURN_IF_ERROR(PwriteAll(temp_fd.get(), buffer,
                                kJournalHeaderBytes + header.new_size, temp));
      header.new_size += buffer.size();
      buffer.clear();
      return absl::OkStatus();
    };
    while (true) {
      ASSIGN_OR_RETURN(bool more, reader.Next(&line));
      if (!more) break;
      ++line_number;
      header.old_size += line.size();
      absl::StatusOr<bool> line_changed = transform(line, &buffer);
      if (!line_changed.ok()) {
        return Prefixed(line_changed.status(),
                        absl::StrCat(context, ": line ", line_number, ": "));
      }
      if (*line_changed) ++changed;
      if (buffer.size() >= kWriteBufferBytes) RETURN_IF_ERROR(flush());
    }
    // `transform` has seen every line: refuse an ambiguous subject before
    // the log changes.
    if (absl::Status conflict =
            conflicts.Check(store.name, store.collections.front().name);
        !conflict.ok()) {
      return conflict;
    }
    if (changed == 0) return absl::OkStatus();  // Leave the log untouched.
    RETURN_IF_ERROR(flush());
    // The last point at which the log can be left as it is.
    if (internal::Cancelled(cancel))
      return internal::CancelledError(store.name);
    ASSIGN_OR_RETURN(ScopedFd journal_fd,
                     CommitJournal(store, std::move(temp_fd), header));
    return ApplyJournal(store, log_fd.get(), journal_fd.get(),
                        path + kJournalSuffix, header);
  }();
  if (changed == 0 || !status.ok()) {
    // Not committed (or committed and failing, which the next operation
    // recovers): the temp file goes.
    ::unlink(temp.c_str());
  }
  if (!status.ok()) return status;
  return changed;
}

// Where the members of a line's top-level object are, so that one value can
// be replaced without touching a byte of the others.
struct ObjectMember {
  std::string key;     // Decoded.
  size_t value_begin;  // The value's bytes: [value_begin, value_end).
  size_t value_end;
};
struct ObjectLayout {
  std::vector<ObjectMember> members;
  size_t close;  // Offset of the closing '}'.
};

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Advances `*pos` past the string starting at `*pos` (a '"').
bool SkipString(std::string_view text, size_t* pos) {
  size_t i = *pos + 1;
  while (i < text.size()) {
    if (text[i] == '\\') {
      i += 2;
    } else if (text[i] == '"') {
      *pos = i + 1;
      return true;
    } else {
      ++i;
    }
  }
  return false;
}

// Advances `*pos` past the JSON value starting at `*pos`.
bool SkipValue(std::string_view text, size_t* pos) {
  size_t i = *pos;
  if (i >= text.size()) return false;
  if (text[i] == '"') return SkipString(text, pos);
  if (text[i] == '{' || text[i] == '[') {
    int depth = 0;
    while (i < text.size()) {
      char c = text[i];
      if (c == '"') {
        if (!SkipString(text, &i)) return false;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') --depth;
      ++i;
      if (depth == 0) {
        *pos = i;
        return true;
      }
    }
    return false;
  }
  // A number or a literal: up to the next delimiter.
  while (i < text.size() && !IsJsonSpace(text[i]) && text[i] != ',' &&
         text[i] != '}' && text[i] != ']') {
    ++i;
  }
  if (i == *pos) return false;
  *pos = i;
  return true;
}

// The layout of `line`, which ParseObject accepted; nullopt should not
// happen.
std::optional<ObjectLayout> ScanObject(std::string_view line) {
  ObjectLayout layout;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < line.size() && IsJsonSpace(line[i])) ++i;
  };
  if (line.substr(0, 3) == "\xEF\xBB\xBF") i = 3;  // nlohmann skips a BOM.
  skip_space();
  if (i >= line.size() || line[i] != '{') return std::nullopt;
  ++i;
  skip_space();
  if (i < line.size() && line[i] == '}') {
    layout.close = i;
    return layout;
  }
  while (i < line.size()) {
    if (line[i] != '"') return std::nullopt;
    size_t key_begin = i;
    if (!SkipString(line, &i)) return std::nullopt;
    std::string_view quoted = line.substr(key_begin, i - key_begin);
    Json key = Json::parse(quoted.begin(), quoted.end(), nullptr,
                           /*allow_exceptions=*/false);
    if (!key.is_string()) return std::nullopt;
    skip_space();
    if (i >= line.size() || line[i] != ':') return std::nullopt;
    ++i;
    skip_space();
    ObjectMember member{key.get<std::string>(), i, i};
    if (!SkipValue(line, &i)) return std::nullopt;
    member.value_end = i;
    layout.members.push_back(std::move(member));
    skip_space();
    if (i >= line.size()) return std::nullopt;
    if (line[i] == '}') {
      layout.close = i;
      return layout;
    }
    if (line[i] != ',') return std::nullopt;
    ++i;
    skip_space();
  }
  return std::nullopt;
}

// Edits one line: replaces values of top-level members and appends members,
// leaving every other byte as it was.
class LineEditor {
 public:
  explicit LineEditor(std::string_view line) : line_(line) {}

  void Replace(const ObjectMember& member, std::string text) {
    edits_.push_back({member.value_begin, member.value_end, std::move(text)});
  }
  // Inserts `text` at `offset`.
  void Insert(size_t offset, std::string text) {
    edits_.push_back({offset, offset, std::move(text)});
  }
  bool empty() const { return edits_.empty(); }

  void AppendTo(std::string* out) {
    std::stable_sort(
        edits_.begin(), edits_.end(),
        [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
    size_t copied = 0;
    for (const Edit& edit : edits_) {
      out->append(line_.substr(copied, edit.begin - copied));
      out->append(edit.text);
      copied = edit.end;
    }
    out->append(line_.substr(copied));
  }

 private:
  struct Edit {
    size_t begin, end;
    std::string text;
  };
  std::string_view line_;
  std::vector<Edit> edits_;
};

// `text` as a JSON number when it is one that serializes back to exactly
// `text` ("42", "-7", "1.5"; not "042", "+1", "1e3", "1.50" or "-0").
std::optional<Json> CanonicalJsonNumber(const std::string& text) {
  Json number = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (number.is_discarded() || !number.is_number()) return std::nullopt;
  if (number.dump() != text) return std::nullopt;
  return number;
}

// The value a correction gives a field that holds `existing`.
Json CorrectedValue(const Json& existing, const std::string& text) {
  if (existing.is_number()) {
    std::optional<Json> number = CanonicalJsonNumber(text);
    if (number.has_value()) return *number;
  }
  return Json(text);
}

// What the line index keys `line` by (jsonl_index.h): the canonical value
// of each identity field the line's object holds. Reads only the
// identity fields' values; a line the fast reader cannot lay out is parsed
// whole. Every value of a repeated member is visited, so the index finds
// the line whichever one the full parse keeps.
void VisitLineIdentities(
    std::string_view line, const CollectionSpec& collection,
    const std::string& region,
    absl::FunctionRef<void(std::string_view, std::string_view)> visit) {
  auto visit_value = [&](const std::string& key, const Json& value) {
    std::optional<std::string> text = FieldAsIdentity(value);
    if (!text.has_value()) return;
    absl::StatusOr<std::string> canonical =
        NormalizeIdentityValue(key, *text, region);
    if (canonical.ok()) visit(key, *canonical);
  };
  std::optional<ObjectLayout> layout = ScanObject(line);
  if (!layout.has_value()) {
    std::optional<Json> record = ParseObject(line);
    if (!record.has_value()) return;
    for (const auto& [key, field] : collection.identity_fields) {
      auto it = record->find(field);
      if (it != record->end()) visit_value(key, *it);
    }
    return;
  }
  for (const ObjectMember& member : layout->members) {
    for (const auto& [key, field] : collection.identity_fields) {
      if (field != member.key) continue;
      std::string_view text = line.substr(
          member.value_begin, member.value_end - member.value_begin);
      Json value = Json::parse(text.begin(), text.end(), nullptr,
                               /*allow_exceptions=*/false);
      if (!value.is_discarded()) visit_value(key, value);
    }
  }
}

}  // namespace

JsonlConnector::JsonlConnector(StoreSpec store, const std::atomic<bool>* cancel)
    : store_(std::move(store)), cancel_(cancel) {
  const CollectionSpec& collection = store_.collections.front();
  index_ = std::make_unique<JsonlLineIndex>(
      store_.path, store_.name,
      [&collection, region = store_.default_phone_region](
          std::string_view line,
          absl::FunctionRef<void(std::string_view, std::string_view)> visit) {
        VisitLineIdentities(line, collection, region, visit);
      });
}

JsonlConnector::~JsonlConnector() = default;

absl::StatusOr<ConnectorResult> JsonlConnector::Export(
    const std::vector<Identity>& identities, ByteSink& sink) {
  ExportWriter writer(sink, store_.name);
  ASSIGN_OR_RETURN(
      ConnectorResult result,
      ScanMatchingRecords(
          store_, *index_, cancel_, identities,
          [&](const CollectionSpec& collection, const Json& record) {
            return writer.AddRecord(collection.name, record);
          }));
  RETURN_IF_ERROR(writer.Finish());
  return result;
}

absl::StatusOr<ConnectorResult> JsonlConnector::Discover(
    const std::vector<Identity>& identities) {
  return ScanMatchingRecords(
      store_, *index_, cancel_, identities,
      [](const CollectionSpec&, const Json&) { return absl::OkStatus(); });
}

absl::Status JsonlConnector::ScanRecords(const RecordVisitor& visit) {
  const CollectionSpec& collection = store_.collections.front();
  ASSIGN_OR_RETURN(ScopedFd log_fd,
                   OpenLockedLog(store_, /*exclusive=*/false, cancel_));
  struct stat info;
  if (::fstat(log_fd.get(), &info) != 0) {
    return ErrnoStatus(
        errno, absl::StrCat("store ", store_.name, ": stat ", store_.path));
  }
  const uint64_t length = static_cast<uint64_t>(info.st_size);
  ASSIGN_OR_RETURN(
      LineReader reader,
      LineReader::FromFd(log_fd.get(), store_.path, store_.name, cancel_));
  uint64_t offset = 0;
  int64_t line_number = 0;
  std::string_view line;
  std::vector<std::string> texts;  // Non-string values as JSON text.
  ScannedRecord record;
  while (offset < length) {
    ASSIGN_OR_RETURN(bool more, reader.Next(&line));
    if (!more) break;
    offset += line.size();
    ++line_number;
    if (offset > length) line = line.substr(0, line.size() - (offset - length));
    std::optional<Json> object = ParseObject(line);
    if (!object.has_value()) continue;
    record.fields.clear();
    texts.clear();
    texts.reserve(object->size());
    record.key = absl::StrCat(line_number);
    for (const auto& [name, value] : object->items()) {
      std::optional<std::string_view> text;
      if (value.is_string()) {
        text = std::string_view(value.get_ref<const std::string&>());
      } else if (!value.is_null()) {
        texts.push_back(value.dump());
        text = std::string_view(texts.back());
      }
      record.fields.push_back({name, text});
      if (!collection.record_key.empty() && name == collection.record_key) {
        std::optional<std::string> key = FieldAsIdentity(value);
        if (key.has_value()) record.key = *std::move(key);
      }
    }
    RETURN_IF_ERROR(visit(collection, record));
  }
  return absl::OkStatus();
}

absl::StatusOr<EraseResult> JsonlConnector::Erase(
    const std::vector<Identity>& identities) {
  const CollectionSpec& collection = store_.collections.front();
  IdentityMatcher matcher(identities, store_.default_phone_region);
  EraseResult result;
  result.collections.push_back({collection.name});
  // LOCK_EX: appenders and readers wait while lines are overwritten.
  ASSIGN_OR_RETURN(ScopedFd log_fd,
                   OpenLockedLog(store_, /*exclusive=*/true, cancel_));
  IdentityConflictDetector conflicts;
  ASSIGN_OR_RETURN(std::vector<MatchedLine> lines,
                   FindMatchingLines(store_, *index_, log_fd.get(), matcher,
                                     conflicts, cancel_));
  // Refuse an ambiguous subject before the log changes.
  RETURN_IF_ERROR(conflicts.Check(store_.name, collection.name));
  if (lines.empty()) return result;  // The log is not touched.
  std::vector<LineRange> ranges;
  ranges.reserve(lines.size());
  for (const MatchedLine& line : lines) {
    ranges.push_back({line.offset, line.text.size()});
  }
  RETURN_IF_ERROR(EraseLinesInPlace(store_, log_fd.get(), ranges, cancel_));
  result.collections.front().rows_deleted = static_cast<int64_t>(lines.size());
  return result;
}

absl::StatusOr<int64_t> JsonlConnector::Rectify(
    const std::vector<Identity>& identities,
    const std::vector<FieldCorrection>& corrections) {
  const CollectionSpec& collection = store_.collections.front();
  // Without a schema, the fields known to be in the log are the ones the
  // inventory names.
  auto named_by_inventory = [&](const std::string& field) {
    for (const auto& [key, identity_field] : collection.identity_fields) {
      if (identity_field == field) return true;
    }
    for (const auto& [flag, flag_field] : collection.processing_flags) {
      if (flag_field == field) return true;
    }
    return false;
  };
  ASSIGN_OR_RETURN(
      CollectionCorrections resolved,
      ResolveCorrections(store_, collection, corrections, named_by_inventory));
  IdentityMatcher matcher(identities, store_.default_phone_region);
  bool skip = matcher.empty() ||
              (resolved.updates.empty() && resolved.unknown_fields.empty());
  IdentityConflictDetector conflicts;
  return RewriteLog(
      store_, cancel_, skip, conflicts,
      [&](std::string_view line, std::string* out) -> absl::StatusOr<bool> {
        std::optional<Json> record;
        std::optional<ObjectLayout> layout;
        if (LineMatches(line, collection, matcher, conflicts, &record)) {
          layout = ScanObject(line);
          if (!layout.has_value()) {
            return absl::InternalError("cannot locate the fields to correct");
          }
        }
        if (!layout.has_value()) {
          out->append(line);
          return false;
        }
        LineEditor editor(line);
        for (const ObjectMember& member : layout->members) {
          if (resolved.unknown_fields.count(member.key) > 0) {
            return absl::InvalidArgumentError(
                absl::StrCat("field \"", member.key,
                             "\" is not one of the pii_fields of collection ",
                             collection.name, " and cannot be rectified"));
          }
          auto update = resolved.updates.find(member.key);
          if (update == resolved.updates.end()) continue;
          std::string_view value = line.substr(
              member.value_begin, member.value_end - member.value_begin);
          Json existing = Json::parse(value.begin(), value.end(), nullptr,
                                      /*allow_exceptions=*/false);
          if (existing.is_discarded()) {
            return absl::InternalError(
                absl::StrCat("cannot read field \"", member.key, "\""));
          }
          Json corrected = CorrectedValue(existing, update->second);
          if (corrected != existing) {
            editor.Replace(member, corrected.dump());
          }
        }
        if (editor.empty()) {
          out->append(line);
          return false;
        }
        editor.AppendTo(out);
        return true;
      });
}

absl::StatusOr<int64_t> JsonlConnector::SetProcessingFlag(
    const std::vector<Identity>& identities, const std::string& flag) {
  RETURN_IF_ERROR(CheckProcessingFlagName(store_.name, flag));
  const CollectionSpec& collection = store_.collections.front();
  auto it = collection.processing_flags.find(flag);
  // Nothing to flag here; the log is not opened.
  if (it == collection.processing_flags.end()) return 0;
  const std::string& field = it->second;
  IdentityMatcher matcher(identities, store_.default_phone_region);
  IdentityConflictDetector conflicts;
  return RewriteLog(
      store_, cancel_, matcher.empty(), conflicts,
      [&](std::string_view line, std::string* out) -> absl::StatusOr<bool> {
        std::optional<Json> record;
        std::optional<ObjectLayout> layout;
        if (LineMatches(line, collection, matcher, conflicts, &record)) {
          layout = ScanObject(line);
          if (!layout.has_value()) {
            return absl::InternalError("cannot locate the flag field");
          }
        }
        if (!layout.has_value()) {
          out->append(line);
          return false;
        }
        LineEditor editor(line);
        bool present = false;
        for (const ObjectMember& member : layout->members) {
          if (member.key != field) continue;
          present = true;
          std::string_view value = line.substr(
              member.value_begin, member.value_end - member.value_begin);
          if (value != "true") editor.Replace(member, "true");
        }
        if (!present) {
          // After the last member, or inside "{}".
          std::string member = absl::StrCat(Json(field).dump(), ":true");
          if (layout->members.empty()) {
            editor.Insert(layout->close, member);
          } else {
            editor.Insert(layout->members.back().value_end,
                          absl::StrCat(",", member));
          }
        }
        if (editor.empty()) {
          out->append(line);
          return false;
        }
        editor.AppendTo(out);
        return true;
      });
}

}  // namespace dsar
