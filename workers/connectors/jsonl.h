#ifndef DSAR_WORKERS_CONNECTORS_JSONL_H_
#define DSAR_WORKERS_CONNECTORS_JSONL_H_

// Connector for a log file of JSON lines: one JSON object per line, one
// collection (the store's single CollectionSpec).
//
// A line matches when a top-level identity field equals a given identity of
// the same key, both in canonical form (model/identity.h: a stored
// "+44 7700 454764" equals "+447700454764", "Jane@X.org" equals
// "jane@x.org"). Field values compare as text: a JSON number 42 equals the
// identity "42", as does the string "42". A log has no index: every lookup
// reads it from start to end.
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
//
// Rectify and SetProcessingFlag rewrite the log the same way, under the same
// lock, and only when a line changes. In a changed line only the value of the
// corrected or flagged top-level field is replaced; every other byte of it,
// and every other line, stays as it was.
//
// Rectify sets a PII field only on matching records that have it (it does
// not add fields). The corrected value is a JSON string, unless the record
// holds a number there and the text is a number written the way JSON writes
// it back ("42", "1.5"; not "042" or "1.50"), which is stored as a number.
// A record whose value is already equal (42 and "42" as above) is not
// counted. With no schema to consult, a non-PII field is known to be in the
// log when the inventory names it (an identity or flag field), which is
// INVALID_ARGUMENT up front, or when a matching record has it, which is
// INVALID_ARGUMENT before the log is replaced; otherwise it is skipped.
//
// SetProcessingFlag sets the flag field to JSON true on matching records,
// replacing another value or appending `,"<field>":true` after the last
// member when the field is missing.

#include <memory>
#include <string>
#include <vector>

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
  absl::StatusOr<int64_t> Rectify(
      const std::vector<Identity>& identities,
      const std::vector<FieldCorrection>& corrections) override;
  absl::StatusOr<int64_t> SetProcessingFlag(
      const std::vector<Identity>& identities,
      const std::string& flag) override;

 private:
  const StoreSpec store_;
};

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_JSONL_H_
