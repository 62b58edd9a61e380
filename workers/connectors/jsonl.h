#ifndef DSAR_WORKERS_CONNECTORS_JSONL_H_
#define DSAR_WORKERS_CONNECTORS_JSONL_H_

// Connector for a log file of JSON lines: one JSON object per line, one
// collection (the store's single CollectionSpec).
//
// A line matches when a top-level identity field equals a given identity of
// the same key, both in canonical form (model/identity.h: a stored
// "+44 7700 454764" equals "+447700454764", "Jane@X.org" equals
// "jane@x.org"). Field values compare as text: a JSON number 42 equals the
// identity "42", as does the string "42". Lines that are not JSON objects
// never match and are left as they are.
//
// Lookups go through a line index the connector keeps in memory
// (jsonl_index.h): the first one reads the whole log, later ones only what
// was appended since, then the subject's lines. Each candidate line is read
// and matched in full, so the answers are those of reading the whole log.
//
// The log's contract with the programs that write it (docs/inventory.md):
// a writer appends each line whole, with one write(2) on a descriptor opened
// O_APPEND, while holding flock(2) LOCK_EX on the log itself; it may keep
// the descriptor open. The connector takes the same lock: LOCK_SH to read
// (Export, Discover), LOCK_EX to change it (Erase, Rectify,
// SetProcessingFlag), so appenders wait while the log is read or changed
// and never lose a line, and the log keeps its inode.
//
// Erasure: under LOCK_EX, each matching line is overwritten in place by an
// empty JSON object of the same length ("{", spaces, "}"), so no line moves,
// the log stays valid JSON lines, and the cost is the subject's lines, not
// the log's size. The overwritten ranges are first listed in a journal,
// "<log>.dsar-erase.tmp" renamed to "<log>.dsar-erase" once fsynced (the
// directory too): "DSARER1\n", a little-endian uint64 count, then count
// pairs of uint64 (offset, length). Then the ranges are overwritten, the log
// fsynced, the journal deleted and the directory fsynced. The space is
// reclaimed when the log is rotated (its retention), not by dsar.
//
// Rewrites (Rectify, SetProcessingFlag, whose lines change length): under
// LOCK_EX, the new content is written to a journal,
// "<log>.dsar-rewrite.tmp", renamed to "<log>.dsar-rewrite" once fsynced (the
// directory too); then copied over the log from offset 0, the log resized
// and fsynced, and the journal deleted. When no line changes the log is not
// touched. Journal layout: "DSARRW1\n", then three little-endian uint64:
// phase, old_size (the log's size before), new_size; then new_size bytes.
// The log changes size once, between phase 1 and phase 2 (a growing log
// before the copy, a shrinking one after it, whose cut-off bytes are first
// overwritten with NULs, which no JSON text holds).
//
// A rewrite moves lines, so before the log changes it bumps the log's
// generation ("<log>.dsar-generation", jsonl_index.h), which makes every
// process's line index rebuild.
//
// Crash recovery: a crash releases the lock, so appenders may add lines
// before the next operation. Every operation first finishes an interrupted
// erasure, then an interrupted rewrite, under LOCK_EX: a ".tmp" journal of
// either kind is deleted (the log was not touched); a complete erase
// journal is applied again (its lines have not moved); a complete rewrite
// journal is applied again, keeping the lines appended
// after the crash, which start at old_size in phase 0, new_size in phase 2,
// and in phase 1 at the larger size when the byte at the smaller one is NUL
// (not yet resized), else at the smaller.
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

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "workers/connectors/connector.h"
#include "workers/connectors/record_scan.h"

namespace dsar {

class JsonlLineIndex;

class JsonlConnector : public Connector {
 public:
  // `store.kind` must be "jsonl" with exactly one collection.
  // `cancel` (may be null) cancels running operations once set (see
  // Connector, "Cancellation"); it must outlive the connector.
  explicit JsonlConnector(StoreSpec store,
                          const std::atomic<bool>* cancel = nullptr);
  ~JsonlConnector() override;

  JsonlConnector(const JsonlConnector&) = delete;
  JsonlConnector& operator=(const JsonlConnector&) = delete;

  absl::StatusOr<ConnectorResult> Export(
      const std::vector<Identity>& identities, ByteSink& sink) override;
  absl::StatusOr<ConnectorResult> Discover(
      const std::vector<Identity>& identities) override;
  absl::StatusOr<EraseResult> Erase(
      const std::vector<Identity>& identities) override;
  absl::StatusOr<int64_t> Rectify(
      const std::vector<Identity>& identities,
      const std::vector<FieldCorrection>& corrections) override;
  absl::StatusOr<int64_t> SetProcessingFlag(
      const std::vector<Identity>& identities,
      const std::string& flag) override;

  // For the audit scans (record_scan.h): hands every line that is a JSON
  // object to `visit`, reading line by line up to the log's length when
  // the scan starts (lines appended later are not part of this view). Under
  // LOCK_SH, like Export: no rewrite changes the log meanwhile, and
  // appenders wait until the scan ends. Top-level members become fields
  // (strings as their content, other values as JSON text). Other lines are
  // skipped. Read-only; CANCELLED once the cancel flag is set.
  absl::Status ScanRecords(const RecordVisitor& visit);

 private:
  const StoreSpec store_;
  const std::atomic<bool>* const cancel_;
  // Where each subject's lines are; shared by the connector's calls.
  std::unique_ptr<JsonlLineIndex> index_;
};

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_JSONL_H_
