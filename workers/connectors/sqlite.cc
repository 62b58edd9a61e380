#include "workers/connectors/sqlite.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/connector_errors.h"
#include "model/identity.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/corrections.h"
#include "workers/connectors/export_writer.h"
#include "workers/connectors/identity_match.h"
#include "workers/connectors/masking.h"

namespace dsar {
namespace {

constexpr int kBusyTimeoutMs = 5000;
// How many VM steps SQLite runs between two looks at the cancel flag.
constexpr int kProgressSteps = 1000;

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;

// Which file a connection opened: the path may later name another one.
struct FileId {
  dev_t device = 0;
  ino_t inode = 0;
  bool operator==(const FileId& other) const {
    return device == other.device && inode == other.inode;
  }
};

// Ends a statement's use: a statement of a session's cache (`in_use` set) is
// reset for the next use, any other finalized.
struct StatementReleaser {
  bool* in_use = nullptr;
  void operator()(sqlite3_stmt* stmt) const {
    if (in_use == nullptr) {
      sqlite3_finalize(stmt);
      return;
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    *in_use = false;
  }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementReleaser>;

// How many prepared statements a session keeps for reuse.
constexpr size_t kStatementCacheSize = 64;

// Maps a SQLite result code to a status whose error name
// (model/connector_errors.h) tells the workflow whether to retry:
//   BUSY, LOCKED, CANTOPEN, IOERR, PROTOCOL, INTERRUPT  UNAVAILABLE
//   FULL, NOMEM                       RESOURCE_EXHAUSTED    (both transient)
//   READONLY, PERM, AUTH              PERMISSION_DENIED     PermissionDenied
//   CONSTRAINT (UNIQUE, NOT NULL, a foreign key ...)        ConstraintViolation
//   ERROR "no such table/column"      NOT_FOUND             SchemaMismatch
//   MISMATCH, TOOBIG, RANGE           INVALID_ARGUMENT      InvalidValue
//   CORRUPT, NOTADB                   DATA_LOSS             Corrupt
//   anything else                     INTERNAL              Failed
absl::Status SqliteError(int rc, sqlite3* db, absl::string_view context) {
  std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string message = absl::StrCat(context, ": ", detail);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_PROTOCOL:
    case SQLITE_INTERRUPT:
      return absl::UnavailableError(message);
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(message);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::PermissionDeniedError(message);
    case SQLITE_CONSTRAINT:
      return WithErrorName(absl::FailedPreconditionError(message),
                           kErrorConstraintViolation);
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return absl::InvalidArgumentError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_ERROR:
    case SQLITE_SCHEMA:
      // The inventory names a table or column the database lacks.
      if (absl::StartsWith(detail, "no such table") ||
          absl::StartsWith(detail, "no such column")) {
        return absl::NotFoundError(message);
      }
      return absl::InternalError(message);
    default:
      return absl::InternalError(message);
  }
}

// SQL identifier quoting: "name" with embedded quotes doubled.
std::string QuoteIdentifier(std::string_view name) {
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

// dsar_phone(x): x in E.164 when the normaliser reads it as a phone number
// (in the store's default_phone_region, the function's user data), else
// NULL. Registered on the connector's own connections only.
void DsarPhone(sqlite3_context* context, int argc, sqlite3_value** argv) {
  const auto* region =
      static_cast<const std::string*>(sqlite3_user_data(context));
  int type = sqlite3_value_type(argv[0]);
  if (type != SQLITE_TEXT && type != SQLITE_INTEGER) {
    sqlite3_result_null(context);
    return;
  }
  const char* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  if (text == nullptr) {
    sqlite3_result_null(context);
    return;
  }
  absl::StatusOr<std::string> e164 = NormalizeIdentityValue(
      kPhoneKey,
      std::string_view(text, static_cast<size_t>(sqlite3_value_bytes(argv[0]))),
      *region);
  if (!e164.ok()) {
    sqlite3_result_null(context);
    return;
  }
  sqlite3_result_text(context, e164->data(), static_cast<int>(e164->size()),
                      SQLITE_TRANSIENT);
}

// SQLite's progress handler: a non-zero return interrupts the statement
// (SQLITE_INTERRUPT), which rolls back a write transaction.
int InterruptWhenCancelled(void* cancel) {
  return internal::Cancelled(static_cast<const std::atomic<bool>*>(cancel)) ? 1
                                                                            : 0;
}

// SQLite's busy handler: waits for a lock as sqlite3_busy_timeout does, up
// to kBusyTimeoutMs, and gives up (SQLITE_BUSY) once the flag is set.
// `count` is how many times it was called for this lock.
int WaitWhileBusy(void* cancel, int count) {
  if (internal::Cancelled(static_cast<const std::atomic<bool>*>(cancel))) {
    return 0;
  }
  // Waits of 1, 2, 4, 8, then 10 ms: `waited` is their sum so far.
  int delay_ms = count < 4 ? 1 << count : 10;
  int waited_ms = count < 4 ? (1 << count) - 1 : 15 + 10 * (count - 4);
  if (waited_ms >= kBusyTimeoutMs) return 0;
  sqlite3_sleep(delay_ms);
  return 1;
}

// How SQLite converts values compared with a column: its type affinity,
// from the declared type (https://sqlite.org/datatype3.html, 3.1).
enum class Affinity { kInteger, kText, kBlob, kReal, kNumeric };

Affinity AffinityOf(std::string declared) {
  absl::AsciiStrToUpper(&declared);
  if (absl::StrContains(declared, "INT")) return Affinity::kInteger;
  if (absl::StrContains(declared, "CHAR") ||
      absl::StrContains(declared, "CLOB") ||
      absl::StrContains(declared, "TEXT")) {
    return Affinity::kText;
  }
  if (declared.empty() || absl::StrContains(declared, "BLOB")) {
    return Affinity::kBlob;
  }
  if (absl::StrContains(declared, "REAL") ||
      absl::StrContains(declared, "FLOA") ||
      absl::StrContains(declared, "DOUB")) {
    return Affinity::kReal;
  }
  return Affinity::kNumeric;
}

struct Column {
  std::string name;
  Affinity affinity;
};

class Session {
 public:
  // Opens `store`'s database without creating it. UNAVAILABLE when missing.
  // `cancel` (may be null): CANCELLED when set now; once set later, running
  // statements are interrupted and lock waits end, and Error() reports
  // CANCELLED.
  static absl::StatusOr<Session> Open(const StoreSpec& store, bool read_only,
                                      const std::atomic<bool>* cancel) {
    if (internal::Cancelled(cancel)) {
      return internal::CancelledError(store.name);
    }
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(store.path.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    Db db(raw);
    std::string context =
        absl::StrCat("store ", store.name, ": open ", store.path);
    if (rc != SQLITE_OK) return SqliteError(rc, db.get(), context);
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_handler(db.get(), &WaitWhileBusy,
                         const_cast<std::atomic<bool>*>(cancel));
    if (cancel != nullptr) {
      sqlite3_progress_handler(db.get(), kProgressSteps,
                               &InterruptWhenCancelled,
                               const_cast<std::atomic<bool>*>(cancel));
    }
    rc = sqlite3_create_function_v2(
        db.get(), "dsar_phone", 1,
        SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY,
        const_cast<std::string*>(&store.default_phone_region), &DsarPhone,
        nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, db.get(), context);
    Session session(std::move(db), store, cancel);
    // query_only rather than SQLITE_OPEN_READONLY: a read-only connection
    // cannot create the -shm file of a WAL database.
    if (read_only) RETURN_IF_ERROR(session.Exec("PRAGMA query_only = 1"));
    return session;
  }

  // Runs one statement that returns no rows (BEGIN, COMMIT, a PRAGMA),
  // prepared once per session like any other.
  absl::Status Exec(const std::string& sql) {
    ASSIGN_OR_RETURN(Statement statement, Prepare(sql));
    int rc = sqlite3_step(statement.get());
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Error(rc, sql);
    return absl::OkStatus();
  }

  // Begins a transaction with `begin` ("BEGIN" or "BEGIN IMMEDIATE") and
  // reads the schema's version as its first statement, so from the
  // snapshot the rest of the transaction sees: the columns remembered by
  // table_columns() are forgotten when another connection changed the
  // schema since. (Read outside the transaction, the version would cost a
  // lock of its own and could change before the transaction began.)
  absl::Status Begin(const std::string& begin) {
    RETURN_IF_ERROR(Exec(begin));
    absl::StatusOr<int64_t> version = ReadSchemaVersion();
    if (!version.ok()) {
      Rollback();
      return version.status();
    }
    if (schema_version_ >= 0 && *version != schema_version_) {
      // SQLite prepares a statement again when it runs after a schema
      // change, but callers read a statement's columns before its first
      // step: prepared statements go with the remembered columns.
      table_columns_.clear();
      ForgetPreparedStatements();
    }
    schema_version_ = *version;
    return absl::OkStatus();
  }

  // The columns of the tables TableColumns read on this connection, valid
  // within a transaction opened by Begin().
  absl::flat_hash_map<std::string, std::vector<Column>>& table_columns() {
    return table_columns_;
  }

  // The statement for `sql`, prepared once per session and reset after each
  // use (the same text in use twice at once gets a second, uncached one).
  absl::StatusOr<Statement> Prepare(const std::string& sql) {
    auto cached = statements_->find(sql);
    if (cached != statements_->end() && !cached->second.in_use) {
      cached->second.in_use = true;
      return Statement(cached->second.statement,
                       StatementReleaser{&cached->second.in_use});
    }
    bool cache = cached == statements_->end() &&
                 statements_->size() < kStatementCacheSize;
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(
        db_.get(), sql.c_str(), static_cast<int>(sql.size()),
        cache ? SQLITE_PREPARE_PERSISTENT : 0, &raw, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(raw);
      return Error(rc, sql);
    }
    if (!cache) return Statement(raw);
    CachedStatement& entry = (*statements_)[sql];
    entry.statement = raw;
    entry.in_use = true;
    return Statement(raw, StatementReleaser{&entry.in_use});
  }

  // `rc` as a status (SqliteError); CANCELLED when the statement was
  // interrupted, or gave up waiting for a lock, because of the cancel flag.
  absl::Status Error(int rc, absl::string_view what) {
    int primary = rc & 0xff;
    if ((primary == SQLITE_INTERRUPT || primary == SQLITE_BUSY) &&
        internal::Cancelled(cancel_)) {
      return internal::CancelledError(store_->name);
    }
    return SqliteError(
        rc, db_.get(),
        absl::StrCat("store ", store_->name, " (", store_->path, "): ", what));
  }

  sqlite3* db() { return db_.get(); }

  // Rolls back the open transaction, if any, even when cancelled; the
  // connection stays interruptible by the cancel flag afterwards (the pool
  // may hand it out again).
  void Rollback() {
    sqlite3_progress_handler(db_.get(), 0, nullptr, nullptr);
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    if (cancel_ != nullptr) {
      sqlite3_progress_handler(db_.get(), kProgressSteps,
                               &InterruptWhenCancelled,
                               const_cast<std::atomic<bool>*>(cancel_));
    }
  }

 private:
  Session(Db db, const StoreSpec& store, const std::atomic<bool>* cancel)
      : db_(std::move(db)), store_(&store), cancel_(cancel) {}

  absl::StatusOr<int64_t> ReadSchemaVersion() {
    const std::string sql = "PRAGMA schema_version";
    ASSIGN_OR_RETURN(Statement statement, Prepare(sql));
    int rc = sqlite3_step(statement.get());
    if (rc != SQLITE_ROW) return Error(rc, sql);
    return sqlite3_column_int64(statement.get(), 0);
  }

  // Finalizes the cached statements not in use (none is, between
  // transactions).
  void ForgetPreparedStatements() {
    for (auto it = statements_->begin(); it != statements_->end();) {
      if (it->second.in_use) {
        ++it;
        continue;
      }
      sqlite3_finalize(it->second.statement);
      statements_->erase(it++);
    }
  }

  struct CachedStatement {
    sqlite3_stmt* statement = nullptr;
    bool in_use = false;
  };
  struct StatementsFinalizer {
    void operator()(
        absl::node_hash_map<std::string, CachedStatement>* statements) const {
      for (auto& [sql, entry] : *statements) sqlite3_finalize(entry.statement);
      delete statements;
    }
  };

  Db db_;
  const StoreSpec* store_;
  const std::atomic<bool>* cancel_;
  absl::flat_hash_map<std::string, std::vector<Column>> table_columns_;
  // What Begin() last read; -1 before the first transaction.
  int64_t schema_version_ = -1;
  // Declared after db_, so finalized before the connection closes. Nodes
  // are stable: a Statement points at its entry's in_use.
  std::unique_ptr<absl::node_hash_map<std::string, CachedStatement>,
                  StatementsFinalizer>
      statements_{new absl::node_hash_map<std::string, CachedStatement>};
};

}  // namespace

// Idle connections of one store, for reuse (sqlite.h). Thread-safe.
class SqliteSessionPool {
 public:
  SqliteSessionPool(const StoreSpec& store, const std::atomic<bool>* cancel)
      : store_(store), cancel_(cancel) {}

  // A connection to the store, read-only (PRAGMA query_only) or not; back
  // to the pool when the handle goes, unless inside a transaction. A kept
  // connection is only reused on the same file: one whose path now names
  // another file (replaced, restored from a backup) is closed.
  class Handle {
   public:
    Handle(SqliteSessionPool* pool, std::unique_ptr<Session> session,
           FileId file, bool read_only)
        : pool_(pool),
          session_(std::move(session)),
          file_(file),
          read_only_(read_only) {}
    Handle(Handle&&) = default;
    ~Handle() {
      if (session_ != nullptr) {
        pool_->Release(std::move(session_), file_, read_only_);
      }
    }
    Session& operator*() { return *session_; }
    Session* operator->() { return session_.get(); }

   private:
    SqliteSessionPool* pool_;
    std::unique_ptr<Session> session_;
    FileId file_;
    bool read_only_;
  };

  absl::StatusOr<Handle> Acquire(bool read_only) {
    struct stat info;
    FileId file{};
    if (::stat(store_.path.c_str(), &info) == 0) {
      file = {info.st_dev, info.st_ino};
      std::lock_guard<std::mutex> lock(mu_);
      std::vector<Idle>& idle = idle_[read_only ? 1 : 0];
      while (!idle.empty()) {
        Idle last = std::move(idle.back());
        idle.pop_back();
        // Another file at the path now: the connection goes.
        if (!(last.file == file)) continue;
        return Handle(this, std::move(last.session), file, read_only);
      }
    }
    // Opening reports a missing file as Session::Open says.
    ASSIGN_OR_RETURN(Session session,
                     Session::Open(store_, read_only, cancel_));
    return Handle(this, std::make_unique<Session>(std::move(session)), file,
                  read_only);
  }

 private:
  struct Idle {
    FileId file;
    std::unique_ptr<Session> session;
  };

  // Connections kept idle per kind; more are closed.
  static constexpr size_t kMaxIdle = 8;

  void Release(std::unique_ptr<Session> session, FileId file, bool read_only) {
    if (file.inode == 0 || sqlite3_get_autocommit(session->db()) == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Idle>& idle = idle_[read_only ? 1 : 0];
    if (idle.size() < kMaxIdle) {
      idle.push_back({file, std::move(session)});
    }
  }

  const StoreSpec& store_;
  const std::atomic<bool>* const cancel_;
  std::mutex mu_;
  std::vector<Idle> idle_[2];  // [0] read-write, [1] read-only.
};

namespace {

using Binding = std::variant<std::string, int64_t>;

// A WHERE clause selecting the subject's rows of one table.
struct RowFilter {
  std::string sql;
  std::vector<Binding> bindings;
};

// The columns of `table`, in order. NOT_FOUND when there is no such table
// (the inventory and the schema disagree).
absl::StatusOr<std::vector<Column>> TableColumns(Session& session,
                                                 const StoreSpec& store,
                                                 const std::string& table) {
  auto known = session.table_columns().find(table);
  if (known != session.table_columns().end()) return known->second;
  const std::string sql = "SELECT name, type FROM pragma_table_info(?)";
  ASSIGN_OR_RETURN(Statement statement, session.Prepare(sql));
  sqlite3_bind_text(statement.get(), 1, table.data(),
                    static_cast<int>(table.size()), SQLITE_TRANSIENT);
  std::vector<Column> columns;
  int rc;
  while ((rc = sqlite3_step(statement.get())) == SQLITE_ROW) {
    const char* name =
        reinterpret_cast<const char*>(sqlite3_column_text(statement.get(), 0));
    const char* type =
        reinterpret_cast<const char*>(sqlite3_column_text(statement.get(), 1));
    if (name == nullptr) continue;
    columns.push_back({name, AffinityOf(type == nullptr ? "" : type)});
  }
  if (rc != SQLITE_DONE) return session.Error(rc, sql);
  if (columns.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "store ", store.name, " (", store.path, "): no such table: ", table));
  }
  session.table_columns()[table] = columns;
  return columns;
}

// The column of `columns` named `name` (SQLite names ignore ASCII case).
const Column* FindColumn(const std::vector<Column>& columns,
                         const std::string& name) {
  for (const Column& column : columns) {
    if (absl::EqualsIgnoreCase(column.name, name)) return &column;
  }
  return nullptr;
}

// The SQL expression that strips the separators people write phone numbers
// with from `column`. It uses built-in functions only, so an index on it
// works for every program that writes the table; docs/inventory.md gives the
// CREATE INDEX statement, which must spell the expression the same way.
std::string PhoneDigitsSql(const std::string& column) {
  std::string sql = QuoteIdentifier(column);
  for (const char* separator : {" ", "-", ".", "(", ")", "/"}) {
    sql = absl::StrCat("replace(", sql, ", '", separator, "', '')");
  }
  return sql;
}

// Appends `values` to `filter` as bound parameters; returns "(?, ...)".
std::string BindList(const std::vector<Binding>& values, RowFilter* filter) {
  std::vector<std::string> placeholders(values.size(), "?");
  filter->bindings.insert(filter->bindings.end(), values.begin(), values.end());
  return absl::StrCat("(", absl::StrJoin(placeholders, ", "), ")");
}

// The WHERE term finding `values` (canonical) of identity `key` in
// `column`, written so that an index serves it:
//   email, declared canonical   "email" IN (...)          plain index
//   email                       lower("email") IN (...)   index on lower()
//   phone, declared canonical   "phone" IN (...)          plain index
//   phone                       <digits>("phone") IN (written forms) AND
//                               dsar_phone("phone") IN (...)
//                               index on the digits expression; dsar_phone
//                               confirms each candidate with the normaliser
//   other keys                  "col" IN (...)            plain index
//
// Values of other keys are bound by the column's affinity, so that SQLite
// converts none of them: an INTEGER, REAL or NUMERIC column is compared
// with a canonical integer only ("42" as 42; "007", "+8", "9.0" and "1e1"
// would be converted to 7, 8, 9 and 10, so they match nothing there); a
// TEXT column with the text; an untyped column with both the text and,
// when canonical, the integer. nullopt when no value can match.
std::optional<std::string> IdentityTerm(const CollectionSpec& collection,
                                        const std::string& key,
                                        const Column& column,
                                        const std::set<std::string>& values,
                                        RowFilter* filter) {
  bool canonical = collection.canonical_identities.count(key) > 0;
  if (key == kPhoneKey && !canonical) {
    std::vector<Binding> forms;
    std::vector<Binding> numbers;
    for (const std::string& value : values) {
      for (std::string& form : PhoneLookupForms(value)) {
        forms.push_back(std::move(form));
      }
      numbers.push_back(value);
    }
    std::string term = absl::StrCat("(", PhoneDigitsSql(column.name), " IN ");
    absl::StrAppend(&term, BindList(forms, filter), " AND dsar_phone(",
                    QuoteIdentifier(column.name), ") IN ");
    absl::StrAppend(&term, BindList(numbers, filter), ")");
    return term;
  }
  std::vector<Binding> bindings;
  bool numeric = column.affinity == Affinity::kInteger ||
                 column.affinity == Affinity::kReal ||
                 column.affinity == Affinity::kNumeric;
  for (const std::string& value : values) {
    int64_t number = 0;
    bool integer = key != kEmailKey && key != kPhoneKey &&
                   ParseCanonicalInt64(value, &number);
    if (!numeric) bindings.push_back(value);
    if (integer && column.affinity != Affinity::kText) {
      bindings.push_back(number);
    }
  }
  if (bindings.empty()) return std::nullopt;
  std::string target =
      key == kEmailKey && !canonical
          ? absl::StrCat("lower(", QuoteIdentifier(column.name), ")")
          : QuoteIdentifier(column.name);
  return absl::StrCat(target, " IN ", BindList(bindings, filter));
}

// The filter selecting the subject's rows of `collection`; nullopt when no
// given identity can match there (no key this collection knows, or only
// values its columns cannot hold). NOT_FOUND when the table or one of its
// identity columns does not exist.
absl::StatusOr<std::optional<RowFilter>> BuildRowFilter(
    Session& session, const StoreSpec& store, const CollectionSpec& collection,
    const IdentityMatcher& matcher) {
  ASSIGN_OR_RETURN(std::vector<Column> columns,
                   TableColumns(session, store, collection.name));
  RowFilter filter;
  std::vector<std::string> terms;
  for (const auto& [key, name] : collection.identity_fields) {
    const Column* column = FindColumn(columns, name);
    if (column == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "store ", store.name, " (", store.path, "): table ", collection.name,
          " has no column ", name, " (identity field of ", key, ")"));
    }
    const std::set<std::string>& values = matcher.ValuesFor(key);
    if (values.empty()) continue;
    std::optional<std::string> term =
        IdentityTerm(collection, key, *column, values, &filter);
    if (term.has_value()) terms.push_back(*std::move(term));
  }
  if (terms.empty()) return std::optional<RowFilter>();
  filter.sql = absl::StrJoin(terms, " OR ");
  return std::optional<RowFilter>(std::move(filter));
}

// Prepares `sql` and binds `bindings` to its parameters, in order.
absl::StatusOr<Statement> PrepareBound(Session& session, const std::string& sql,
                                       const std::vector<Binding>& bindings) {
  ASSIGN_OR_RETURN(Statement statement, session.Prepare(sql));
  for (size_t i = 0; i < bindings.size(); ++i) {
    int index = static_cast<int>(i) + 1;
    const Binding& binding = bindings[i];
    int rc;
    if (const auto* text = std::get_if<std::string>(&binding)) {
      rc = sqlite3_bind_text(statement.get(), index, text->data(),
                             static_cast<int>(text->size()), SQLITE_TRANSIENT);
    } else {
      rc = sqlite3_bind_int64(statement.get(), index,
                              std::get<int64_t>(binding));
    }
    if (rc != SQLITE_OK) return session.Error(rc, sql);
  }
  return statement;
}

absl::StatusOr<Statement> PrepareFiltered(Session& session,
                                          const std::string& sql,
                                          const RowFilter& filter) {
  return PrepareBound(session, sql, filter.bindings);
}

// Sets `values` (column -> value) on the rows of `table` that `filter`
// selects and that hold another value in at least one of those columns;
// returns how many rows changed. Values are compared as SQLite stores them:
// with the column's affinity (an INTEGER column holding 42 equals '42') but
// byte for byte (COLLATE BINARY, so a change of case is a change).
absl::StatusOr<int64_t> UpdateMatchingRows(
    Session& session, const std::string& table, const RowFilter& filter,
    const std::vector<std::pair<std::string, Binding>>& values) {
  std::vector<std::string> assignments;
  std::vector<std::string> differences;
  std::vector<Binding> bindings;
  for (const auto& [column, value] : values) {
    assignments.push_back(absl::StrCat(QuoteIdentifier(column), " = ?"));
    differences.push_back(
        absl::StrCat(QuoteIdentifier(column), " COLLATE BINARY IS NOT ?"));
    bindings.push_back(value);
  }
  bindings.insert(bindings.end(), filter.bindings.begin(),
                  filter.bindings.end());
  for (const auto& [column, value] : values) bindings.push_back(value);
  std::string sql =
      absl::StrCat("UPDATE ", QuoteIdentifier(table), " SET ",
                   absl::StrJoin(assignments, ", "), " WHERE (", filter.sql,
                   ") AND (", absl::StrJoin(differences, " OR "), ")");
  ASSIGN_OR_RETURN(Statement statement, PrepareBound(session, sql, bindings));
  int rc = sqlite3_step(statement.get());
  if (rc != SQLITE_DONE) return session.Error(rc, sql);
  return static_cast<int64_t>(sqlite3_changes(session.db()));
}

// Runs `body` in one IMMEDIATE transaction on a read-write connection,
// committing when it succeeds and rolling back when it fails (or is
// cancelled through `cancel`, which may be null).
absl::StatusOr<int64_t> InWriteTransaction(
    SqliteSessionPool& sessions,
    const std::function<absl::StatusOr<int64_t>(Session&)>& body) {
  ASSIGN_OR_RETURN(SqliteSessionPool::Handle handle,
                   sessions.Acquire(/*read_only=*/false));
  Session& session = *handle;
  // IMMEDIATE takes the write lock up front (waiting up to the busy timeout)
  // instead of failing halfway when a reader upgrades.
  RETURN_IF_ERROR(session.Begin("BEGIN IMMEDIATE"));
  absl::StatusOr<int64_t> result = body(session);
  absl::Status status = result.status();
  if (status.ok()) status = session.Exec("COMMIT");
  if (!status.ok()) {
    // Closing the connection would roll back too; this says so explicitly.
    session.Rollback();
    return status;
  }
  return result;
}

nlohmann::ordered_json ColumnAsJson(sqlite3_stmt* statement, int i) {
  switch (sqlite3_column_type(statement, i)) {
    case SQLITE_INTEGER:
      return sqlite3_column_int64(statement, i);
    case SQLITE_FLOAT:
      return sqlite3_column_double(statement, i);
    case SQLITE_TEXT: {
      const char* text =
          reinterpret_cast<const char*>(sqlite3_column_text(statement, i));
      return std::string(text, sqlite3_column_bytes(statement, i));
    }
    case SQLITE_BLOB: {
      // JSON has no bytes; base64 keeps them exact.
      const char* blob =
          static_cast<const char*>(sqlite3_column_blob(statement, i));
      return absl::Base64Escape(
          absl::string_view(blob, sqlite3_column_bytes(statement, i)));
    }
    default:
      return nullptr;
  }
}

// The column's value as an identity value; nullopt for NULL, blobs and
// fractional numbers.
std::optional<std::string> ColumnAsIdentity(sqlite3_stmt* statement, int i) {
  switch (sqlite3_column_type(statement, i)) {
    case SQLITE_INTEGER:
      return absl::StrCat(sqlite3_column_int64(statement, i));
    case SQLITE_TEXT: {
      const char* text =
          reinterpret_cast<const char*>(sqlite3_column_text(statement, i));
      return std::string(text, sqlite3_column_bytes(statement, i));
    }
    case SQLITE_FLOAT: {
      double value = sqlite3_column_double(statement, i);
      auto whole = static_cast<int64_t>(value);
      if (static_cast<double>(whole) == value) return absl::StrCat(whole);
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

// Refuses (Identity.Conflict) when the identities given for the subject
// match different rows of `collection` (IdentityConflictDetector). Reads
// only the identity columns of the rows `filter` selects.
absl::Status CheckIdentityConflict(Session& session, const StoreSpec& store,
                                   const CollectionSpec& collection,
                                   const RowFilter& filter,
                                   const IdentityMatcher& matcher) {
  std::vector<std::pair<std::string, std::string>> given;  // key, column
  for (const auto& [key, column] : collection.identity_fields) {
    if (!matcher.ValuesFor(key).empty()) given.emplace_back(key, column);
  }
  if (given.size() < 2) return absl::OkStatus();
  std::vector<std::string> columns;
  for (const auto& [key, column] : given) {
    columns.push_back(QuoteIdentifier(column));
  }
  std::string sql =
      absl::StrCat("SELECT ", absl::StrJoin(columns, ", "), " FROM ",
                   QuoteIdentifier(collection.name), " WHERE ", filter.sql);
  ASSIGN_OR_RETURN(Statement statement, PrepareFiltered(session, sql, filter));
  IdentityConflictDetector detector;
  int rc;
  while ((rc = sqlite3_step(statement.get())) == SQLITE_ROW) {
    std::set<std::string> matched;
    for (size_t i = 0; i < given.size(); ++i) {
      std::optional<std::string> value =
          ColumnAsIdentity(statement.get(), static_cast<int>(i));
      if (value.has_value() && matcher.Matches(given[i].first, *value)) {
        matched.insert(given[i].first);
      }
    }
    detector.AddRecord(matched);
  }
  if (rc != SQLITE_DONE) return session.Error(rc, sql);
  return detector.Check(store.name, collection.name);
}

// The filter of every collection (by index; nullopt where no identity can
// match), once no collection has an identity conflict. Call inside the
// operation's transaction, before reading or changing anything else.
absl::StatusOr<std::vector<std::optional<RowFilter>>> SubjectFilters(
    Session& session, const StoreSpec& store, const IdentityMatcher& matcher) {
  std::vector<std::optional<RowFilter>> filters;
  for (const CollectionSpec& collection : store.collections) {
    ASSIGN_OR_RETURN(std::optional<RowFilter> filter,
                     BuildRowFilter(session, store, collection, matcher));
    if (filter.has_value()) {
      RETURN_IF_ERROR(
          CheckIdentityConflict(session, store, collection, *filter, matcher));
    }
    filters.push_back(std::move(filter));
  }
  return filters;
}

// Reads every row of the store that matches `identities`, adding discovered
// identities to the result and, when `writer` is set, each row to the export.
// CANCELLED once `cancel` (may be null) is set.
absl::StatusOr<ConnectorResult> ScanMatchingRows(
    const StoreSpec& store, SqliteSessionPool& sessions,
    const std::atomic<bool>* cancel, const std::vector<Identity>& identities,
    ExportWriter* writer) {
  IdentityMatcher matcher(identities, store.default_phone_region);
  DiscoveredIdentities discovered(identities, matcher);
  ConnectorResult result;
  ASSIGN_OR_RETURN(SqliteSessionPool::Handle handle,
                   sessions.Acquire(/*read_only=*/true));
  Session& session = *handle;
  // One read transaction: every table is read from the same snapshot.
  RETURN_IF_ERROR(session.Begin("BEGIN"));
  ASSIGN_OR_RETURN(std::vector<std::optional<RowFilter>> filters,
                   SubjectFilters(session, store, matcher));
  for (size_t c = 0; c < store.collections.size(); ++c) {
    const CollectionSpec& collection = store.collections[c];
    const std::optional<RowFilter>& filter = filters[c];
    if (!filter.has_value()) continue;
    std::string sql =
        absl::StrCat("SELECT * FROM ", QuoteIdentifier(collection.name),
                     " WHERE ", filter->sql);
    ASSIGN_OR_RETURN(Statement statement,
                     PrepareFiltered(session, sql, *filter));
    sqlite3_stmt* stmt = statement.get();

    // Identity key -> result column (SQLite names compare ignoring case).
    std::vector<std::pair<std::string, int>> identity_columns;
    int column_count = sqlite3_column_count(stmt);
    for (const auto& [key, column] : collection.identity_fields) {
      for (int i = 0; i < column_count; ++i) {
        if (absl::EqualsIgnoreCase(sqlite3_column_name(stmt, i), column)) {
          identity_columns.emplace_back(key, i);
          break;
        }
      }
    }

    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      ++result.record_count;
      for (const auto& [key, i] : identity_columns) {
        std::optional<std::string> value = ColumnAsIdentity(stmt, i);
        if (value.has_value()) discovered.Add(key, std::move(*value));
      }
      if (writer == nullptr) continue;
      nlohmann::ordered_json row = nlohmann::ordered_json::object();
      for (int i = 0; i < column_count; ++i) {
        row[sqlite3_column_name(stmt, i)] = ColumnAsJson(stmt, i);
      }
      RETURN_IF_ERROR(writer->AddRecord(collection.name, row));
    }
    if (rc != SQLITE_DONE) return session.Error(rc, sql);
  }
  RETURN_IF_ERROR(session.Exec("COMMIT"));
  result.discovered = discovered.Take();
  return result;
}

// Masks the rows of `collection` that `filter` selects, as its masks say
// (masking.h): reads each row's masked fields, then writes, row by row, the
// ones whose value changes. Counts into `erasure`.
absl::Status MaskMatchingRows(Session& session,
                              const CollectionSpec& collection,
                              const RowFilter& filter, const std::string& key,
                              CollectionErasure* erasure) {
  std::vector<std::string> fields;
  std::vector<std::string> selected = {"rowid"};
  for (const auto& [field, mask] : collection.masks) {
    if (mask.strategy == MaskStrategy::kKeep) continue;
    fields.push_back(field);
    selected.push_back(QuoteIdentifier(field));
  }
  if (fields.empty()) return absl::OkStatus();
  std::string sql =
      absl::StrCat("SELECT ", absl::StrJoin(selected, ", "), " FROM ",
                   QuoteIdentifier(collection.name), " WHERE ", filter.sql);
  // Read first, then write: the writes change what the filter selects.
  std::vector<std::pair<int64_t, std::vector<std::optional<std::string>>>> rows;
  {
    ASSIGN_OR_RETURN(Statement statement,
                     PrepareFiltered(session, sql, filter));
    int rc;
    while ((rc = sqlite3_step(statement.get())) == SQLITE_ROW) {
      std::vector<std::optional<std::string>> values;
      for (size_t f = 0; f < fields.size(); ++f) {
        int i = static_cast<int>(f) + 1;
        if (sqlite3_column_type(statement.get(), i) == SQLITE_NULL) {
          values.push_back(std::nullopt);
          continue;
        }
        const char* text = reinterpret_cast<const char*>(
            sqlite3_column_text(statement.get(), i));
        values.push_back(
            std::string(text, sqlite3_column_bytes(statement.get(), i)));
      }
      rows.emplace_back(sqlite3_column_int64(statement.get(), 0),
                        std::move(values));
    }
    if (rc != SQLITE_DONE) return session.Error(rc, sql);
  }
  for (const auto& [rowid, values] : rows) {
    std::vector<std::string> assignments;
    std::vector<Binding> bindings;
    for (size_t f = 0; f < fields.size(); ++f) {
      MaskedValue masked =
          MaskValue(collection.masks.at(fields[f]), values[f], key);
      if (!masked.changes) continue;
      if (masked.value.has_value()) {
        assignments.push_back(absl::StrCat(QuoteIdentifier(fields[f]), " = ?"));
        bindings.push_back(*std::move(masked.value));
      } else {
        assignments.push_back(
            absl::StrCat(QuoteIdentifier(fields[f]), " = NULL"));
      }
    }
    if (assignments.empty()) continue;
    bindings.push_back(rowid);
    std::string update =
        absl::StrCat("UPDATE ", QuoteIdentifier(collection.name), " SET ",
                     absl::StrJoin(assignments, ", "), " WHERE rowid = ?");
    ASSIGN_OR_RETURN(Statement statement,
                     PrepareBound(session, update, bindings));
    int rc = sqlite3_step(statement.get());
    if (rc != SQLITE_DONE) return session.Error(rc, update);
    ++erasure->rows_masked;
    erasure->fields_masked += static_cast<int64_t>(assignments.size());
  }
  return absl::OkStatus();
}

}  // namespace

SqliteConnector::SqliteConnector(StoreSpec store,
                                 const std::atomic<bool>* cancel)
    : store_(std::move(store)),
      cancel_(cancel),
      sessions_(std::make_unique<SqliteSessionPool>(store_, cancel_)) {}

SqliteConnector::~SqliteConnector() = default;

absl::StatusOr<ConnectorResult> SqliteConnector::Export(
    const std::vector<Identity>& identities, ByteSink& sink) {
  ExportWriter writer(sink, store_.name);
  ASSIGN_OR_RETURN(
      ConnectorResult result,
      ScanMatchingRows(store_, *sessions_, cancel_, identities, &writer));
  RETURN_IF_ERROR(writer.Finish());
  return result;
}

absl::StatusOr<ConnectorResult> SqliteConnector::Discover(
    const std::vector<Identity>& identities) {
  return ScanMatchingRows(store_, *sessions_, cancel_, identities,
                          /*writer=*/nullptr);
}

absl::StatusOr<std::vector<std::string>> SqliteConnector::ExplainLookup(
    const std::vector<Identity>& identities) {
  IdentityMatcher matcher(identities, store_.default_phone_region);
  ASSIGN_OR_RETURN(Session session,
                   Session::Open(store_, /*read_only=*/true, cancel_));
  std::vector<std::string> plan;
  for (const CollectionSpec& collection : store_.collections) {
    ASSIGN_OR_RETURN(std::optional<RowFilter> filter,
                     BuildRowFilter(session, store_, collection, matcher));
    if (!filter.has_value()) continue;
    std::string sql =
        absl::StrCat("EXPLAIN QUERY PLAN SELECT * FROM ",
                     QuoteIdentifier(collection.name), " WHERE ", filter->sql);
    ASSIGN_OR_RETURN(Statement statement,
                     PrepareFiltered(session, sql, *filter));
    int rc;
    while ((rc = sqlite3_step(statement.get())) == SQLITE_ROW) {
      const unsigned char* detail = sqlite3_column_text(statement.get(), 3);
      plan.push_back(absl::StrCat(
          collection.name, ": ",
          detail == nullptr ? "" : reinterpret_cast<const char*>(detail)));
    }
    if (rc != SQLITE_DONE) return session.Error(rc, sql);
  }
  return plan;
}

absl::StatusOr<std::map<std::string, CollectionShape>> SqliteConnector::Probe(
    int sample_rows) {
  ASSIGN_OR_RETURN(Session session,
                   Session::Open(store_, /*read_only=*/true, cancel_));
  std::map<std::string, CollectionShape> shapes;
  for (const CollectionSpec& collection : store_.collections) {
    CollectionShape& shape = shapes[collection.name];
    const std::string pragma = absl::StrCat(
        "PRAGMA table_info(", QuoteIdentifier(collection.name), ")");
    ASSIGN_OR_RETURN(Statement columns, session.Prepare(pragma));
    std::vector<std::string> names;
    int rc;
    while ((rc = sqlite3_step(columns.get())) == SQLITE_ROW) {
      names.push_back(
          reinterpret_cast<const char*>(sqlite3_column_text(columns.get(), 1)));
    }
    if (rc != SQLITE_DONE) return session.Error(rc, pragma);
    shape.exists = !names.empty();
    if (!shape.exists) continue;
    std::string select = "SELECT ";
    for (size_t i = 0; i < names.size(); ++i) {
      absl::StrAppend(&select, i == 0 ? "" : ", ", QuoteIdentifier(names[i]));
      shape.columns[names[i]];
    }
    absl::StrAppend(&select, " FROM ", QuoteIdentifier(collection.name),
                    " LIMIT ", sample_rows);
    ASSIGN_OR_RETURN(Statement rows, session.Prepare(select));
    while ((rc = sqlite3_step(rows.get())) == SQLITE_ROW) {
      for (size_t i = 0; i < names.size(); ++i) {
        const unsigned char* text =
            sqlite3_column_text(rows.get(), static_cast<int>(i));
        if (text != nullptr) {
          shape.columns[names[i]].emplace_back(
              reinterpret_cast<const char*>(text));
        }
      }
    }
    if (rc != SQLITE_DONE) return session.Error(rc, select);
  }
  return shapes;
}

absl::Status SqliteConnector::ScanRecords(const RecordVisitor& visit) {
  ASSIGN_OR_RETURN(Session session,
                   Session::Open(store_, /*read_only=*/true, cancel_));
  // A deferred read transaction: its snapshot starts at the first read and
  // serves every table.
  RETURN_IF_ERROR(session.Exec("BEGIN"));
  for (const CollectionSpec& collection : store_.collections) {
    std::string key = collection.record_key.empty()
                          ? std::string("rowid")
                          : QuoteIdentifier(collection.record_key);
    std::string sql = absl::StrCat("SELECT ", key, ", * FROM ",
                                   QuoteIdentifier(collection.name));
    ASSIGN_OR_RETURN(Statement statement, session.Prepare(sql));
    sqlite3_stmt* stmt = statement.get();
    const int column_count = sqlite3_column_count(stmt);
    ScannedRecord record;
    for (int i = 1; i < column_count; ++i) {
      record.fields.push_back({sqlite3_column_name(stmt, i), std::nullopt});
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      const unsigned char* key_text = sqlite3_column_text(stmt, 0);
      record.key = key_text == nullptr
                       ? std::string()
                       : std::string(reinterpret_cast<const char*>(key_text),
                                     sqlite3_column_bytes(stmt, 0));
      for (int i = 1; i < column_count; ++i) {
        ScannedField& field = record.fields[i - 1];
        const unsigned char* text = sqlite3_column_text(stmt, i);
        if (text == nullptr) {
          field.value.reset();
        } else {
          field.value = std::string_view(reinterpret_cast<const char*>(text),
                                         sqlite3_column_bytes(stmt, i));
        }
      }
      RETURN_IF_ERROR(visit(collection, record));
    }
    if (rc != SQLITE_DONE) return session.Error(rc, sql);
  }
  return session.Exec("COMMIT");
}

absl::StatusOr<EraseResult> SqliteConnector::Erase(
    const std::vector<Identity>& identities) {
  std::string key;
  if (UsesHashMask(store_)) {
    ASSIGN_OR_RETURN(key, ReadMaskingKey(store_));
  }
  IdentityMatcher matcher(identities, store_.default_phone_region);
  EraseResult result;
  RETURN_IF_ERROR(
      InWriteTransaction(
          *sessions_,
          [&](Session& session) -> absl::StatusOr<int64_t> {
            ASSIGN_OR_RETURN(std::vector<std::optional<RowFilter>> filters,
                             SubjectFilters(session, store_, matcher));
            result.collections.clear();
            for (size_t c = 0; c < store_.collections.size(); ++c) {
              const CollectionSpec& collection = store_.collections[c];
              result.collections.push_back({collection.name});
              const std::optional<RowFilter>& filter = filters[c];
              if (!filter.has_value()) continue;
              if (collection.mask_on_erase) {
                RETURN_IF_ERROR(MaskMatchingRows(session, collection, *filter,
                                                 key,
                                                 &result.collections.back()));
                continue;
              }
              std::string sql =
                  absl::StrCat("DELETE FROM ", QuoteIdentifier(collection.name),
                               " WHERE ", filter->sql);
              ASSIGN_OR_RETURN(Statement statement,
                               PrepareFiltered(session, sql, *filter));
              int rc = sqlite3_step(statement.get());
              if (rc != SQLITE_DONE) return session.Error(rc, sql);
              result.collections.back().rows_deleted =
                  sqlite3_changes(session.db());
            }
            return result.record_count();
          })
          .status());
  return result;
}

absl::StatusOr<int64_t> SqliteConnector::Rectify(
    const std::vector<Identity>& identities,
    const std::vector<FieldCorrection>& corrections) {
  IdentityMatcher matcher(identities, store_.default_phone_region);
  return InWriteTransaction(
      *sessions_, [&](Session& session) -> absl::StatusOr<int64_t> {
        ASSIGN_OR_RETURN(std::vector<std::optional<RowFilter>> filters,
                         SubjectFilters(session, store_, matcher));
        // Every correction is checked before any row changes.
        std::vector<std::map<std::string, std::string>> updates;
        for (const CollectionSpec& collection : store_.collections) {
          updates.emplace_back();
          bool concerned = false;
          for (const FieldCorrection& correction : corrections) {
            if (correction.collection.empty() ||
                correction.collection == collection.name) {
              concerned = true;
            }
          }
          if (!concerned) continue;
          ASSIGN_OR_RETURN(std::vector<Column> columns,
                           TableColumns(session, store_, collection.name));
          auto has_column = [&](const std::string& field) {
            return FindColumn(columns, field) != nullptr;
          };
          ASSIGN_OR_RETURN(
              CollectionCorrections resolved,
              ResolveCorrections(store_, collection, corrections, has_column));
          updates.back() = std::move(resolved.updates);
        }
        int64_t changed = 0;
        for (size_t i = 0; i < store_.collections.size(); ++i) {
          if (updates[i].empty()) continue;
          const CollectionSpec& collection = store_.collections[i];
          const std::optional<RowFilter>& filter = filters[i];
          if (!filter.has_value()) continue;
          // Bound as text: the column's affinity decides how it is stored,
          // so "43" becomes the integer 43 in an INTEGER column and stays
          // text in a TEXT or untyped one.
          std::vector<std::pair<std::string, Binding>> values;
          for (const auto& [field, value] : updates[i]) {
            values.emplace_back(field, value);
          }
          ASSIGN_OR_RETURN(
              int64_t rows,
              UpdateMatchingRows(session, collection.name, *filter, values));
          changed += rows;
        }
        return changed;
      });
}

absl::StatusOr<int64_t> SqliteConnector::SetProcessingFlag(
    const std::vector<Identity>& identities, const std::string& flag) {
  RETURN_IF_ERROR(CheckProcessingFlagName(store_.name, flag));
  bool any = false;
  for (const CollectionSpec& collection : store_.collections) {
    if (collection.processing_flags.count(flag) > 0) any = true;
  }
  if (!any) return 0;  // Nothing to flag here; the store is not opened.
  IdentityMatcher matcher(identities, store_.default_phone_region);
  return InWriteTransaction(
      *sessions_, [&](Session& session) -> absl::StatusOr<int64_t> {
        ASSIGN_OR_RETURN(std::vector<std::optional<RowFilter>> filters,
                         SubjectFilters(session, store_, matcher));
        int64_t flagged = 0;
        for (size_t c = 0; c < store_.collections.size(); ++c) {
          const CollectionSpec& collection = store_.collections[c];
          auto it = collection.processing_flags.find(flag);
          if (it == collection.processing_flags.end()) continue;
          const std::optional<RowFilter>& filter = filters[c];
          if (!filter.has_value()) continue;
          ASSIGN_OR_RETURN(
              int64_t rows,
              UpdateMatchingRows(session, collection.name, *filter,
                                 {{it->second, Binding(int64_t{1})}}));
          flagged += rows;
        }
        return flagged;
      });
}

}  // namespace dsar
