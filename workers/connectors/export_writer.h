#ifndef DSAR_WORKERS_CONNECTORS_EXPORT_WRITER_H_
#define DSAR_WORKERS_CONNECTORS_EXPORT_WRITER_H_

// Writes the export document of connector.h record by record:
//   {"store":"<name>","records":[{"collection":"<c>","data":{...}},...]}
// Output is passed to the sink in chunks of bounded size, so memory does not
// grow with the number of records.

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/connector.h"

namespace dsar {

class ExportWriter {
 public:
  // Writes the document's opening to `sink` (buffered).
  ExportWriter(ByteSink& sink, std::string_view store);

  // Appends one record. Strings that are not valid UTF-8 are written with
  // U+FFFD in place of the bad bytes, so the document stays valid JSON.
  absl::Status AddRecord(std::string_view collection,
                         const nlohmann::ordered_json& data);

  // Closes the document and flushes. Call once, after the last record.
  absl::Status Finish();

  int64_t record_count() const { return record_count_; }

 private:
  absl::Status FlushIfFull();

  static constexpr size_t kFlushBytes = 64 * 1024;
  ByteSink& sink_;
  std::string buffer_;
  int64_t record_count_ = 0;
};

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_EXPORT_WRITER_H_
