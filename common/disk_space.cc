#include "common/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace dsar {
namespace {

std::string Mebibytes(uint64_t bytes) {
  return absl::StrCat(bytes >> 20, " MiB");
}

}  // namespace

absl::StatusOr<uint64_t> FreeBytes(const std::string& path) {
  struct statvfs info;
  if (::statvfs(path.c_str(), &info) != 0) {
    return absl::InternalError(
        absl::StrCat("statvfs ", path, ": ", std::strerror(errno)));
  }
  return static_cast<uint64_t>(info.f_bavail) *
         static_cast<uint64_t>(info.f_frsize);
}

absl::Status CheckDiskReserve(const std::string& path, uint64_t reserve,
                              absl::string_view what,
                              absl::string_view consequence) {
  absl::StatusOr<uint64_t> free = FreeBytes(path);
  if (!free.ok() || *free >= reserve) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      what, ": ", path, " has ", Mebibytes(*free),
      " free, below the reserve of ", Mebibytes(reserve), "; ", consequence));
}

}  // namespace dsar
