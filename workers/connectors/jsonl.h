#ifndef DSAR_WORKERS_CONNECTORS_JSONL_H_
#define DSAR_WORKERS_CONNECTORS_JSONL_H_

// Connector for a log file of JSON lines: one JSON object per line, one
// collection (the store's single CollectionSpec).
//
// A line matches when a top-level identity field equals a given identity of
// the same key. Field values compare as text: a JSON number 42 equals the
// identity "42", as does the string "42"; emails compare ignoring ASCII case.
// Lines that are not JSON objects never match and are left as they are.
//
// Export and Discover stream the file. Erase copies every line that does not
// match, byte for byte, into a temp file in the same directory, fsyncs it,
// renames it over the log and fsyncs the directory; when nothing matches the
// file is not touched. Erasures of logs in one directory are serialized with
// flock(2) on the directory, across threads and processes. A program that
// appends to the log while it is rewritten loses those lines (and one that
// keeps its descriptor open goes on writing to the replaced file): run
// erasure on rotated logs, or have the writer reopen the file.

#include <memory>

#include "workers/connectors/connector.h"

namespace dsar {

class JsonlConnector : public Connector {
 public:
  // `store.kind` must be "jsonl" with exactly one collection.
  explicit JsonlConnector(StoreSpec store) : store_(std::move(store)) {}

  absl::StatusOr<ConnectorResult> Export(
      const std::vector<Identity>& identities, ByteSink& sink) override;
  absl::StatusOr<ConnectorResult> Discover(
      const std::vector<Identity>& identities) override;
  absl::StatusOr<int64_t> Erase(
      const std::vector<Identity>& identities) override;

 private:
  const StoreSpec store_;
};

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_JSONL_H_
