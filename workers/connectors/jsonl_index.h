#ifndef DSAR_WORKERS_CONNECTORS_JSONL_INDEX_H_
#define DSAR_WORKERS_CONNECTORS_JSONL_INDEX_H_

// Where a subject's lines are in a JSON-lines log, without reading the whole
// log for every request (docs/connectors/jsonl.md, "The line index").
//
// JsonlLineIndex maps each identity a line holds, (identity key, canonical
// value), to the offsets of the lines holding it. The index lives in the
// memory of the process that uses the log (each dsar-worker keeps its own):
// it is built by reading the log once, on the first lookup, and brought up to
// date before every later one, under the caller's lock on the log:
//  - lines appended since, the only change the log's writers make
//    (jsonl.h), are read from where the index ends;
//  - a rewrite that moves lines (JsonlConnector's Rectify and
//    SetProcessingFlag, or the recovery of one) first bumps the log's
//    generation, kept in "<log>.dsar-generation"; an index of another
//    generation is rebuilt, as is one whose log has another inode (rotated),
//    is shorter than the index, or no longer ends the indexed part with the
//    bytes the index saw there (truncated and written again).
// An erasure that overwrites lines in place (JsonlConnector::Erase) moves
// nothing and needs no new generation.
//
// A lookup returns candidates, a superset of the lines that match: the
// index keys on a 64-bit hash, and a line erased in place keeps its entries.
// The caller reads every candidate and matches it as a full read would, so
// collisions and erased lines cost one read each and never a wrong answer.
// A line that ends the log without '\n' is not indexed (a writer may not be
// done with it) and is always a candidate.
//
// Memory: about 16 bytes per (identity, line) plus a hash-table slot per
// distinct identity, e.g. ~200 MB for 10 million lines of one identity field.
// Building reads the log at disk speed and extracts each line's identities
// with `identities_of`.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace dsar {

// Suffix of the file beside a log that holds its rewrite generation.
inline constexpr char kLogGenerationSuffix[] = ".dsar-generation";

// The log's rewrite generation: the number in "<log>.dsar-generation", 0
// when the file does not exist.
absl::StatusOr<uint64_t> ReadLogGeneration(const std::string& log_path);

// Adds one to the log's rewrite generation. REQUIRES: LOCK_EX on the log is
// held, and no byte of the log has moved yet. Not synced: the number only
// has to outlive the processes holding an index, which a machine crash ends.
absl::Status BumpLogGeneration(const std::string& log_path);

// Hands each (identity key, canonical value) a line holds to `visit`.
// Identities the normaliser refuses are left out. Must be a pure function of
// the line.
using LineIdentities = std::function<void(
    std::string_view line,
    absl::FunctionRef<void(std::string_view key, std::string_view value)>
        visit)>;

class JsonlLineIndex {
 public:
  // The index of the log at `path`, built from what `identities_of` finds in
  // each line. `store` names the store in errors.
  JsonlLineIndex(std::string path, std::string store,
                 LineIdentities identities_of);

  JsonlLineIndex(const JsonlLineIndex&) = delete;
  JsonlLineIndex& operator=(const JsonlLineIndex&) = delete;

  // The offsets, ascending and distinct, of the lines of the log open at
  // `fd` that may hold one of `identities` ((key, canonical value) pairs),
  // after bringing the index up to date. REQUIRES: the caller holds flock
  // (LOCK_SH or LOCK_EX) on the log through `fd` until it has read the
  // candidates, so that no rewrite or append changes them meanwhile.
  // CANCELLED once `cancel` (may be null) is set while reading the log;
  // UNAVAILABLE when the log cannot be read. Thread-safe.
  absl::StatusOr<std::vector<uint64_t>> Lookup(
      int fd, absl::Span<const std::pair<std::string, std::string>> identities,
      const std::atomic<bool>* cancel);

  // Forgets everything, so that the next Lookup reads the log from its
  // start: for a caller that found a candidate not at the start of a line,
  // which only a writer breaking the log's contract causes. Thread-safe.
  void Reset();

  // Bytes of the log the index covers; for tests. Thread-safe.
  uint64_t indexed_bytes();

 private:
  // Brings the index up to the log's state; returns the log's size, which
  // may end with an unfinished line. REQUIRES: mu_ held.
  absl::StatusOr<uint64_t> CatchUp(int fd, const std::atomic<bool>* cancel)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Clear() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const std::string store_;
  const LineIdentities identities_of_;

  absl::Mutex mu_;
  // What the index reflects: the log's file, its generation, and its bytes
  // [0, end_), which end with '\n' (or are empty).
  dev_t device_ ABSL_GUARDED_BY(mu_) = 0;
  ino_t inode_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t end_ ABSL_GUARDED_BY(mu_) = 0;
  bool built_ ABSL_GUARDED_BY(mu_) = false;
  // The last bytes (up to 256) before end_, compared with the log's before
  // each update: other bytes there mean the log was truncated and written
  // again (copytruncate rotation), which the size alone may not show.
  std::string tail_ ABSL_GUARDED_BY(mu_);
  // Hash of (key, value) -> offsets of the lines holding it, ascending.
  absl::flat_hash_map<uint64_t, std::vector<uint64_t>> lines_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_JSONL_INDEX_H_
