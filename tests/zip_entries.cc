#include "tests/zip_entries.h"

#include <zip.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace dsar::testing {

namespace {

// Every entry of `archive`, which this closes; `name` for messages.
absl::StatusOr<std::map<std::string, std::string>> ReadEntries(
    zip_t* archive, const std::string& path) {
  std::map<std::string, std::string> entries;
  zip_int64_t count = zip_get_num_entries(archive, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t stat;
    if (zip_stat_index(archive, i, 0, &stat) != 0) continue;
    zip_file_t* file = zip_fopen_index(archive, i, 0);
    if (file == nullptr) continue;
    std::string data(stat.size, '\0');
    zip_int64_t read = zip_fread(file, data.data(), stat.size);
    zip_fclose(file);
    if (read != static_cast<zip_int64_t>(stat.size)) {
      zip_close(archive);
      return absl::DataLossError(
          absl::StrCat(path, ": short read of ", stat.name));
    }
    entries[stat.name] = std::move(data);
  }
  zip_close(archive);
  return entries;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ReadZip(
    const std::string& path) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY, &error);
  if (archive == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": zip_open error ", error));
  }
  return ReadEntries(archive, path);
}

absl::StatusOr<std::map<std::string, std::string>> ReadZipBytes(
    const std::string& bytes) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source =
      zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source == nullptr) {
    zip_error_fini(&error);
    return absl::InternalError("zip_source_buffer_create failed");
  }
  zip_t* archive = zip_open_from_source(source, ZIP_RDONLY, &error);
  if (archive == nullptr) {
    std::string message = zip_error_strerror(&error);
    zip_source_free(source);
    zip_error_fini(&error);
    return absl::DataLossError(
        absl::StrCat("not a ZIP (", bytes.size(), " bytes): ", message));
  }
  zip_error_fini(&error);
  return ReadEntries(archive, "bundle bytes");
}

}  // namespace dsar::testing
