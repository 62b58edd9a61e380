#ifndef DSAR_COMMON_DISK_SPACE_H_
#define DSAR_COMMON_DISK_SPACE_H_

// Free disk space as a resource: dsard refuses new work before a disk is
// full, instead of failing a commit on it (docs/operations.md "Disk space").

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dsar {

// Bytes an unprivileged writer may still use on the filesystem holding
// `path` (statvfs f_bavail * f_frsize). INTERNAL naming the path when it
// cannot be asked.
absl::StatusOr<uint64_t> FreeBytes(const std::string& path);

// RESOURCE_EXHAUSTED when the filesystem holding `path` has fewer than
// `reserve` bytes free: "<what>: <path> has 12 MiB free, below the reserve
// of 512 MiB; <consequence>". OK when it cannot be asked (the write that
// follows reports the real error).
absl::Status CheckDiskReserve(const std::string& path, uint64_t reserve,
                              absl::string_view what,
                              absl::string_view consequence);

}  // namespace dsar

#endif  // DSAR_COMMON_DISK_SPACE_H_
