#ifndef DSAR_WORKERS_CONNECTORS_CONNECTOR_H_
#define DSAR_WORKERS_CONNECTORS_CONNECTOR_H_

// A connector finds, exports and erases one subject's records in one store.
// Every operation is idempotent: a task can run twice (a lease expired, a
// worker died after the work but before reporting it), so running an
// operation again must leave the store as running it once did.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "inventory/inventory.h"

namespace dsar {

// One known identity of the subject. `key` uses the inventory's identity
// keys: "email", "user_id", "phone" or a custom type.
struct Identity {
  std::string key;
  std::string value;
  bool operator==(const Identity& other) const {
    return key == other.key && value == other.value;
  }
};

// Receives an export as it is produced, so memory does not grow with it.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual absl::Status Write(std::string_view bytes) = 0;
};

// A ByteSink that keeps what is written in memory, for an export read whole
// (a residue check, an OpenDSR service's results before the upload, tests).
class StringSink : public ByteSink {
 public:
  absl::Status Write(std::string_view bytes) override {
    text_.append(bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// A correction the subject asked for (GDPR Art. 16).
struct FieldCorrection {
  std::string collection;  // Empty: every collection that has `field`.
  std::string field;       // Must be one of the collection's pii_fields.
  std::string value;       // The corrected value, as text.
};

struct ConnectorResult {
  int64_t record_count = 0;
  // Identities read from matched records (e.g. the user_id of the row whose
  // email matched), without duplicates and without the ones passed in.
  std::vector<Identity> discovered;
};

// What an erasure did in one collection of the store.
struct CollectionErasure {
  std::string collection;
  int64_t rows_deleted = 0;
  // Rows kept (CollectionSpec::mask_on_erase) with at least one field
  // masked, and how many field values masking changed in them.
  int64_t rows_masked = 0;
  int64_t fields_masked = 0;
};

struct EraseResult {
  // One entry per collection of the store, in inventory order.
  std::vector<CollectionErasure> collections;
  // Rows deleted plus rows masked, over every collection.
  int64_t record_count() const {
    int64_t total = 0;
    for (const CollectionErasure& c : collections) {
      total += c.rows_deleted + c.rows_masked;
    }
    return total;
  }
};

// Errors: every operation returns the status code whose error name
// (model/connector_errors.h, docs/errors.md) says whether a retry can help:
// UNAVAILABLE / RESOURCE_EXHAUSTED when the store cannot be reached now
// (Connector.Unavailable, transient); INVALID_ARGUMENT for a value the store
// or the field's declared type refuses (Connector.InvalidValue);
// PERMISSION_DENIED when the store is read-only to the worker
// (Connector.PermissionDenied); NOT_FOUND for a table or field the inventory
// names but the store lacks (Connector.SchemaMismatch); FAILED_PRECONDITION
// named Connector.ConstraintViolation when the store's constraints refuse a
// change, or Identity.Conflict (below). Messages never hold identity values.
//
// Identity conflicts: before any operation reads or changes a record, the
// connector checks every collection for identities that point at different
// records (the records matched through one identity key and those matched
// through another are both non-empty and disjoint, e.g. one person's email
// and another's user id). Then every operation fails with
// FAILED_PRECONDITION carrying the error name Identity.Conflict
// (model/connector_errors.h), naming the store, the collection and the
// identity keys but no value and no record, and nothing is exported or
// changed.
//
// Cancellation: a connector created with a cancel flag (CreateConnector)
// checks it while it works: before it starts, between the lines of a log,
// every thousand SQLite VM steps, every 50 ms while a PostgreSQL statement
// runs (then sending PQcancel) and while it waits for a lock. Once the
// flag is set, the operation in progress ends at the next check with
// CANCELLED (error name Connector.Failed), leaving the store as it found it:
// a SQLite or PostgreSQL transaction is rolled back, a log rewrite is
// dropped before its journal is committed. A rewrite whose journal is committed
// is finished first (it is a copy of the log, see jsonl.h). Bytes already
// handed to an Export's sink are not a complete export.
class Connector {
 public:
  virtual ~Connector() = default;

  // Writes the subject's records to `sink` as one JSON document:
  //   {"store":"<name>","records":[{"collection":"<table>","data":{...}},...]}
  // Matching: a record matches when any identity field of its collection
  // equals a given identity of the same key, both in canonical form
  // (model/identity.h: emails case-folded, phones E.164 read in
  // StoreSpec::default_phone_region, user ids exact). The subject is found
  // through the store's indexes where it has them (docs/inventory.md).
  // Read-only. Errors: UNAVAILABLE when the store cannot be opened (worth a
  // retry), other codes for permanent failures.
  virtual absl::StatusOr<ConnectorResult> Export(
      const std::vector<Identity>& identities, ByteSink& sink) = 0;

  // Read-only: counts matching records and returns identities found in them.
  virtual absl::StatusOr<ConnectorResult> Discover(
      const std::vector<Identity>& identities) = 0;

  // Deletes every matching record, atomically per store (one transaction;
  // in a log file the matching lines are overwritten in place through a
  // journal, under the lock its writers take, see jsonl.h), or, in a
  // collection with mask_on_erase,
  // keeps it and masks its fields as the inventory says (docs/inventory.md,
  // "Masking"). Returns what it did per collection; all counts are 0 when
  // called again (a masked record no longer matches, or already holds its
  // masked values).
  virtual absl::StatusOr<EraseResult> Erase(
      const std::vector<Identity>& identities) = 0;

  // Sets the corrected fields of every matching record (one transaction /
  // one atomic rewrite). Only fields listed in the collection's pii_fields
  // may be corrected: INVALID_ARGUMENT naming the field otherwise; a
  // correction whose collection does not have the field is skipped. A value
  // not of the field's declared type (FieldTypeOf) is INVALID_ARGUMENT
  // before the store is changed. Other
  // fields are left byte-for-byte unchanged. Idempotent. Returns the number
  // of records whose values changed.
  virtual absl::StatusOr<int64_t> Rectify(
      const std::vector<Identity>& identities,
      const std::vector<FieldCorrection>& corrections) = 0;

  // Sets the collection's processing flag `flag` ("restriction" or
  // "objection", see CollectionSpec::processing_flags) to true on every
  // matching record; collections without that flag are skipped, so a store
  // without it returns 0. Idempotent. Returns the number of records flagged.
  virtual absl::StatusOr<int64_t> SetProcessingFlag(
      const std::vector<Identity>& identities, const std::string& flag) = 0;
};

// INVALID_ARGUMENT for an unknown kind. `cancel`, when given, must outlive
// the connector; setting it cancels the connector's operations (see
// Connector, "Cancellation"). It is never cleared by the connector.
absl::StatusOr<std::unique_ptr<Connector>> CreateConnector(
    const StoreSpec& store, const std::atomic<bool>* cancel = nullptr);

namespace internal {

// True once `cancel` (may be null) is set.
inline bool Cancelled(const std::atomic<bool>* cancel) {
  return cancel != nullptr && cancel->load(std::memory_order_relaxed);
}

// The CANCELLED status of an operation on `store` stopped by its flag.
absl::Status CancelledError(std::string_view store);

}  // namespace internal

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_CONNECTOR_H_
