#ifndef DSAR_STORAGE_BUNDLE_WRITER_H_
#define DSAR_STORAGE_BUNDLE_WRITER_H_

// Writes the ZIP that answers an access or portability request: the data
// each store exported, and the Art. 15 GDPR answer rendered from templates an
// organisation edits (the variables are listed at the top of
// templates/art15/response.md.mustache). Exports are read, and the ZIP and
// its temporaries written, encrypted (storage/encrypted_file.h): no
// plaintext personal data reaches the disk.

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace dsar {

struct BundleStoreEntry {
  std::string store;
  std::string kind;    // Inventory kind, e.g. "sqlite".
  std::string status;  // "SUCCEEDED" or "FAILED".
  int64_t record_count = 0;
  std::string error;  // For FAILED: a neutral reason the subject may read.
  // The identity kinds ("email", "user_id", ...) the store was searched
  // with; empty: it could not be searched.
  std::vector<std::string> identity_kinds;
  // For SUCCEEDED: the uploaded export, encrypted under
  // BundleInput::data_key with ExportFileContext(request_id), and the
  // SHA-256 of its plaintext. The plaintext is
  // {"store":"<name>","records":[{"collection":"<table>","data":{...}},...]}
  // (only parsed when BundleInput::templates_dir is set).
  std::string data_path;
  std::string data_sha256;

  // Inventory facts for the Art. 15 answer (StoreSpec fields), used only
  // when BundleInput::templates_dir is set. Empty strings are "not recorded".
  std::string purpose;
  std::string legal_basis;
  std::vector<std::string> recipients;
  std::string retention;
  std::string source;
  // Collection -> (field -> category): each CollectionSpec's pii_fields.
  // Exported fields not listed here are reported under the category
  // kUncategorisedCategory.
  std::map<std::string, std::map<std::string, std::string>> pii_categories;
};

// Something deliberately not provided (a legal hold, another person's data,
// Art. 15(4)); listed in exemptions.json and the response.
struct BundleExemption {
  std::string store;  // The store concerned; [a-z0-9_-]+.
  std::string reason;
  std::string legal_basis;  // E.g. "GDPR Art. 15(4): rights of others".
};

struct BundleInput {
  std::string request_id;
  std::string request_type;  // "ACCESS" or "PORTABILITY".
  std::string created_at;    // RFC 3339.
  std::vector<BundleStoreEntry> stores;
  // The request's data key (kEncryptedFileKeyBytes bytes, required): the
  // exports are encrypted under it and so is the ZIP, with
  // BundleFileContext(request_id).
  std::string data_key;

  // Directory holding response.md.mustache and response.html.mustache
  // (normally templates/art15/). Empty: the bundle has the original layout
  // (manifest.json and data/<store>.json only, no Art. 15 answer, no CSV);
  // kept for callers not yet wired, production callers must set it.
  std::string templates_dir;
  std::string controller;   // Inventory::controller(), may be empty.
  std::string regulation;   // "GDPR" or "CCPA"; selects rights wording.
  std::string received_at;  // When the request was received, as displayed.
  std::string deadline;     // The (possibly extended) deadline, as displayed.
  std::vector<BundleExemption> withheld;
  // Personal data a store keeps when the subject's data is erased (the
  // inventory's erase mask `keep`), with the law that requires it: listed
  // in exemptions.json with kind "retained" and in the response, so the
  // subject knows before asking for erasure.
  std::vector<BundleExemption> retained;

  // Stops the writer soon after it becomes true: WriteExportBundle returns
  // CANCELLED and leaves no bundle (a stopping dsard need not wait for a
  // large bundle). Not owned; null: never.
  const std::atomic<bool>* cancel = nullptr;
};

struct BundleResult {
  // Of the whole ZIP's plaintext: what the subject downloads and can check.
  std::string sha256;
  int64_t size_bytes = 0;
  std::vector<std::string> files;  // ZIP entry names, in order.
};

// Category under which exported fields absent from pii_categories appear.
inline constexpr char kUncategorisedCategory[] = "other";

// Values of one (store, category) shown in the response; the rest are
// counted ("and N more"), all of them are in data/<store>.json. Each value
// is cut at kMaxResponseValueBytes. This bounds the response's memory.
inline constexpr int kMaxResponseValuesPerCategory = 100;
inline constexpr size_t kMaxResponseValueBytes = 1024;
// Columns per CSV; fields beyond are written as one JSON object in a last
// column named "_extra_fields", so memory is bounded by this, not the data.
inline constexpr size_t kMaxCsvColumns = 1000;

// Writes `zip_path` with libzip, encrypted under input.data_key with
// BundleFileContext(input.request_id) (read it with OpenEncryptedZip):
//   manifest.json     {"request_id","request_type","created_at",
//                      "stores":[{"store","kind","status","record_count",
//                                 "file","sha256","error","csv_files"}],
//                      "files":{"<entry>":"<sha256>", ...}}
//                     "files" lists every entry but the manifest itself.
//                     With templates_dir also "regulation", "controller",
//                     "received_at", "deadline".
//   response.md       The Art. 15 answer rendered from
//   response.html     <templates_dir>/response.{md,html}.mustache. {{var}}
//                     escapes for HTML in the HTML and for CommonMark
//                     (backslash escapes, newlines folded) in the Markdown.
//                     The subject is named only as "the data subject of
//                     request <id>"; no identity is given to this function.
//   exemptions.json   {"request_id","exemptions":[{"store","kind","reason",
//                      "legal_basis"}]}: kind "unavailable" for each FAILED
//                     store (reason = its error; legal_basis says nothing
//                     was withheld and the data follows once the store is
//                     reachable), kind "withheld" for input.withheld,
//                     kind "retained" for input.retained.
//   data/<store>.json one per SUCCEEDED store, the plaintext of data_path
//                     (decrypted chunk by chunk as libzip reads it, not
//                     loaded into memory).
//   data/<store>.<collection>.csv
//                     PORTABILITY only: one RFC 4180 CSV (CRLF, quoted where
//                     needed, header row = fields in first-seen order) per
//                     collection that has records. Strings as is, numbers
//                     and booleans as JSON, null empty, objects and arrays
//                     as compact JSON. Cells are not altered against
//                     spreadsheet formula injection: the copy is the data.
//                     Collection names are sanitised to [A-Za-z0-9_-].
// The Art. 15 entries (response.*, exemptions.json, CSVs) exist only when
// templates_dir is set; then they follow the manifest, before data/.
//
// Memory does not grow with export size: exports are parsed as a stream, one
// record at a time (twice for PORTABILITY: columns, then rows), CSVs are
// written to a temporary directory beside `zip_path` (0700, removed on
// return), encrypted under a random key that lives only in memory (one
// 64 KiB chunk buffered per collection being written), and the response
// shows bounded samples (constants above).
//
// Errors, before any file is created: INVALID_ARGUMENT for a data key of the
// wrong size, a bad store name, duplicate store, unknown status, SUCCEEDED
// store without data, an unknown regulation or a withheld entry without
// reason/legal_basis; DATA_LOSS naming the store when a data file is
// missing, does not decrypt under data_key and ExportFileContext(request_id)
// or its plaintext's SHA-256 differs from data_sha256, or (with
// templates_dir) an export is not the documented JSON; FAILED_PRECONDITION
// naming the file when a template is missing, unreadable or invalid
// Mustache. The ZIP is written under a temporary name, read back (each chunk
// authenticated, the plaintext hashed), fsynced and renamed, so `zip_path`
// either does not exist or is complete. Rewriting an existing bundle is
// allowed (the bundle step may run twice).
absl::StatusOr<BundleResult> WriteExportBundle(const BundleInput& input,
                                               const std::string& zip_path);

}  // namespace dsar

#endif  // DSAR_STORAGE_BUNDLE_WRITER_H_
