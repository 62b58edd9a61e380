#ifndef DSAR_COMMON_FILES_H_
#define DSAR_COMMON_FILES_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dsar {

// Flushes a file's data and metadata to stable storage.
absl::Status FsyncPath(const std::string& path);

// Flushes a directory entry (after create or rename inside it).
absl::Status FsyncDirectory(const std::string& dir);

// Writes `contents` to `path` so that a crash leaves either the old file or
// the new one: temp file in the same directory, fsync, rename, fsync dir.
absl::Status WriteFileAtomically(const std::string& path,
                                 std::string_view contents);

absl::StatusOr<std::string> ReadFile(const std::string& path);

// Creates `dir` and missing parents. OK when it already exists.
absl::Status MakeDirectories(const std::string& dir);

// Removes `path` and, for a directory, everything below it. OK when it does
// not exist.
absl::Status RemoveTree(const std::string& path);

// The directory part of `path` ("." when there is none).
std::string DirName(const std::string& path);

}  // namespace dsar

#endif  // DSAR_COMMON_FILES_H_
