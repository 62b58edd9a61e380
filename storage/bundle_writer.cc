#include "storage/bundle_writer.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace dsar {
namespace {

constexpr char kManifestEntry[] = "manifest.json";
constexpr char kSucceeded[] = "SUCCEEDED";
constexpr char kFailed[] = "FAILED";

// Store names become ZIP entry names; only [a-z0-9_-]+ is accepted so that
// no name can climb out of data/ ("../x"), be absolute or hide characters.
bool IsValidStoreName(const std::string& store) {
  if (store.empty()) return false;
  for (char c : store) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string DataEntryName(const std::string& store) {
  return absl::StrCat("data/", store, ".json");
}

absl::Status ValidateInput(const BundleInput& input) {
  std::set<std::string> seen;
  for (const BundleStoreEntry& entry : input.stores) {
    if (!IsValidStoreName(entry.store)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle: invalid store name \"", entry.store,
                       "\" (want [a-z0-9_-]+)"));
    }
    if (!seen.insert(entry.store).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle: store ", entry.store, " listed twice"));
    }
    if (entry.status != kSucceeded && entry.status != kFailed) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle: store ", entry.store, " has status \"",
                       entry.status, "\" (want SUCCEEDED or FAILED)"));
    }
    if (entry.status == kSucceeded &&
        (entry.data_path.empty() || entry.data_sha256.empty())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bundle: SUCCEEDED store ", entry.store, " has no data_path/sha256"));
    }
  }
  return absl::OkStatus();
}

// The data file must still be exactly what the worker uploaded.
absl::Status VerifyDataFile(const BundleStoreEntry& entry) {
  absl::StatusOr<std::string> actual = Sha256FileHex(entry.data_path);
  if (!actual.ok()) {
    return absl::DataLossError(absl::StrCat(
        "bundle: store ", entry.store, ": data file ", entry.data_path,
        " unreadable: ", actual.status().message()));
  }
  if (*actual != entry.data_sha256) {
    return absl::DataLossError(absl::StrCat(
        "bundle: store ", entry.store, ": data file ", entry.data_path,
        " has sha256 ", *actual, ", expected ", entry.data_sha256));
  }
  return absl::OkStatus();
}

std::string BuildManifest(const BundleInput& input) {
  // ordered_json keeps keys in the documented order for human readers.
  nlohmann::ordered_json stores = nlohmann::ordered_json::array();
  nlohmann::ordered_json files = nlohmann::ordered_json::object();
  for (const BundleStoreEntry& entry : input.stores) {
    nlohmann::ordered_json store;
    store["store"] = entry.store;
    store["kind"] = entry.kind;
    store["status"] = entry.status;
    store["record_count"] = entry.record_count;
    if (entry.status == kSucceeded) {
      std::string name = DataEntryName(entry.store);
      store["file"] = name;
      store["sha256"] = entry.data_sha256;
      files[name] = entry.data_sha256;
    } else {
      store["error"] = entry.error;
    }
    stores.push_back(std::move(store));
  }
  nlohmann::ordered_json manifest;
  manifest["request_id"] = input.request_id;
  manifest["request_type"] = input.request_type;
  manifest["created_at"] = input.created_at;
  manifest["stores"] = std::move(stores);
  manifest["files"] = std::move(files);
  return manifest.dump(2) + "\n";
}

absl::Status ZipError(const std::string& what, zip_t* archive) {
  return absl::InternalError(
      absl::StrCat("bundle: ", what, ": ", zip_strerror(archive)));
}

// Owns an open archive and its temporary file until Release(); on any early
// return it discards the archive and removes the temporary file.
class TempArchive {
 public:
  TempArchive(zip_t* archive, std::string path)
      : archive_(archive), path_(std::move(path)) {}
  ~TempArchive() {
    if (archive_ != nullptr) zip_discard(archive_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempArchive(const TempArchive&) = delete;
  TempArchive& operator=(const TempArchive&) = delete;

  zip_t* archive() const { return archive_; }
  // zip_close succeeded or failed: either way the handle is gone.
  void ForgetArchive() { archive_ = nullptr; }
  // The file was renamed into place; nothing left to remove.
  void ForgetFile() { path_.clear(); }

 private:
  zip_t* archive_;
  std::string path_;
};

absl::Status AddEntry(zip_t* archive, const std::string& name,
                      zip_source_t* source) {
  if (source == nullptr) {
    return ZipError(absl::StrCat("source for ", name), archive);
  }
  zip_int64_t index =
      zip_file_add(archive, name.c_str(), source, ZIP_FL_ENC_UTF_8);
  if (index < 0) {
    zip_source_free(source);  // Still ours when zip_file_add fails.
    return ZipError(absl::StrCat("add ", name), archive);
  }
  if (zip_set_file_compression(archive, static_cast<zip_uint64_t>(index),
                               ZIP_CM_DEFLATE, 0) != 0) {
    return ZipError(absl::StrCat("compression for ", name), archive);
  }
  return absl::OkStatus();
}

std::string TempPathFor(const std::string& zip_path) {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(zip_path, ".tmp.", ::getpid(), ".", counter++);
}

}  // namespace

absl::StatusOr<BundleResult> WriteExportBundle(const BundleInput& input,
                                               const std::string& zip_path) {
  RETURN_IF_ERROR(ValidateInput(input));
  // Verify everything before creating any file: a bad export must not leave
  // a half-built bundle behind.
  for (const BundleStoreEntry& entry : input.stores) {
    if (entry.status == kSucceeded) RETURN_IF_ERROR(VerifyDataFile(entry));
  }

  // Referenced by zip_source_buffer until zip_close returns.
  const std::string manifest = BuildManifest(input);

  const std::string temp_path = TempPathFor(zip_path);
  int open_error = 0;
  zip_t* archive =
      zip_open(temp_path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &open_error);
  if (archive == nullptr) {
    zip_error_t error;
    zip_error_init_with_code(&error, open_error);
    absl::Status status = absl::InternalError(absl::StrCat(
        "bundle: open ", temp_path, ": ", zip_error_strerror(&error)));
    zip_error_fini(&error);
    ::unlink(temp_path.c_str());
    return status;
  }
  TempArchive temp(archive, temp_path);

  BundleResult result;
  RETURN_IF_ERROR(AddEntry(
      archive, kManifestEntry,
      zip_source_buffer(archive, manifest.data(), manifest.size(), 0)));
  result.files.push_back(kManifestEntry);
  for (const BundleStoreEntry& entry : input.stores) {
    if (entry.status != kSucceeded) continue;
    std::string name = DataEntryName(entry.store);
    // Read lazily during zip_close, in chunks: memory stays flat.
    RETURN_IF_ERROR(
        AddEntry(archive, name,
                 zip_source_file(archive, entry.data_path.c_str(), 0, 0)));
    result.files.push_back(std::move(name));
  }

  if (zip_close(archive) != 0) {
    // The handle stays valid on failure; `temp` discards it and the file.
    return ZipError(absl::StrCat("write ", temp_path), archive);
  }
  temp.ForgetArchive();

  // The bundle holds personal data: owner-only, whatever the umask.
  if (::chmod(temp_path.c_str(), 0600) != 0) {
    return absl::InternalError(
        absl::StrCat("bundle: chmod ", temp_path, ": ", std::strerror(errno)));
  }
  RETURN_IF_ERROR(FsyncPath(temp_path));

  struct stat st;
  if (::stat(temp_path.c_str(), &st) != 0) {
    return absl::InternalError(
        absl::StrCat("bundle: stat ", temp_path, ": ", std::strerror(errno)));
  }
  result.size_bytes = static_cast<int64_t>(st.st_size);
  ASSIGN_OR_RETURN(result.sha256, Sha256FileHex(temp_path));

  if (::rename(temp_path.c_str(), zip_path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("bundle: rename ", temp_path,
                                            " to ", zip_path, ": ",
                                            std::strerror(errno)));
  }
  temp.ForgetFile();
  RETURN_IF_ERROR(FsyncDirectory(DirName(zip_path)));
  return result;
}

}  // namespace dsar
