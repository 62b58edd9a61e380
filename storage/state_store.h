#ifndef DSAR_STORAGE_STATE_STORE_H_
#define DSAR_STORAGE_STATE_STORE_H_

// The coordinator's durable state in RocksDB. docs/storage.md describes the
// column families and key layout. Writes happen only through `Commit`, called
// by the engine's single commit loop; reads may come from any thread.
//
// Personal data is encrypted at rest: each request has its own data key
// (AES-256, made with its first write, wrapped by the key ring's active KEK
// and kept in the `data_keys` column family). The personal fields of a
// request record (identities, corrections, discovered identities, notes,
// evidence reference, extension reason, cause: internal::PersonalFields) are
// sealed under it on every write and opened on every read, so callers see
// plain records. Destroying the data key (crypto-shredding) leaves the
// record's other facts readable and its personal fields gone for good.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "dsar/internal/records.pb.h"
#include "dsar/v1/requests.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/key_ring.h"
#include "storage/request_status.h"

namespace dsar {

// A request's personal fields as last sealed: the plaintext (serialized
// internal::PersonalFields) and the sealed bytes stored for it. Lives in
// memory beside the request's unsealed record, never on disk.
struct SealedPersonalFields {
  std::string plaintext;
  std::string sealed;
};

// Collects the writes of one commit group; applied atomically by Commit.
class StateBatch {
 public:
  // Stores `record` and moves its status index entry from `previous_status`
  // (UNSPECIFIED for a new request). Terminal records leave the live set.
  // The personal fields are sealed under the request's data key, made (and
  // put in this batch) with the request's first write. A record whose
  // personal_data_destroyed_at is set is stored without personal fields.
  // A failure to make or wrap the key fails Commit. `record` is the
  // caller's own, returned as it came: its personal fields are moved out for
  // sealing and back, so the record is never copied. `last_sealed`, when
  // given, is the request's own memo of its previous seal (kept by the
  // caller with the record): personal fields unchanged since then are not
  // sealed again; the memo follows each seal.
  void PutRequest(internal::RequestRecord* record,
                  v1::RequestStatus previous_status,
                  SealedPersonalFields* last_sealed = nullptr);
  // Deletes the request's data key: its personal fields and files cannot be
  // read any more. The caller writes the record again with
  // personal_data_destroyed_at set, in the same batch.
  void DestroyDataKey(const std::string& request_id);
  // The retention index: PutRequest files a request under the time it
  // closed (completed_at) when it becomes terminal; the purge drops it once
  // the request's personal data is destroyed. A request re-opened since
  // leaves a stale entry, which the purge recognises and drops.
  void DropClosed(int64_t closed_ms, const std::string& request_id);
  // The subject index: requests by the keyed hash of an identity (the
  // audit log's subject HMAC), so an erasure finds the person's earlier
  // requests without reading every record.
  void PutSubject(const std::string& subject_hmac,
                  const std::string& request_id);
  void DropSubject(const std::string& subject_hmac,
                   const std::string& request_id);
  // Indexes an event under its request; the event itself is the audit leaf
  // at event.log_index (PutAuditLeaf), stored once.
  void PutEvent(const v1::Event& event);
  // The audit log (storage/audit/audit_log.h is the only caller).
  void PutAuditLeaf(uint64_t index, const std::string& entry);
  void PutAuditHash(int level, uint64_t index, const std::string& hash);
  void PutAuditCheckpoint(uint64_t size, const std::string& note);
  void PutIdempotencyKey(const std::string& key, const std::string& request_id);
  void PutDefinition(const internal::DefinitionRecord& definition);
  // The notification outbox: queued with the transition that caused it,
  // deleted once a sink accepted it.
  void PutNotification(const internal::Notification& notification);
  void DeleteNotification(const std::string& id);

  int Count() const { return batch_.Count(); }
  rocksdb::WriteBatch* raw() { return &batch_; }

 private:
  friend class StateStore;
  explicit StateBatch(class StateStore* store) : store_(store) {}
  StateStore* store_;
  rocksdb::WriteBatch batch_;
  absl::Status error_;  // First failure of PutRequest; fails Commit.
  // Data keys made or destroyed by this batch: the store's cache follows
  // once the batch is committed.
  std::map<std::string, std::string> new_keys_;
  std::vector<std::string> destroyed_keys_;
};

struct RequestFilter {
  v1::RequestStatus status = v1::REQUEST_STATUS_UNSPECIFIED;
  v1::RequestType type = v1::REQUEST_TYPE_UNSPECIFIED;
  uint64_t created_after_ms = 0;  // Only requests created at or after.
};

class StateStore {
 public:
  // Opens (creating if missing) the database under `dir`. FAILED_PRECONDITION
  // naming `dir` (and the holder's pid when another process has it) when the
  // database is already open elsewhere; UNAVAILABLE on other RocksDB errors.
  // `keys` wraps the data keys; not owned, must outlive the store.
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(
      const std::string& dir, KeyEncryptionKeys* keys);
  ~StateStore();

  StateBatch NewBatch() { return StateBatch(this); }
  // Writes the batch with the WAL synced: when this returns OK the batch
  // survives a crash or power loss. An error leaves the database unchanged.
  absl::Status Commit(StateBatch& batch);

  // The request's data key (32 bytes), for its files. NOT_FOUND when the
  // request has none (never written, or destroyed); FAILED_PRECONDITION or
  // DATA_LOSS when it cannot be unwrapped (its KEK is gone or it was
  // altered).
  absl::StatusOr<std::string> DataKey(const std::string& request_id) const;
  // Makes destroyed keys and delivered notifications physically gone:
  // flushes every column family (so the WAL that held them is dropped) and
  // compacts the data keys and the outbox (both small) to the bottom level.
  // Old versions of request records may stay in SST files until RocksDB
  // compacts them: they are sealed, and unreadable once the key is gone.
  absl::Status Scrub();
  // Waits until RocksDB runs and owes no flush or compaction, checking
  // every 50 ms; false when `timeout` passed first. For benchmarks, so that
  // a measurement does not share the cores with compactions of the data
  // written just before.
  bool WaitForBackgroundWork(absl::Duration timeout) const;
  // Re-wraps every data key under the key ring's active KEK (after
  // Rotate), so older KEKs can be retired. Returns how many were re-wrapped.
  // REQUIRES: no concurrent Commit (call from the commit loop).
  absl::StatusOr<int64_t> RewrapDataKeys();

  // NOT_FOUND when no request has the id.
  absl::StatusOr<internal::RequestRecord> GetRequest(
      const std::string& id) const;
  // Request id for an idempotency key; std::nullopt when unknown.
  absl::StatusOr<std::optional<std::string>> GetIdempotencyKey(
      const std::string& key) const;
  absl::StatusOr<std::optional<internal::DefinitionRecord>> GetDefinition(
      const std::string& version) const;

  // Requests matching `filter`, oldest first, at most `limit`, starting after
  // the position `page_token` (opaque, from a previous call; empty: start).
  // `next_page_token` is empty when nothing follows.
  absl::Status ListRequests(const RequestFilter& filter, int limit,
                            const std::string& page_token,
                            std::vector<internal::RequestRecord>* out,
                            std::string* next_page_token) const;

  // Closed requests filed in the retention index at or before `until_ms`,
  // oldest first, at most `limit`: (closed ms, request id).
  absl::Status ListClosed(
      int64_t until_ms, int limit,
      std::vector<std::pair<int64_t, std::string>>* out) const;
  // Ids of the requests filed under `subject_hmac`.
  absl::StatusOr<std::vector<std::string>> RequestsOfSubject(
      const std::string& subject_hmac) const;

  absl::Status ListEvents(const std::string& request_id,
                          uint64_t after_sequence, int limit,
                          std::vector<v1::Event>* out, bool* more) const;
  // Leaf indexes of a request's events, in sequence order.
  absl::Status ListEventIndexes(const std::string& request_id,
                                std::vector<uint64_t>* out) const;

  // Audit log reads. NOT_FOUND when absent.
  absl::StatusOr<std::string> GetAuditLeaf(uint64_t index) const;
  // Leaves [start, end) in order, read with one iterator (leaves are stored
  // in index order), appended to `out`. NOT_FOUND naming the first leaf
  // missing.
  absl::Status GetAuditLeaves(uint64_t start, uint64_t end,
                              std::vector<std::string>* out) const;
  absl::StatusOr<std::string> GetAuditHash(int level, uint64_t index) const;
  // The leaves at `indexes`, in their order, read together (one RocksDB
  // MultiGet: for a few scattered leaves, cheaper than an iterator's seek).
  // NOT_FOUND naming the first one missing.
  absl::StatusOr<std::vector<std::string>> GetAuditLeavesAt(
      const std::vector<uint64_t>& indexes) const;
  // The hashes at `nodes` (level, index), in their order, read together
  // (one RocksDB MultiGet). NOT_FOUND naming the first one missing.
  absl::StatusOr<std::vector<std::string>> GetAuditHashes(
      const std::vector<std::pair<int, uint64_t>>& nodes) const;
  // The stored hashes of level `level` with an index in [begin, end), in
  // index order, read with one iterator: appends (index, hash) to `out`
  // for each, skipping indexes with no hash (subtrees not complete yet).
  absl::Status ScanAuditHashes(
      int level, uint64_t begin, uint64_t end,
      std::vector<std::pair<uint64_t, std::string>>* out) const;
  // The latest checkpoint: size and signed note; size 0 and "" when none.
  absl::StatusOr<std::pair<uint64_t, std::string>> GetAuditCheckpoint() const;

  // Calls `fn` for every non-terminal request. Cost is proportional to the
  // live set, not to the history.
  absl::Status ForEachNotification(
      const std::function<absl::Status(internal::Notification)>& fn) const;

  absl::Status ForEachLiveRequest(
      const std::function<absl::Status(internal::RequestRecord)>& fn) const;

 private:
  friend class StateBatch;
  StateStore() = default;

  // Seals `fields`, the personal fields taken out of request `request_id`,
  // into the bytes stored in the record's sealed_personal; reuses
  // `last_sealed` (may be null) when its plaintext is the same.
  absl::StatusOr<std::string> Seal(const std::string& request_id,
                                   const internal::PersonalFields& fields,
                                   SealedPersonalFields* last_sealed,
                                   StateBatch* batch);
  // Opens sealed_personal back into the fields. DATA_LOSS naming the
  // request when its key is missing or the seal does not open.
  absl::Status Unseal(internal::RequestRecord* record) const;
  absl::StatusOr<internal::RequestRecord> ParseRecord(
      const std::string& id, const std::string& bytes) const;

  KeyEncryptionKeys* keys_ = nullptr;
  mutable std::mutex data_keys_mu_;
  // Unwrapped data keys by request id. GUARDED_BY(data_keys_mu_)
  mutable absl::flat_hash_map<std::string, std::string> data_keys_;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* requests_ = nullptr;
  rocksdb::ColumnFamilyHandle* live_ = nullptr;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* index_ = nullptr;
  rocksdb::ColumnFamilyHandle* idempotency_ = nullptr;
  rocksdb::ColumnFamilyHandle* audit_ = nullptr;
  rocksdb::ColumnFamilyHandle* outbox_ = nullptr;
  rocksdb::ColumnFamilyHandle* data_keys_cf_ = nullptr;
};

}  // namespace dsar

#endif  // DSAR_STORAGE_STATE_STORE_H_
