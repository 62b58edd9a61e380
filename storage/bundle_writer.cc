#include "storage/bundle_writer.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <set>
#include <streambuf>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "kainjow/mustache.hpp"
#include "nlohmann/json.hpp"
#include "storage/encrypted_file.h"
#include "storage/encrypted_zip.h"

namespace dsar {
namespace {

// Keeps the export's field order (a table's column order) for CSV headers.
using Json = nlohmann::ordered_json;

constexpr char kManifestEntry[] = "manifest.json";
constexpr char kResponseMdEntry[] = "response.md";
constexpr char kResponseHtmlEntry[] = "response.html";
constexpr char kExemptionsEntry[] = "exemptions.json";
constexpr char kMdTemplate[] = "response.md.mustache";
constexpr char kHtmlTemplate[] = "response.html.mustache";
constexpr char kSucceeded[] = "SUCCEEDED";
constexpr char kFailed[] = "FAILED";
// Deflate level of every entry. libzip's default (0) is level 9, which was
// four fifths of the bundle's time for a 2 GiB export; level 1 deflates
// six to seven times faster for a bundle about a third larger
// (docs/BENCHMARKS.md, "Delivery").
constexpr zip_uint32_t kDeflateLevel = 1;
constexpr char kPortability[] = "PORTABILITY";
constexpr char kExtraFieldsColumn[] = "_extra_fields";
// An export comes from one inventory store; more collections than this means
// it is not what a connector writes.
constexpr size_t kMaxCollectionsPerStore = 256;

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

bool WritesArt15(const BundleInput& input) {
  return !input.templates_dir.empty();
}

bool WritesCsv(const BundleInput& input) {
  return WritesArt15(input) && input.request_type == kPortability;
}

absl::Status ValidateInput(const BundleInput& input) {
  if (input.data_key.size() != kEncryptedFileKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle: data_key must have ", kEncryptedFileKeyBytes,
                     " bytes, got ", input.data_key.size()));
  }
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
  if (!WritesArt15(input)) return absl::OkStatus();
  if (input.regulation != "GDPR" && input.regulation != "CCPA") {
    return absl::InvalidArgumentError(absl::StrCat(
        "bundle: regulation \"", input.regulation, "\" (want GDPR or CCPA)"));
  }
  for (const auto& [name, list] :
       {std::pair<const char*, const std::vector<BundleExemption>*>{
            "withheld", &input.withheld},
        {"retained", &input.retained}}) {
    for (size_t i = 0; i < list->size(); ++i) {
      const BundleExemption& withheld = (*list)[i];
      std::string where = absl::StrCat("bundle: ", name, "[", i, "]");
      if (!IsValidStoreName(withheld.store)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".store: \"", withheld.store,
                         "\" is not a store name ([a-z0-9_-]+)"));
      }
      if (withheld.reason.empty() || withheld.legal_basis.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, " (", withheld.store,
            "): reason and legal_basis are required for ", name, " data"));
      }
    }
  }

  return absl::OkStatus();
}

// The data file must still be exactly what the worker uploaded.
absl::Status VerifyDataFile(const BundleInput& input,
                            const BundleStoreEntry& entry) {
  absl::StatusOr<std::string> actual = EncryptedFileSha256Hex(
      entry.data_path, input.data_key, ExportFileContext(input.request_id));
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

// ---------------------------------------------------------------------------
// Reading exports as a stream.

// Thrown from the parser callback to stop at the first error; never leaves
// ForEachExportRecord.
struct StopParsing {};

// The plaintext of an encrypted file as a stream, for the JSON parser. Reads
// one chunk at a time, chunk-aligned, so each is decrypted straight into the
// buffer. A read error ends the stream; status() tells it from the end.
class EncryptedFileStreamBuf : public std::streambuf {
 public:
  explicit EncryptedFileStreamBuf(EncryptedFileReader* reader)
      : reader_(reader), buffer_(new char[kEncryptedFileChunkBytes]) {}

  const absl::Status& status() const { return status_; }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    if (!status_.ok()) return traits_type::eof();
    absl::StatusOr<size_t> n =
        reader_->ReadAt(offset_, buffer_.get(), kEncryptedFileChunkBytes);
    if (!n.ok()) {
      status_ = n.status();
      return traits_type::eof();
    }
    if (*n == 0) return traits_type::eof();
    offset_ += static_cast<int64_t>(*n);
    setg(buffer_.get(), buffer_.get(), buffer_.get() + *n);
    return traits_type::to_int_type(*gptr());
  }

 private:
  EncryptedFileReader* reader_;
  std::unique_ptr<char[]> buffer_;
  int64_t offset_ = 0;
  absl::Status status_;
};

using RecordFn =
    std::function<absl::Status(const std::string& collection, const Json&)>;

// Calls `fn` for each record of the export at entry.data_path, in order.
// nlohmann's callback parser builds one record at a time; returning false
// for it discards the record, so memory is bounded by the largest record.
absl::Status ForEachExportRecord(const BundleInput& input,
                                 const BundleStoreEntry& entry,
                                 const RecordFn& fn) {
  absl::StatusOr<std::unique_ptr<EncryptedFileReader>> reader =
      EncryptedFileReader::Open(entry.data_path, input.data_key,
                                ExportFileContext(input.request_id));
  if (!reader.ok()) {
    return absl::DataLossError(
        absl::StrCat("bundle: store ", entry.store,
                     ": cannot open export: ", reader.status().message()));
  }
  EncryptedFileStreamBuf plaintext(reader->get());
  std::istream in(&plaintext);
  auto unreadable = [&] {
    return absl::DataLossError(
        absl::StrCat("bundle: store ", entry.store,
                     ": export unreadable: ", plaintext.status().message()));
  };
  auto malformed = [&](const std::string& what) {
    return absl::DataLossError(absl::StrCat("bundle: store ", entry.store,
                                            ": export ", entry.data_path,
                                            " is malformed: ", what));
  };
  using Event = Json::parse_event_t;
  absl::Status status;
  std::string top_key;
  bool in_records = false;
  bool saw_records = false;
  int64_t index = 0;
  auto callback = [&](int depth, Event event, Json& parsed) -> bool {
    if (depth == 1 && event == Event::key) {
      top_key = parsed.get<std::string>();
      // Only "records" may be large; nothing else is kept.
      return top_key == "store" || top_key == "records";
    }
    if (depth == 1 && top_key == "records") {
      if (event == Event::array_start) in_records = saw_records = true;
      if (event == Event::array_end) in_records = false;
      return true;
    }
    if (depth != 2 || !in_records) return true;
    if (event == Event::value || event == Event::array_end) {
      status = malformed(absl::StrCat("records[", index, "] is not an object"));
      throw StopParsing{};
    }
    if (event != Event::object_end) return true;
    if (input.cancel != nullptr && input.cancel->load()) {
      status = absl::CancelledError("bundle: stopped");
      throw StopParsing{};
    }
    auto collection = parsed.find("collection");
    auto data = parsed.find("data");
    if (collection == parsed.end() || !collection->is_string() ||
        data == parsed.end() || !data->is_object()) {
      status = malformed(absl::StrCat(
          "records[", index,
          "] needs \"collection\" (string) and \"data\" (object)"));
      throw StopParsing{};
    }
    status = fn(collection->get<std::string>(), *data);
    if (!status.ok()) throw StopParsing{};
    ++index;
    return false;  // Discard: the record has been handled.
  };
  Json root;  // Holds "store" and an emptied "records": records are gone.
  try {
    root = Json::parse(in, callback);
  } catch (const StopParsing&) {
    return status;
  } catch (const Json::exception& e) {
    if (!plaintext.status().ok()) return unreadable();
    return malformed(e.what());
  }
  if (!plaintext.status().ok()) return unreadable();
  if (!root.is_object() || !saw_records) {
    return malformed("no \"records\" array");
  }
  return absl::OkStatus();
}

// The text of one CSV cell or response value.
std::string ValueText(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump(-1, ' ', /*ensure_ascii=*/false,
                    Json::error_handler_t::replace);
}

// RFC 4180: quote a field holding a comma, quote, CR or LF; double quotes.
void AppendCsvField(const std::string& field, std::string* line) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) {
    *line += field;
    return;
  }
  *line += '"';
  for (char c : field) {
    if (c == '"') *line += '"';
    *line += c;
  }
  *line += '"';
}

// Collection names come from the data; entry names must stay plain.
std::string SanitiseForEntryName(const std::string& name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  return out.empty() ? "_" : out;
}

std::string CategoryLabel(const std::string& category) {
  if (category == kUncategorisedCategory) {
    return "Other data (not categorised in our data inventory)";
  }
  std::string label = category;
  for (char& c : label) {
    if (c == '_') c = ' ';
  }
  if (!label.empty() && label[0] >= 'a' && label[0] <= 'z') {
    label[0] = static_cast<char>(label[0] - 'a' + 'A');
  }
  return label;
}

struct ResponseItem {
  std::string collection;
  std::string field;
  std::string value;
};

// What the response shows of one category in one store.
struct CategorySample {
  std::vector<ResponseItem> items;  // At most kMaxResponseValuesPerCategory.
  int64_t omitted = 0;
};

struct CollectionScan {
  std::string name;   // As in the export.
  std::string entry;  // data/<store>.<collection>.csv
  int64_t records = 0;
  std::vector<std::string> columns;  // At most kMaxCsvColumns.
  std::unordered_map<std::string, size_t> column_index;
  bool overflow = false;  // Some fields go to kExtraFieldsColumn.
};

// What one pass over a store's export learned.
struct StoreScan {
  int64_t records = 0;
  std::vector<CollectionScan> collections;  // First-seen order.
  std::unordered_map<std::string, size_t> collection_index;
  std::map<std::string, CategorySample> categories;
  std::vector<std::string> csv_entries;  // In ZIP order.
};

std::string CategoryOf(const BundleStoreEntry& entry,
                       const std::string& collection,
                       const std::string& field) {
  auto fields = entry.pii_categories.find(collection);
  if (fields == entry.pii_categories.end()) return kUncategorisedCategory;
  auto category = fields->second.find(field);
  if (category == fields->second.end() || category->second.empty()) {
    return kUncategorisedCategory;
  }
  return category->second;
}

absl::StatusOr<StoreScan> ScanExport(const BundleInput& input,
                                     const BundleStoreEntry& entry) {
  StoreScan scan;
  std::set<std::string> used_entries;
  auto on_record = [&](const std::string& name,
                       const Json& data) -> absl::Status {
    ++scan.records;
    auto found = scan.collection_index.find(name);
    if (found == scan.collection_index.end()) {
      if (scan.collections.size() >= kMaxCollectionsPerStore) {
        return absl::DataLossError(absl::StrCat(
            "bundle: store ", entry.store, ": export has more than ",
            kMaxCollectionsPerStore, " collections"));
      }
      CollectionScan collection;
      collection.name = name;
      std::string base =
          absl::StrCat("data/", entry.store, ".", SanitiseForEntryName(name));
      collection.entry = absl::StrCat(base, ".csv");
      for (int n = 2; !used_entries.insert(collection.entry).second; ++n) {
        collection.entry = absl::StrCat(base, "-", n, ".csv");
      }
      found =
          scan.collection_index.emplace(name, scan.collections.size()).first;
      scan.collections.push_back(std::move(collection));
    }
    CollectionScan& collection = scan.collections[found->second];
    ++collection.records;
    for (const auto& [field, value] : data.items()) {
      if (collection.column_index.count(field) == 0) {
        if (collection.columns.size() < kMaxCsvColumns) {
          collection.column_index.emplace(field, collection.columns.size());
          collection.columns.push_back(field);
        } else {
          collection.overflow = true;
        }
      }
      CategorySample& sample =
          scan.categories[CategoryOf(entry, collection.name, field)];
      if (sample.items.size() <
          static_cast<size_t>(kMaxResponseValuesPerCategory)) {
        std::string text = ValueText(value);
        if (text.size() > kMaxResponseValueBytes) {
          // Cut on a UTF-8 character boundary.
          size_t cut = kMaxResponseValueBytes;
          while (cut > 0 &&
                 (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
            --cut;
          }
          text.resize(cut);
          text += "…";
        }
        sample.items.push_back({collection.name, field, std::move(text)});
      } else {
        ++sample.omitted;
      }
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(ForEachExportRecord(input, entry, on_record));
  return scan;
}

// Where the CSVs wait for the ZIP: encrypted files in a private temporary
// directory, under a random key that lives only in memory for one bundle.
struct CsvSpool {
  CsvSpool() = default;
  ~CsvSpool() { OPENSSL_cleanse(key.data(), key.size()); }
  CsvSpool(const CsvSpool&) = delete;
  CsvSpool& operator=(const CsvSpool&) = delete;

  // Binds each file to its request and entry.
  std::string Context(const std::string& entry) const {
    return absl::StrCat("bundle-csv:", request_id, ":", entry);
  }

  std::string dir;
  std::string key;
  std::string request_id;
  std::map<std::string, std::string> sha;   // Entry -> plaintext SHA-256.
  std::map<std::string, std::string> path;  // Entry -> encrypted file.
};

// One CSV being written: its encrypted file and the hash of its plaintext.
struct CsvFile {
  std::unique_ptr<EncryptedFileWriter> file;
  Sha256 hash;
};

// Second pass for PORTABILITY: one CSV per collection in spool->dir, named
// after the entry's base name. Adds the entries to scan->csv_entries and
// their files and digests to `spool`.
absl::Status WriteCsvFiles(const BundleInput& input,
                           const BundleStoreEntry& entry, StoreScan* scan,
                           CsvSpool* spool) {
  std::vector<CsvFile> files(scan->collections.size());
  std::string line;
  auto append = [&](size_t i) -> absl::Status {
    files[i].hash.Update(line);
    absl::Status appended = files[i].file->Append(line);
    if (!appended.ok()) {
      return absl::Status(
          appended.code(),
          absl::StrCat("bundle: write ", scan->collections[i].entry, ": ",
                       appended.message()));
    }
    return absl::OkStatus();
  };
  for (size_t i = 0; i < scan->collections.size(); ++i) {
    const CollectionScan& collection = scan->collections[i];
    std::string path =
        absl::StrCat(spool->dir, "/", collection.entry.substr(5));
    ASSIGN_OR_RETURN(files[i].file,
                     EncryptedFileWriter::Create(
                         path, spool->key, spool->Context(collection.entry)));
    line.clear();
    for (size_t c = 0; c < collection.columns.size(); ++c) {
      if (c > 0) line += ',';
      AppendCsvField(collection.columns[c], &line);
    }
    if (collection.overflow) {
      if (!collection.columns.empty()) line += ',';
      line += kExtraFieldsColumn;
    }
    line += "\r\n";
    RETURN_IF_ERROR(append(i));
  }
  std::vector<std::string> cells;
  auto on_record = [&](const std::string& name,
                       const Json& data) -> absl::Status {
    size_t i = scan->collection_index.at(name);
    const CollectionScan& collection = scan->collections[i];
    cells.assign(collection.columns.size(), std::string());
    Json extra = Json::object();
    for (const auto& [field, value] : data.items()) {
      auto column = collection.column_index.find(field);
      if (column == collection.column_index.end()) {
        extra[field] = value;
      } else {
        cells[column->second] = ValueText(value);
      }
    }
    line.clear();
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) line += ',';
      AppendCsvField(cells[c], &line);
    }
    if (collection.overflow) {
      if (!cells.empty()) line += ',';
      if (!extra.empty()) AppendCsvField(ValueText(extra), &line);
    }
    line += "\r\n";
    return append(i);
  };
  RETURN_IF_ERROR(ForEachExportRecord(input, entry, on_record));
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& csv = scan->collections[i].entry;
    // A temporary: after a crash its key is gone, so no fsync.
    RETURN_IF_ERROR(files[i].file->CommitUnsynced());
    spool->sha[csv] = files[i].hash.FinishHex();
    spool->path[csv] = absl::StrCat(spool->dir, "/", csv.substr(5));
    scan->csv_entries.push_back(csv);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The Art. 15 answer.

std::string JoinOr(const std::vector<std::string>& parts,
                   const std::string& none) {
  return parts.empty() ? none : absl::StrJoin(parts, ", ");
}

std::vector<std::string> InventoryCategories(const BundleStoreEntry& entry) {
  std::set<std::string> categories;
  for (const auto& [collection, fields] : entry.pii_categories) {
    for (const auto& [field, category] : fields) {
      if (!category.empty()) categories.insert(category);
    }
  }
  std::vector<std::string> labels;
  labels.reserve(categories.size());
  for (const std::string& category : categories) {
    labels.push_back(CategoryLabel(category));
  }
  return labels;
}

std::string UnavailableLegalBasis(const std::string& regulation) {
  if (regulation == "CCPA") {
    return "Not withheld: technical failure. The data will be provided once "
           "the store is reachable, within the time limit of Cal. Civ. Code "
           "1798.130(a)(2).";
  }
  return "Not withheld: technical failure. The data will be provided once "
         "the store is reachable, within the time limit of GDPR Art. 12(3).";
}

Json BuildExemptions(const BundleInput& input) {
  Json exemptions = Json::array();
  for (const BundleStoreEntry& entry : input.stores) {
    if (entry.status != kFailed) continue;
    Json item;
    item["store"] = entry.store;
    item["kind"] = "unavailable";
    item["reason"] =
        entry.error.empty() ? "the store could not be searched" : entry.error;
    item["legal_basis"] = UnavailableLegalBasis(input.regulation);
    exemptions.push_back(std::move(item));
  }
  for (const BundleExemption& withheld : input.withheld) {
    Json item;
    item["store"] = withheld.store;
    item["kind"] = "withheld";
    item["reason"] = withheld.reason;
    item["legal_basis"] = withheld.legal_basis;
    exemptions.push_back(std::move(item));
  }
  return exemptions;
}

// exemptions.json's entries of kind "retained", which the response lists in
// a section of their own: they are provided, but kept after an erasure.
Json BuildRetained(const BundleInput& input) {
  Json retained = Json::array();
  for (const BundleExemption& kept : input.retained) {
    Json item;
    item["store"] = kept.store;
    item["kind"] = "retained";
    item["reason"] = kept.reason;
    item["legal_basis"] = kept.legal_basis;
    retained.push_back(std::move(item));
  }
  return retained;
}

// The values the templates see; templates/art15/response.md.mustache lists
// them. Empty strings are false in sections, as in mustache.js.
Json BuildViewModel(const BundleInput& input,
                    const std::map<std::string, StoreScan>& scans,
                    const Json& exemptions) {
  int64_t records = 0;
  bool incomplete = false;
  for (const BundleStoreEntry& entry : input.stores) {
    if (entry.status == kFailed) incomplete = true;
    auto scan = scans.find(entry.store);
    if (scan != scans.end()) records += scan->second.records;
  }

  // Category -> the stores holding it, in input order; "other" last.
  std::vector<std::string> category_order;
  std::set<std::string> seen;
  for (const auto& [store, scan] : scans) {
    for (const auto& [category, sample] : scan.categories) {
      if (category != kUncategorisedCategory && seen.insert(category).second) {
        category_order.push_back(category);
      }
    }
  }
  std::sort(category_order.begin(), category_order.end());
  for (const auto& [store, scan] : scans) {
    if (scan.categories.count(kUncategorisedCategory) > 0) {
      category_order.push_back(kUncategorisedCategory);
      break;
    }
  }
  Json personal_data = Json::array();
  for (const std::string& category : category_order) {
    Json holdings = Json::array();
    for (const BundleStoreEntry& entry : input.stores) {
      auto scan = scans.find(entry.store);
      if (scan == scans.end()) continue;
      auto sample = scan->second.categories.find(category);
      if (sample == scan->second.categories.end()) continue;
      Json items = Json::array();
      for (const ResponseItem& item : sample->second.items) {
        items.push_back({{"collection", item.collection},
                         {"field", item.field},
                         {"value", item.value}});
      }
      holdings.push_back(
          {{"store", entry.store},
           {"source", entry.source},
           {"retention", entry.retention},
           {"data_file", DataEntryName(entry.store)},
           {"items", std::move(items)},
           {"omitted", sample->second.omitted > 0
                           ? std::to_string(sample->second.omitted)
                           : std::string()}});
    }
    personal_data.push_back({{"category", category},
                             {"label", CategoryLabel(category)},
                             {"holdings", std::move(holdings)}});
  }

  Json stores = Json::array();
  Json files = Json::array();
  for (const BundleStoreEntry& entry : input.stores) {
    bool succeeded = entry.status == kSucceeded;
    auto scan = scans.find(entry.store);
    int64_t store_records = scan == scans.end() ? 0 : scan->second.records;
    Json store = {
        {"store", entry.store},
        {"purpose", entry.purpose},
        {"legal_basis", entry.legal_basis},
        {"categories", JoinOr(InventoryCategories(entry), "")},
        {"recipients", JoinOr(entry.recipients, "")},
        {"retention", entry.retention},
        {"source", entry.source},
        {"succeeded", succeeded},
        {"failed", !succeeded},
        {"error", entry.error},
        {"record_count", std::to_string(store_records)},
        {"searched_with", JoinOr(entry.identity_kinds, "")},
        {"data_file", succeeded ? DataEntryName(entry.store) : std::string()}};
    stores.push_back(std::move(store));
    if (succeeded) {
      files.push_back(DataEntryName(entry.store));
      for (const std::string& csv : scan->second.csv_entries) {
        files.push_back(csv);
      }
    }
  }

  Json view;
  view["request_id"] = input.request_id;
  view["request_type"] = input.request_type;
  view["portability"] = input.request_type == kPortability;
  view["regulation"] = input.regulation;
  view["gdpr"] = input.regulation == "GDPR";
  view["ccpa"] = input.regulation == "CCPA";
  view["controller"] = input.controller;
  view["received_at"] = input.received_at;
  view["deadline"] = input.deadline;
  view["created_at"] = input.created_at;
  view["data_found"] = records > 0;
  view["no_data_found"] = records == 0 && !incomplete;
  view["incomplete"] = incomplete;
  view["record_count"] = std::to_string(records);
  view["personal_data"] = std::move(personal_data);
  view["stores"] = std::move(stores);
  view["files"] = std::move(files);
  view["exemptions"] = exemptions;
  view["max_values_per_category"] =
      std::to_string(kMaxResponseValuesPerCategory);
  return view;
}

kainjow::mustache::data ToMustache(const Json& value) {
  using kainjow::mustache::data;
  switch (value.type()) {
    case Json::value_t::object: {
      data object{data::type::object};
      for (const auto& [key, item] : value.items()) {
        object.set(key, ToMustache(item));
      }
      return object;
    }
    case Json::value_t::array: {
      data list{data::type::list};
      for (const Json& item : value) list.push_back(ToMustache(item));
      return list;
    }
    case Json::value_t::string: {
      const std::string& text = value.get_ref<const std::string&>();
      if (text.empty()) return data{false};
      return data{text};
    }
    case Json::value_t::boolean:
      return data{value.get<bool>()};
    case Json::value_t::null:
    case Json::value_t::discarded:
      return data{false};
    default:
      return data{value.dump()};
  }
}

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

// CommonMark: a backslash makes any ASCII punctuation literal. Escaping the
// characters that start markup or end a table cell keeps a value such as
// "<script>" or "a|b" plain text; newlines would end a list item or row.
// An underscore inside a word ("order_id") cannot emphasise, so it is left
// alone for readability in a terminal.
std::string MarkdownEscape(const std::string& text) {
  static constexpr char kSpecial[] = "\\`*[]<>|#~&";
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r' || c == '\n') {
      out += ' ';
      continue;
    }
    bool special = c != '\0' && std::strchr(kSpecial, c) != nullptr;
    if (c == '_') {
      bool intraword = i > 0 && i + 1 < text.size() &&
                       IsAsciiAlnum(text[i - 1]) && IsAsciiAlnum(text[i + 1]);
      special = !intraword;
    }
    if (special) out += '\\';
    out += c;
  }
  return out;
}

struct Art15Templates {
  std::string md;
  std::string html;
};

absl::StatusOr<std::string> ReadTemplate(const std::string& dir,
                                         const std::string& name) {
  std::string path = absl::StrCat(dir, "/", name);
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "bundle: Art. 15 template ", path, " is missing or unreadable (",
        text.status().message(), "); templates_dir must hold ", kMdTemplate,
        " and ", kHtmlTemplate));
  }
  kainjow::mustache::mustache parsed{*text};
  if (!parsed.is_valid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("bundle: Art. 15 template ", path,
                     " is not valid Mustache: ", parsed.error_message()));
  }
  return text;
}

absl::StatusOr<Art15Templates> LoadTemplates(const std::string& dir) {
  Art15Templates templates;
  ASSIGN_OR_RETURN(templates.md, ReadTemplate(dir, kMdTemplate));
  ASSIGN_OR_RETURN(templates.html, ReadTemplate(dir, kHtmlTemplate));
  return templates;
}

absl::StatusOr<std::string> Render(
    const std::string& text, const std::string& name,
    const kainjow::mustache::data& view,
    const std::function<std::string(const std::string&)>& escape) {
  kainjow::mustache::mustache tmpl{text};
  if (escape) tmpl.set_custom_escape(escape);
  std::string out = tmpl.render(view);
  if (!tmpl.is_valid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("bundle: rendering ", name, ": ", tmpl.error_message()));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Manifest and ZIP.

struct Art15Files {
  std::string response_md;
  std::string response_html;
  std::string exemptions;
  std::map<std::string, StoreScan> scans;  // SUCCEEDED stores.
  CsvSpool csv;                            // PORTABILITY.
};

// The CSV entries written for `store`, in ZIP order; empty without them.
const std::vector<std::string>& CsvEntries(const Art15Files* art15,
                                           const std::string& store) {
  static const std::vector<std::string>* const kNone =
      new std::vector<std::string>();
  if (art15 == nullptr) return *kNone;
  auto scan = art15->scans.find(store);
  return scan == art15->scans.end() ? *kNone : scan->second.csv_entries;
}

std::string BuildManifest(const BundleInput& input, const Art15Files* art15) {
  // ordered_json keeps keys in the documented order for human readers.
  nlohmann::ordered_json stores = nlohmann::ordered_json::array();
  nlohmann::ordered_json files = nlohmann::ordered_json::object();
  if (art15 != nullptr) {
    files[kResponseMdEntry] = Sha256Hex(art15->response_md);
    files[kResponseHtmlEntry] = Sha256Hex(art15->response_html);
    files[kExemptionsEntry] = Sha256Hex(art15->exemptions);
  }
  for (const BundleStoreEntry& entry : input.stores) {
    nlohmann::ordered_json store;
    store["store"] = entry.store;
    store["kind"] = entry.kind;
    store["status"] = entry.status;
    store["record_count"] = entry.record_count;
    store["searched_with"] = entry.identity_kinds;
    if (entry.status == kSucceeded) {
      std::string name = DataEntryName(entry.store);
      store["file"] = name;
      store["sha256"] = entry.data_sha256;
      files[name] = entry.data_sha256;
      const std::vector<std::string>& csvs = CsvEntries(art15, entry.store);
      if (!csvs.empty()) {
        store["csv_files"] = csvs;
        for (const std::string& csv : csvs) files[csv] = art15->csv.sha.at(csv);
      }
    } else {
      store["error"] = entry.error;
    }
    stores.push_back(std::move(store));
  }
  nlohmann::ordered_json manifest;
  manifest["request_id"] = input.request_id;
  manifest["request_type"] = input.request_type;
  manifest["created_at"] = input.created_at;
  if (art15 != nullptr) {
    manifest["regulation"] = input.regulation;
    manifest["controller"] = input.controller;
    manifest["received_at"] = input.received_at;
    manifest["deadline"] = input.deadline;
  }
  manifest["stores"] = std::move(stores);
  manifest["files"] = std::move(files);
  return manifest.dump(2) + "\n";
}

absl::Status ZipError(const std::string& what, zip_t* archive) {
  return absl::InternalError(
      absl::StrCat("bundle: ", what, ": ", zip_strerror(archive)));
}

// A private directory for the CSVs, removed with its contents on return.
// Owner-only (0700) and never left behind, although the files in it are
// encrypted.
class TempDirectory {
 public:
  TempDirectory() = default;
  ~TempDirectory() {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;

  absl::Status Create(const std::string& path) {
    if (::mkdir(path.c_str(), 0700) != 0) {
      return absl::InternalError(
          absl::StrCat("bundle: mkdir ", path, ": ", std::strerror(errno)));
    }
    path_ = path;
    return absl::OkStatus();
  }
  const std::string& path() const { return path_; }

 private:
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
                               ZIP_CM_DEFLATE, kDeflateLevel) != 0) {
    return ZipError(absl::StrCat("compression for ", name), archive);
  }
  return absl::OkStatus();
}

std::string TempPathFor(const std::string& zip_path) {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(zip_path, ".tmp.", ::getpid(), ".", counter++);
}

// Scans every export, writes the CSVs into out->csv (PORTABILITY) and
// renders the response and exemptions.
absl::Status BuildArt15Files(const BundleInput& input,
                             const Art15Templates& templates, Art15Files* out) {
  for (const BundleStoreEntry& entry : input.stores) {
    if (entry.status != kSucceeded) continue;
    ASSIGN_OR_RETURN(StoreScan scan, ScanExport(input, entry));
    if (WritesCsv(input)) {
      RETURN_IF_ERROR(WriteCsvFiles(input, entry, &scan, &out->csv));
    }
    out->scans.emplace(entry.store, std::move(scan));
  }
  Json exemptions = BuildExemptions(input);
  Json retained = BuildRetained(input);
  Json exemptions_file;
  exemptions_file["request_id"] = input.request_id;
  exemptions_file["exemptions"] = exemptions;
  for (const Json& kept : retained) {
    exemptions_file["exemptions"].push_back(kept);
  }
  out->exemptions = exemptions_file.dump(2) + "\n";

  Json model = BuildViewModel(input, out->scans, exemptions);
  model["retained"] = retained;
  model["has_retained"] = !retained.empty();
  kainjow::mustache::data view = ToMustache(model);
  ASSIGN_OR_RETURN(out->response_md,
                   Render(templates.md, kMdTemplate, view, MarkdownEscape));
  // The default escape is HTML's (& < > " ').
  ASSIGN_OR_RETURN(out->response_html,
                   Render(templates.html, kHtmlTemplate, view, nullptr));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BundleResult> WriteExportBundle(const BundleInput& input,
                                               const std::string& zip_path) {
  RETURN_IF_ERROR(ValidateInput(input));
  // Verify everything before creating any file: a bad export must not leave
  // a half-built bundle behind.
  for (const BundleStoreEntry& entry : input.stores) {
    if (entry.status == kSucceeded) {
      RETURN_IF_ERROR(VerifyDataFile(input, entry));
    }
  }

  // Referenced by zip_source_buffer until the ZIP is committed.
  Art15Files art15;
  TempDirectory csv_dir;
  if (WritesArt15(input)) {
    ASSIGN_OR_RETURN(Art15Templates templates,
                     LoadTemplates(input.templates_dir));
    if (WritesCsv(input)) {
      RETURN_IF_ERROR(csv_dir.Create(TempPathFor(zip_path) + ".csv"));
      art15.csv.dir = csv_dir.path();
      art15.csv.request_id = input.request_id;
      art15.csv.key.resize(kEncryptedFileKeyBytes);
      if (RAND_bytes(reinterpret_cast<unsigned char*>(art15.csv.key.data()),
                     static_cast<int>(art15.csv.key.size())) != 1) {
        return absl::InternalError("bundle: no randomness for the CSV key");
      }
    }
    RETURN_IF_ERROR(BuildArt15Files(input, templates, &art15));
  }
  const std::string manifest =
      BuildManifest(input, WritesArt15(input) ? &art15 : nullptr);

  ASSIGN_OR_RETURN(
      std::unique_ptr<EncryptedZipWriter> zip,
      EncryptedZipWriter::Create(zip_path, input.data_key,
                                 BundleFileContext(input.request_id)));
  zip_t* archive = zip->archive();
  zip->set_cancel(input.cancel);

  BundleResult result;
  auto add_buffer = [&](const std::string& name,
                        const std::string& contents) -> absl::Status {
    RETURN_IF_ERROR(AddEntry(
        archive, name,
        zip_source_buffer(archive, contents.data(), contents.size(), 0)));
    result.files.push_back(name);
    return absl::OkStatus();
  };
  // Decrypted lazily during the commit, chunk by chunk: memory stays flat.
  auto add_file = [&](const std::string& name, const std::string& path,
                      const std::string& key,
                      const std::string& context) -> absl::Status {
    absl::StatusOr<zip_source_t*> source =
        zip->NewFileSource(path, key, context);
    if (!source.ok()) {
      return absl::Status(
          source.status().code(),
          absl::StrCat("bundle: ", name, ": ", source.status().message()));
    }
    RETURN_IF_ERROR(AddEntry(archive, name, *source));
    result.files.push_back(name);
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(add_buffer(kManifestEntry, manifest));
  if (WritesArt15(input)) {
    RETURN_IF_ERROR(add_buffer(kResponseMdEntry, art15.response_md));
    RETURN_IF_ERROR(add_buffer(kResponseHtmlEntry, art15.response_html));
    RETURN_IF_ERROR(add_buffer(kExemptionsEntry, art15.exemptions));
  }
  for (const BundleStoreEntry& entry : input.stores) {
    if (entry.status != kSucceeded) continue;
    RETURN_IF_ERROR(add_file(DataEntryName(entry.store), entry.data_path,
                             input.data_key,
                             ExportFileContext(input.request_id)));
    for (const std::string& csv : CsvEntries(&art15, entry.store)) {
      RETURN_IF_ERROR(add_file(csv, art15.csv.path.at(csv), art15.csv.key,
                               art15.csv.Context(csv)));
    }
  }

  absl::StatusOr<ZipDigest> digest = zip->Commit();
  if (!digest.ok()) {
    return absl::Status(digest.status().code(),
                        absl::StrCat("bundle: ", digest.status().message()));
  }
  result.sha256 = std::move(digest->sha256);
  result.size_bytes = digest->size_bytes;
  return result;
}

}  // namespace dsar
