#ifndef DSAR_STORAGE_BUNDLE_WRITER_H_
#define DSAR_STORAGE_BUNDLE_WRITER_H_

// Writes the ZIP that answers an access or portability request.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace dsar {

struct BundleStoreEntry {
  std::string store;
  std::string kind;    // Inventory kind, e.g. "sqlite".
  std::string status;  // "SUCCEEDED" or "FAILED".
  int64_t record_count = 0;
  std::string error;  // For FAILED: error name and cause.
  // For SUCCEEDED: the uploaded export (a JSON document) and its SHA-256.
  std::string data_path;
  std::string data_sha256;
};

struct BundleInput {
  std::string request_id;
  std::string request_type;  // "ACCESS" or "PORTABILITY".
  std::string created_at;    // RFC 3339.
  std::vector<BundleStoreEntry> stores;
};

struct BundleResult {
  std::string sha256;  // Of the whole ZIP file.
  int64_t size_bytes = 0;
  std::vector<std::string> files;  // ZIP entry names, in order.
};

// Writes `zip_path` with libzip:
//   manifest.json     {"request_id","request_type","created_at",
//                      "stores":[{"store","kind","status","record_count",
//                                 "file","sha256","error"}],
//                      "files":{"data/<store>.json":"<sha256>", ...}}
//   data/<store>.json one per SUCCEEDED store, copied from data_path
//                     (streamed from disk, not loaded into memory).
// Verifies each data file's SHA-256 against data_sha256 (DATA_LOSS on a
// mismatch). The ZIP is written under a temporary name, fsynced and renamed,
// so `zip_path` either does not exist or is complete. Rewriting an existing
// bundle is allowed (the bundle step may run twice).
absl::StatusOr<BundleResult> WriteExportBundle(const BundleInput& input,
                                               const std::string& zip_path);

}  // namespace dsar

#endif  // DSAR_STORAGE_BUNDLE_WRITER_H_
