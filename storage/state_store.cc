#include "storage/state_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "storage/sealed_box.h"

namespace dsar {
namespace {

constexpr char kAllPrefix = 'a';
constexpr char kStatusPrefix = 's';
constexpr char kClosedPrefix = 'c';   // 'c' <closed ms BE64> <id>
constexpr char kSubjectPrefix = 'h';  // 'h' <hmac> '\0' <id>

std::string BigEndian64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

uint64_t ReadBigEndian64(std::string_view bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return value;
}

uint64_t CreatedMillis(const v1::Request& request) {
  return static_cast<uint64_t>(request.created_at().seconds()) * 1000 +
         static_cast<uint64_t>(request.created_at().nanos() / 1000000);
}

std::string AllIndexKey(const v1::Request& request) {
  return absl::StrCat(std::string(1, kAllPrefix),
                      BigEndian64(CreatedMillis(request)), request.id());
}

std::string StatusIndexKey(v1::RequestStatus status,
                           const v1::Request& request) {
  return absl::StrCat(std::string(1, kStatusPrefix),
                      std::string(1, static_cast<char>(status)),
                      BigEndian64(CreatedMillis(request)), request.id());
}

int64_t MillisOf(const google::protobuf::Timestamp& time) {
  return time.seconds() * 1000 + time.nanos() / 1000000;
}

std::string ClosedKey(int64_t closed_ms, const std::string& id) {
  return absl::StrCat(std::string(1, kClosedPrefix),
                      BigEndian64(static_cast<uint64_t>(closed_ms)), id);
}

std::string SubjectKey(const std::string& hmac, const std::string& id) {
  return absl::StrCat(std::string(1, kSubjectPrefix), hmac,
                      std::string(1, '\0'), id);
}

std::string EventKey(const std::string& request_id, uint64_t sequence) {
  return absl::StrCat(request_id, std::string(1, '\0'), BigEndian64(sequence));
}

// Audit column family: 'L' <index> -> leaf bytes, 'H' <level> <index> ->
// perfect-subtree hash, 'C' -> <size BE64><signed note>.
constexpr char kAuditCheckpointKey[] = "C";

std::string AuditLeafKey(uint64_t index) {
  return absl::StrCat("L", BigEndian64(index));
}

std::string AuditHashKey(int level, uint64_t index) {
  return absl::StrCat("H", std::string(1, static_cast<char>(level)),
                      BigEndian64(index));
}

// The request id an events key begins with (up to its 0x00), for the
// events family's memtable insert hints.
class RequestIdPrefix : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "dsar.RequestIdPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    const void* nul = std::memchr(key.data(), '\0', key.size());
    if (nul == nullptr) return key;
    return rocksdb::Slice(key.data(),
                          static_cast<const char*>(nul) - key.data());
  }
  bool InDomain(const rocksdb::Slice& /*key*/) const override { return true; }
};

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  if (status.IsNotFound()) return absl::NotFoundError(what);
  return absl::InternalError(absl::StrCat(what, ": ", status.ToString()));
}

// The pid of another process holding the write lock RocksDB takes on
// `lock_path` (fcntl F_SETLK), or nullopt when none does or it cannot be
// told. REQUIRES: this process does not hold that lock itself, since closing
// any descriptor of the file would release a POSIX lock the process holds.
std::optional<pid_t> LockHolder(const std::string& lock_path) {
  const int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct flock lock = {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  const bool got = ::fcntl(fd, F_GETLK, &lock) == 0;
  ::close(fd);
  if (!got || lock.l_type == F_UNLCK || lock.l_pid <= 0) return std::nullopt;
  return lock.l_pid;
}

// The error for a failed rocksdb::DB::Open of `dir`. A database that another
// open holds (its LOCK file is locked) is FAILED_PRECONDITION naming the
// holder; anything else is UNAVAILABLE with RocksDB's text.
absl::Status OpenError(const std::string& dir, const rocksdb::Status& status) {
  const std::string text = status.ToString();
  const std::string lock_path = dir + "/LOCK";
  if (status.IsIOError() && absl::StrContains(text, "lock hold by current")) {
    return absl::FailedPreconditionError(
        absl::StrCat("state database ", dir,
                     " is already open in this process (", lock_path, ")"));
  }
  if (status.IsIOError() && absl::StrContains(text, lock_path)) {
    std::optional<pid_t> holder = LockHolder(lock_path);
    return absl::FailedPreconditionError(absl::StrCat(
        "state database ", dir, " is in use by ",
        holder ? absl::StrCat("process ", *holder) : "another process",
        ", which holds ", lock_path, "; stop it or use another directory"));
  }
  return absl::UnavailableError(
      absl::StrCat("cannot open state database ", dir, ": ", text));
}

// Moves the personal fields out of `record` into `fields`.
void TakePersonalFields(internal::RequestRecord* record,
                        internal::PersonalFields* fields) {
  v1::Request* request = record->mutable_request();
  fields->mutable_identities()->Swap(request->mutable_identities());
  fields->mutable_corrections()->Swap(request->mutable_corrections());
  fields->mutable_discovered()->Swap(record->mutable_discovered());
  fields->mutable_notes()->swap(*record->mutable_notes());
  if (request->has_verification()) {
    fields->set_evidence_ref(
        std::move(*request->mutable_verification()->mutable_evidence_ref()));
    request->mutable_verification()->clear_evidence_ref();
  }
  fields->set_extension_reason(std::move(*request->mutable_extension_reason()));
  request->clear_extension_reason();
  fields->set_cause(std::move(*request->mutable_cause()));
  request->clear_cause();
}

void RestorePersonalFields(internal::PersonalFields* fields,
                           internal::RequestRecord* record) {
  v1::Request* request = record->mutable_request();
  request->mutable_identities()->Swap(fields->mutable_identities());
  request->mutable_corrections()->Swap(fields->mutable_corrections());
  record->mutable_discovered()->Swap(fields->mutable_discovered());
  record->mutable_notes()->swap(*fields->mutable_notes());
  if (!fields->evidence_ref().empty()) {
    request->mutable_verification()->set_evidence_ref(
        std::move(*fields->mutable_evidence_ref()));
  }
  request->set_extension_reason(std::move(*fields->mutable_extension_reason()));
  request->set_cause(std::move(*fields->mutable_cause()));
}

}  // namespace

void StateBatch::PutRequest(internal::RequestRecord* record,
                            v1::RequestStatus previous_status,
                            SealedPersonalFields* last_sealed) {
  const v1::Request& request = record->request();
  internal::PersonalFields fields;
  TakePersonalFields(record, &fields);
  if (request.has_personal_data_destroyed_at()) {
    // Nothing personal is kept any more.
    if (last_sealed != nullptr) *last_sealed = SealedPersonalFields();
  } else {
    absl::StatusOr<std::string> sealed =
        store_->Seal(request.id(), fields, last_sealed, this);
    if (!sealed.ok()) {
      if (error_.ok()) error_ = sealed.status();
      RestorePersonalFields(&fields, record);
      return;
    }
    record->set_sealed_personal(*std::move(sealed));
  }
  batch_.Put(store_->requests_, request.id(), record->SerializeAsString());
  record->clear_sealed_personal();
  RestorePersonalFields(&fields, record);
  if (previous_status == v1::REQUEST_STATUS_UNSPECIFIED) {
    batch_.Put(store_->index_, AllIndexKey(request),
               std::string(1, static_cast<char>(request.type())));
  }
  if (previous_status != request.status()) {
    if (previous_status != v1::REQUEST_STATUS_UNSPECIFIED) {
      batch_.Delete(store_->index_, StatusIndexKey(previous_status, request));
    }
    batch_.Put(store_->index_, StatusIndexKey(request.status(), request),
               std::string(1, static_cast<char>(request.type())));
  }
  if (IsTerminalStatus(request.status())) {
    batch_.Delete(store_->live_, request.id());
    if (!IsTerminalStatus(previous_status)) {
      batch_.Put(store_->index_,
                 ClosedKey(MillisOf(request.completed_at()), request.id()), "");
    }
  } else if (previous_status == v1::REQUEST_STATUS_UNSPECIFIED ||
             IsTerminalStatus(previous_status)) {  // New, or re-opened.
    batch_.Put(store_->live_, request.id(), "");
  }
}

void StateBatch::DestroyDataKey(const std::string& request_id) {
  batch_.Delete(store_->data_keys_cf_, request_id);
  new_keys_.erase(request_id);
  destroyed_keys_.push_back(request_id);
}

void StateBatch::DropClosed(int64_t closed_ms, const std::string& request_id) {
  batch_.Delete(store_->index_, ClosedKey(closed_ms, request_id));
}

void StateBatch::PutSubject(const std::string& subject_hmac,
                            const std::string& request_id) {
  batch_.Put(store_->index_, SubjectKey(subject_hmac, request_id), "");
}

void StateBatch::DropSubject(const std::string& subject_hmac,
                             const std::string& request_id) {
  batch_.Delete(store_->index_, SubjectKey(subject_hmac, request_id));
}

void StateBatch::PutEvent(const v1::Event& event) {
  batch_.Put(store_->events_, EventKey(event.request_id(), event.sequence()),
             BigEndian64(event.log_index()));
}

void StateBatch::PutNotification(const internal::Notification& notification) {
  batch_.Put(store_->outbox_, notification.id(),
             notification.SerializeAsString());
}

void StateBatch::DeleteNotification(const std::string& id) {
  batch_.Delete(store_->outbox_, id);
}

void StateBatch::PutAuditLeaf(uint64_t index, const std::string& entry) {
  batch_.Put(store_->audit_, AuditLeafKey(index), entry);
}

void StateBatch::PutAuditHash(int level, uint64_t index,
                              const std::string& hash) {
  batch_.Put(store_->audit_, AuditHashKey(level, index), hash);
}

void StateBatch::PutAuditCheckpoint(uint64_t size, const std::string& note) {
  batch_.Put(store_->audit_, kAuditCheckpointKey,
             absl::StrCat(BigEndian64(size), note));
}

void StateBatch::PutIdempotencyKey(const std::string& key,
                                   const std::string& request_id) {
  batch_.Put(store_->idempotency_, key, request_id);
}

void StateBatch::PutDefinition(const internal::DefinitionRecord& definition) {
  batch_.Put(store_->meta_, absl::StrCat("definition/", definition.version()),
             definition.SerializeAsString());
}

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(
    const std::string& dir, KeyEncryptionKeys* keys) {
  if (keys == nullptr) {
    return absl::InvalidArgumentError(
        "state store: a key ring for the data keys is required");
  }
  RETURN_IF_ERROR(MakeDirectories(dir));
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.IncreaseParallelism(2);
  // The WAL is synced on every commit group. Its size bounds what a restart
  // after a crash replays (docs/BENCHMARKS.md "Engine": ~250 MB took 6 s).
  options.max_total_wal_size = 64 << 20;

  rocksdb::ColumnFamilyOptions cf_options;
  rocksdb::BlockBasedTableOptions table_options;
  table_options.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf_options.table_factory.reset(
      rocksdb::NewBlockBasedTableFactory(table_options));

  // Audit proofs read hashes of random old subtrees, which are almost never
  // in the memtables: a bloom filter over the memtable keys spares each
  // read a skip-list search (in memory only; the files do not change).
  rocksdb::ColumnFamilyOptions audit_options = cf_options;
  audit_options.memtable_prefix_bloom_size_ratio = 0.02;
  audit_options.memtable_whole_key_filtering = true;

  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const char* name :
       {rocksdb::kDefaultColumnFamilyName.c_str(), "requests", "live", "events",
        "index", "idempotency", "audit", "outbox", "data_keys"}) {
    families.emplace_back(
        name, std::string_view(name) == "audit" ? audit_options : cf_options);
  }
  // Memtable insert hints (the only effect of this option: neither the
  // files nor reads change). Without them every insert searches the
  // memtable's skip list from the top, which was a fifth of dsard's CPU on
  // the real path; with them a key that lands next to the last one of its
  // prefix is linked in place. That is how these families are written:
  // audit leaves and subtree hashes by increasing index per level ('L',
  // 'H' <level>), a request's events by sequence, index entries by time
  // ('a', 's' <status>, 'c').
  for (rocksdb::ColumnFamilyDescriptor& family : families) {
    if (family.name == "audit" || family.name == "index") {
      family.options.memtable_insert_with_hint_prefix_extractor.reset(
          rocksdb::NewCappedPrefixTransform(2));
    } else if (family.name == "events") {
      family.options.memtable_insert_with_hint_prefix_extractor =
          std::make_shared<RequestIdPrefix>();
    }
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status status =
      rocksdb::DB::Open(options, dir, families, &handles, &db);
  if (!status.ok()) return OpenError(dir, status);
  // Only now: the destructor flushes through db_, which must not be null.
  std::unique_ptr<StateStore> store(new StateStore());
  store->db_.reset(db);
  store->handles_ = std::move(handles);
  store->meta_ = store->handles_[0];
  store->requests_ = store->handles_[1];
  store->live_ = store->handles_[2];
  store->events_ = store->handles_[3];
  store->index_ = store->handles_[4];
  store->idempotency_ = store->handles_[5];
  store->audit_ = store->handles_[6];
  store->outbox_ = store->handles_[7];
  store->data_keys_cf_ = store->handles_[8];
  store->keys_ = keys;
  return store;
}

StateStore::~StateStore() {
  // A clean stop flushes the memtables, so the next start replays no WAL.
  rocksdb::FlushOptions flush;
  flush.wait = true;
  db_->Flush(flush, handles_);
  for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
}

absl::Status StateStore::Commit(StateBatch& batch) {
  RETURN_IF_ERROR(batch.error_);
  rocksdb::WriteOptions options;
  options.sync = true;
  RETURN_IF_ERROR(FromRocks(db_->Write(options, &batch.batch_), "commit"));
  std::lock_guard<std::mutex> lock(data_keys_mu_);
  for (auto& [id, key] : batch.new_keys_) data_keys_[id] = std::move(key);
  for (const std::string& id : batch.destroyed_keys_) data_keys_.erase(id);
  batch.new_keys_.clear();
  batch.destroyed_keys_.clear();
  return absl::OkStatus();
}

namespace {

// Associated data of a record's sealed personal fields.
std::string PersonalFieldsContext(const std::string& request_id) {
  return absl::StrCat("dsar request personal fields\n", request_id);
}

}  // namespace

absl::StatusOr<std::string> StateStore::Seal(
    const std::string& request_id, const internal::PersonalFields& fields,
    SealedPersonalFields* last_sealed, StateBatch* batch) {
  std::string plaintext = fields.SerializeAsString();
  if (last_sealed != nullptr && !last_sealed->sealed.empty() &&
      last_sealed->plaintext == plaintext) {
    return last_sealed->sealed;
  }
  std::string key;
  if (auto it = batch->new_keys_.find(request_id);
      it != batch->new_keys_.end()) {
    key = it->second;
  } else {
    absl::StatusOr<std::string> existing = DataKey(request_id);
    if (existing.ok()) {
      key = *std::move(existing);
    } else if (absl::IsNotFound(existing.status())) {
      ASSIGN_OR_RETURN(key, NewDataKey());
      ASSIGN_OR_RETURN(WrappedKey wrapped, keys_->Wrap(key, request_id));
      internal::DataKeyRecord stored;
      stored.set_kek_id(wrapped.kek_id);
      stored.set_wrapped(wrapped.wrapped);
      batch->batch_.Put(data_keys_cf_, request_id, stored.SerializeAsString());
      batch->new_keys_[request_id] = key;
    } else {
      return existing.status();
    }
  }
  ASSIGN_OR_RETURN(SealedBox box, SealedBox::Create(std::move(key)));
  ASSIGN_OR_RETURN(std::string sealed,
                   box.Seal(plaintext, PersonalFieldsContext(request_id)));
  if (last_sealed != nullptr) {
    last_sealed->plaintext = std::move(plaintext);
    last_sealed->sealed = sealed;
  }
  return sealed;
}

absl::Status StateStore::Unseal(internal::RequestRecord* record) const {
  if (record->sealed_personal().empty()) return absl::OkStatus();
  const std::string& id = record->request().id();
  absl::StatusOr<std::string> key = DataKey(id);
  if (!key.ok()) {
    return absl::DataLossError(
        absl::StrCat("request ", id, ": its personal fields cannot be opened (",
                     key.status().message(), ")"));
  }
  ASSIGN_OR_RETURN(SealedBox box, SealedBox::Create(*std::move(key)));
  absl::StatusOr<std::string> opened =
      box.Open(record->sealed_personal(), PersonalFieldsContext(id));
  internal::PersonalFields fields;
  if (!opened.ok() || !fields.ParseFromString(*opened)) {
    return absl::DataLossError(absl::StrCat(
        "request ", id, ": its sealed personal fields are corrupt"));
  }
  record->clear_sealed_personal();
  RestorePersonalFields(&fields, record);
  return absl::OkStatus();
}

absl::StatusOr<internal::RequestRecord> StateStore::ParseRecord(
    const std::string& id, const std::string& bytes) const {
  internal::RequestRecord record;
  if (!record.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("request ", id, " is corrupt"));
  }
  RETURN_IF_ERROR(Unseal(&record));
  return record;
}

absl::StatusOr<std::string> StateStore::DataKey(
    const std::string& request_id) const {
  // Held across the read so a key destroyed by a concurrent Commit cannot
  // come back into the cache (Commit erases under this lock after writing).
  std::lock_guard<std::mutex> lock(data_keys_mu_);
  if (auto it = data_keys_.find(request_id); it != data_keys_.end())
    return it->second;
  std::string value;
  rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), data_keys_cf_, request_id, &value);
  if (status.IsNotFound()) {
    return absl::NotFoundError(
        absl::StrCat("request ", request_id, " has no data key"));
  }
  RETURN_IF_ERROR(FromRocks(status, "read data key"));
  internal::DataKeyRecord stored;
  if (!stored.ParseFromString(value)) {
    return absl::DataLossError(
        absl::StrCat("data key of request ", request_id, " is corrupt"));
  }
  absl::StatusOr<std::string> key =
      keys_->Unwrap({stored.kek_id(), stored.wrapped()}, request_id);
  if (absl::IsNotFound(key.status())) {
    return absl::FailedPreconditionError(key.status().message());
  }
  RETURN_IF_ERROR(key.status());
  data_keys_[request_id] = *key;
  return key;
}

absl::Status StateStore::Scrub() {
  rocksdb::FlushOptions flush;
  flush.wait = true;
  RETURN_IF_ERROR(FromRocks(db_->Flush(flush, handles_), "flush"));
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* family : {data_keys_cf_, outbox_}) {
    RETURN_IF_ERROR(FromRocks(
        db_->CompactRange(compact, family, nullptr, nullptr), "compact"));
  }
  return absl::OkStatus();
}

bool StateStore::WaitForBackgroundWork(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    uint64_t busy = 0, value = 0;
    for (const char* property :
         {"rocksdb.num-running-compactions", "rocksdb.num-running-flushes"}) {
      if (db_->GetIntProperty(property, &value)) busy += value;
    }
    for (rocksdb::ColumnFamilyHandle* family : handles_) {
      for (const char* property :
           {"rocksdb.compaction-pending", "rocksdb.mem-table-flush-pending"}) {
        if (db_->GetIntProperty(family, property, &value)) busy += value;
      }
    }
    if (busy == 0) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

absl::StatusOr<int64_t> StateStore::RewrapDataKeys() {
  const std::string active = keys_->ActiveKeyId();
  rocksdb::WriteBatch batch;
  int64_t count = 0;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), data_keys_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string id = it->key().ToString();
    internal::DataKeyRecord stored;
    if (!stored.ParseFromString(it->value().ToString())) {
      return absl::DataLossError(
          absl::StrCat("data key of request ", id, " is corrupt"));
    }
    if (stored.kek_id() == active) continue;
    ASSIGN_OR_RETURN(std::string key,
                     keys_->Unwrap({stored.kek_id(), stored.wrapped()}, id));
    ASSIGN_OR_RETURN(WrappedKey wrapped, keys_->Wrap(key, id));
    stored.set_kek_id(wrapped.kek_id);
    stored.set_wrapped(wrapped.wrapped);
    batch.Put(data_keys_cf_, id, stored.SerializeAsString());
    ++count;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan data keys"));
  rocksdb::WriteOptions options;
  options.sync = true;
  RETURN_IF_ERROR(FromRocks(db_->Write(options, &batch), "rewrap data keys"));
  return count;
}

absl::StatusOr<internal::RequestRecord> StateStore::GetRequest(
    const std::string& id) const {
  std::string value;
  rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), requests_, id, &value);
  if (status.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("request ", id, " not found"));
  }
  RETURN_IF_ERROR(FromRocks(status, "read request"));
  return ParseRecord(id, value);
}

absl::StatusOr<std::optional<std::string>> StateStore::GetIdempotencyKey(
    const std::string& key) const {
  std::string value;
  rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), idempotency_, key, &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(status, "read idempotency key"));
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<std::optional<internal::DefinitionRecord>>
StateStore::GetDefinition(const std::string& version) const {
  std::string value;
  rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), meta_,
               absl::StrCat("definition/", version), &value);
  if (status.IsNotFound()) return std::optional<internal::DefinitionRecord>();
  RETURN_IF_ERROR(FromRocks(status, "read definition"));
  internal::DefinitionRecord record;
  if (!record.ParseFromString(value)) {
    return absl::DataLossError(
        absl::StrCat("definition ", version, " is corrupt"));
  }
  return std::optional<internal::DefinitionRecord>(std::move(record));
}

absl::Status StateStore::ListRequests(const RequestFilter& filter, int limit,
                                      const std::string& page_token,
                                      std::vector<internal::RequestRecord>* out,
                                      std::string* next_page_token) const {
  out->clear();
  next_page_token->clear();
  std::string prefix =
      filter.status == v1::REQUEST_STATUS_UNSPECIFIED
          ? std::string(1, kAllPrefix)
          : absl::StrCat(std::string(1, kStatusPrefix),
                         std::string(1, static_cast<char>(filter.status)));
  std::string start =
      absl::StrCat(prefix, BigEndian64(filter.created_after_ms));
  if (!page_token.empty()) {
    std::string decoded;
    if (!absl::WebSafeBase64Unescape(page_token, &decoded) ||
        decoded.compare(0, prefix.size(), prefix) != 0) {
      return absl::InvalidArgumentError(
          "page_token: not a token from this listing");
    }
    start = decoded + std::string(1, '\0');
  }
  rocksdb::ReadOptions read_options;
  std::unique_ptr<const rocksdb::Snapshot,
                  std::function<void(const rocksdb::Snapshot*)>>
      snapshot(db_->GetSnapshot(),
               [this](const rocksdb::Snapshot* s) { db_->ReleaseSnapshot(s); });
  read_options.snapshot = snapshot.get();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, index_));
  std::string last_key;
  for (it->Seek(start); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    rocksdb::Slice value = it->value();
    if (filter.type != v1::REQUEST_TYPE_UNSPECIFIED &&
        (value.size() != 1 || static_cast<uint8_t>(value[0]) != filter.type)) {
      continue;
    }
    if (static_cast<int>(out->size()) == limit) {
      // Another match follows: the next page starts after the last key.
      absl::WebSafeBase64Escape(last_key, next_page_token);
      break;
    }
    last_key = it->key().ToString();
    std::string id = last_key.substr(prefix.size() + 8);
    std::string record_bytes;
    rocksdb::Status status =
        db_->Get(read_options, requests_, id, &record_bytes);
    RETURN_IF_ERROR(FromRocks(status, absl::StrCat("read request ", id)));
    ASSIGN_OR_RETURN(internal::RequestRecord record,
                     ParseRecord(id, record_bytes));
    out->push_back(std::move(record));
  }
  return FromRocks(it->status(), "list requests");
}

absl::Status StateStore::ListClosed(
    int64_t until_ms, int limit,
    std::vector<std::pair<int64_t, std::string>>* out) const {
  out->clear();
  const std::string prefix(1, kClosedPrefix);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), index_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) &&
                         static_cast<int>(out->size()) < limit;
       it->Next()) {
    std::string key = it->key().ToString();
    if (key.size() < 1 + 8) continue;
    const int64_t closed_ms =
        static_cast<int64_t>(ReadBigEndian64(std::string_view(key).substr(1)));
    if (closed_ms > until_ms) break;
    out->emplace_back(closed_ms, key.substr(1 + 8));
  }
  return FromRocks(it->status(), "list closed requests");
}

absl::StatusOr<std::vector<std::string>> StateStore::RequestsOfSubject(
    const std::string& subject_hmac) const {
  std::vector<std::string> ids;
  const std::string prefix = absl::StrCat(std::string(1, kSubjectPrefix),
                                          subject_hmac, std::string(1, '\0'));
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), index_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    ids.push_back(it->key().ToString().substr(prefix.size()));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "list requests of a subject"));
  return ids;
}

absl::Status StateStore::ListEvents(const std::string& request_id,
                                    uint64_t after_sequence, int limit,
                                    std::vector<v1::Event>* out,
                                    bool* more) const {
  out->clear();
  *more = false;
  std::string prefix = absl::StrCat(request_id, std::string(1, '\0'));
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), events_));
  for (it->Seek(EventKey(request_id, after_sequence + 1));
       it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (static_cast<int>(out->size()) == limit) {
      *more = true;
      break;
    }
    uint64_t index = ReadBigEndian64(it->value().ToString());
    ASSIGN_OR_RETURN(std::string entry, GetAuditLeaf(index));
    v1::Event event;
    if (!event.ParseFromString(entry)) {
      return absl::DataLossError(absl::StrCat("audit leaf ", index,
                                              " (event of request ", request_id,
                                              ") is corrupt"));
    }
    out->push_back(std::move(event));
  }
  return FromRocks(it->status(), "list events");
}

absl::Status StateStore::ListEventIndexes(const std::string& request_id,
                                          std::vector<uint64_t>* out) const {
  out->clear();
  std::string prefix = absl::StrCat(request_id, std::string(1, '\0'));
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), events_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    out->push_back(ReadBigEndian64(it->value().ToString()));
  }
  return FromRocks(it->status(), "list event indexes");
}

absl::StatusOr<std::string> StateStore::GetAuditLeaf(uint64_t index) const {
  std::string value;
  rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), audit_, AuditLeafKey(index), &value);
  if (status.IsNotFound()) {
    return absl::NotFoundError(
        absl::StrCat("audit leaf ", index, " is missing"));
  }
  RETURN_IF_ERROR(FromRocks(status, "read audit leaf"));
  return value;
}

absl::StatusOr<std::string> StateStore::GetAuditHash(int level,
                                                     uint64_t index) const {
  std::string value;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), audit_,
                                    AuditHashKey(level, index), &value);
  if (status.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("audit subtree hash (level ", level,
                                            ", index ", index, ") is missing"));
  }
  RETURN_IF_ERROR(FromRocks(status, "read audit hash"));
  return value;
}

absl::Status StateStore::GetAuditLeaves(uint64_t start, uint64_t end,
                                        std::vector<std::string>* out) const {
  if (start >= end) return absl::OkStatus();
  rocksdb::ReadOptions options;
  // Bounds the iterator to the leaves asked for ("L" + big-endian index).
  const std::string upper = AuditLeafKey(end);
  rocksdb::Slice upper_bound(upper);
  options.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, audit_));
  uint64_t expected = start;
  for (it->Seek(AuditLeafKey(start)); it->Valid() && expected < end;
       it->Next(), ++expected) {
    if (it->key() != rocksdb::Slice(AuditLeafKey(expected))) break;
    out->push_back(it->value().ToString());
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "read audit leaves"));
  if (expected < end) {
    return absl::NotFoundError(
        absl::StrCat("audit leaf ", expected, " is missing"));
  }
  return absl::OkStatus();
}

namespace {

// The values of `keys` in the audit family, in their order, read in one
// MultiGet. NOT_FOUND "<name(i)> is missing" for the first one absent;
// other errors are named by `what`.
absl::StatusOr<std::vector<std::string>> MultiGetAudit(
    rocksdb::DB* db, rocksdb::ColumnFamilyHandle* audit,
    const std::vector<std::string>& keys, absl::string_view what,
    const std::function<std::string(size_t)>& name) {
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db->MultiGet(rocksdb::ReadOptions(), audit, slices.size(), slices.data(),
               values.data(), statuses.data());
  std::vector<std::string> out;
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      return absl::NotFoundError(absl::StrCat(name(i), " is missing"));
    }
    RETURN_IF_ERROR(FromRocks(statuses[i], what));
    out.push_back(values[i].ToString());
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> StateStore::GetAuditLeavesAt(
    const std::vector<uint64_t>& indexes) const {
  std::vector<std::string> keys;
  keys.reserve(indexes.size());
  for (uint64_t index : indexes) keys.push_back(AuditLeafKey(index));
  return MultiGetAudit(
      db_.get(), audit_, keys, "read audit leaves",
      [&](size_t i) { return absl::StrCat("audit leaf ", indexes[i]); });
}

absl::StatusOr<std::vector<std::string>> StateStore::GetAuditHashes(
    const std::vector<std::pair<int, uint64_t>>& nodes) const {
  std::vector<std::string> keys;
  keys.reserve(nodes.size());
  for (const auto& [level, index] : nodes) {
    keys.push_back(AuditHashKey(level, index));
  }
  return MultiGetAudit(
      db_.get(), audit_, keys, "read audit hashes", [&](size_t i) {
        return absl::StrCat("audit subtree hash (level ", nodes[i].first,
                            ", index ", nodes[i].second, ")");
      });
}

absl::Status StateStore::ScanAuditHashes(
    int level, uint64_t begin, uint64_t end,
    std::vector<std::pair<uint64_t, std::string>>* out) const {
  if (begin >= end) return absl::OkStatus();
  rocksdb::ReadOptions options;
  // "H" + level + big-endian index: one level's hashes are contiguous.
  const std::string upper = AuditHashKey(level, end);
  rocksdb::Slice upper_bound(upper);
  options.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, audit_));
  const std::string first = AuditHashKey(level, begin);
  // Between the bounds every key is "H" + level + an 8-byte index.
  for (it->Seek(first); it->Valid(); it->Next()) {
    rocksdb::Slice key = it->key();
    if (key.size() != first.size()) {
      return absl::DataLossError(absl::StrCat("audit hash key of ", key.size(),
                                              " bytes at level ", level));
    }
    out->emplace_back(
        ReadBigEndian64(std::string_view(key.data() + key.size() - 8, 8)),
        it->value().ToString());
  }
  return FromRocks(it->status(), "scan audit hashes");
}

absl::StatusOr<std::pair<uint64_t, std::string>>
StateStore::GetAuditCheckpoint() const {
  std::string value;
  rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), audit_, kAuditCheckpointKey, &value);
  if (status.IsNotFound()) return std::make_pair(uint64_t{0}, std::string());
  RETURN_IF_ERROR(FromRocks(status, "read audit checkpoint"));
  if (value.size() < 8)
    return absl::DataLossError("audit checkpoint record is corrupt");
  return std::make_pair(ReadBigEndian64(value), value.substr(8));
}

absl::Status StateStore::ForEachNotification(
    const std::function<absl::Status(internal::Notification)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), outbox_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    internal::Notification notification;
    if (!notification.ParseFromArray(it->value().data(),
                                     static_cast<int>(it->value().size()))) {
      return absl::DataLossError(
          absl::StrCat("outbox entry ", it->key().ToString(), " is corrupt"));
    }
    RETURN_IF_ERROR(fn(std::move(notification)));
  }
  return FromRocks(it->status(), "scan outbox");
}

absl::Status StateStore::ForEachLiveRequest(
    const std::function<absl::Status(internal::RequestRecord)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), live_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(internal::RequestRecord record,
                     GetRequest(it->key().ToString()));
    RETURN_IF_ERROR(fn(std::move(record)));
  }
  return FromRocks(it->status(), "scan live requests");
}

}  // namespace dsar
