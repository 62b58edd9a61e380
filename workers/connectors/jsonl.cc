#include "workers/connectors/jsonl.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/corrections.h"
#include "workers/connectors/export_writer.h"
#include "workers/connectors/identity_match.h"

namespace dsar {
namespace {

// ordered_json keeps the fields in the order the log wrote them.
using Json = nlohmann::ordered_json;

// Rewrites (Erase, Rectify, SetProcessingFlag) write their temp file as
// "<log>.dsar-erase.<pid>.<n>.tmp"; the name predates the other two.
constexpr char kTempInfix[] = ".dsar-erase.";
constexpr char kTempSuffix[] = ".tmp";
constexpr size_t kWriteBufferBytes = 64 * 1024;

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

// Streams the log, handing each matching record to `on_match`.
template <typename OnMatch>
absl::StatusOr<ConnectorResult> ScanMatchingRecords(
    const StoreSpec& store, const std::vector<Identity>& identities,
    OnMatch on_match) {
  const CollectionSpec& collection = store.collections.front();
  IdentityMatcher matcher(identities, store.default_phone_region);
  DiscoveredIdentities discovered(identities, matcher);
  ConnectorResult result;
  IdentityConflictDetector conflicts;
  ASSIGN_OR_RETURN(LineReader reader, LineReader::Open(store.path, store.name));
  std::string_view line;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader.Next(&line));
    if (!more) break;
    if (matcher.empty()) continue;
    std::optional<Json> record;
    if (!LineMatches(line, collection, matcher, conflicts, &record)) continue;
    ++result.record_count;
    for (const auto& [key, field] : collection.identity_fields) {
      auto it = record->find(field);
      if (it == record->end()) continue;
      std::optional<std::string> value = FieldAsIdentity(*it);
      if (value.has_value()) discovered.Add(key, std::move(*value));
    }
    RETURN_IF_ERROR(on_match(collection, *record));
  }
  RETURN_IF_ERROR(conflicts.Check(store.name, collection.name));
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

// Rewrites the log at `path` line by line: `transform(line, &out)` appends
// what replaces `line` to `out` (nothing drops it) and returns whether the
// line changed. Lines are copied in chunks into a temp file in the same
// directory, which is fsynced and renamed over the log; when no line changed
// the log is not touched. Returns the number of changed lines. Rewrites of
// logs in one directory are serialized with flock(2) on the directory.
template <typename Transform>
absl::StatusOr<int64_t> RewriteLog(const StoreSpec& store, bool skip,
                                   const IdentityConflictDetector& conflicts,
                                   Transform transform) {
  static std::atomic<uint64_t> temp_counter{0};
  const std::string& path = store.path;
  std::string dir = DirName(path);
  std::string context = absl::StrCat("store ", store.name);

  // One rewrite at a time per directory: two concurrent rewrites of one log
  // would each rename their copy over it, and the first one's change would
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

  ASSIGN_OR_RETURN(LineReader reader, LineReader::Open(path, store.name));
  if (skip) return 0;
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
  int64_t changed = 0;
  absl::Status status = [&]() -> absl::Status {
    std::string buffer;
    std::string_view line;
    int64_t line_number = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool more, reader.Next(&line));
      if (!more) break;
      ++line_number;
      absl::StatusOr<bool> line_changed = transform(line, &buffer);
      if (!line_changed.ok()) {
        return absl::Status(line_changed.status().code(),
                            absl::StrCat(context, ": line ", line_number, ": ",
                                         line_changed.status().message()));
      }
      if (*line_changed) ++changed;
      if (buffer.size() >= kWriteBufferBytes) {
        RETURN_IF_ERROR(WriteAll(out.get(), buffer, temp));
        buffer.clear();
      }
    }
    // `transform` has seen every line: refuse an ambiguous subject before
    // the log changes.
    RETURN_IF_ERROR(
        conflicts.Check(store.name, store.collections.front().name));
    if (changed == 0) return absl::OkStatus();  // Leave the log untouched.
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
  if (!renamed) ::unlink(temp.c_str());
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

}  // namespace

absl::StatusOr<ConnectorResult> JsonlConnector::Export(
    const std::vector<Identity>& identities, ByteSink& sink) {
  // A first pass refuses an identity conflict before a byte is exported.
  RETURN_IF_ERROR(Discover(identities).status());
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
  const CollectionSpec& collection = store_.collections.front();
  IdentityMatcher matcher(identities, store_.default_phone_region);
  IdentityConflictDetector conflicts;
  return RewriteLog(
      store_, matcher.empty(), conflicts,
      [&](std::string_view line, std::string* out) -> absl::StatusOr<bool> {
        std::optional<Json> record;
        if (LineMatches(line, collection, matcher, conflicts, &record)) {
          return true;
        }
        out->append(line);
        return false;
      });
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
      store_, skip, conflicts,
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
      store_, matcher.empty(), conflicts,
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
