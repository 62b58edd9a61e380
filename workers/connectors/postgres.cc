#include "workers/connectors/postgres.h"

#include <libpq-fe.h>
#include <poll.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/files.h"
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

// How long the connector waits for the server before it looks at the
// cancel flag again.
constexpr int kCancelPollMs = 50;
constexpr char kConnectTimeoutSeconds[] = "10";
// The separators people write phone numbers with, removed by translate()
// (docs/inventory.md gives the index that must spell it the same way).
constexpr char kPhoneSeparators[] = " -.()/";

// Type OIDs (pg_type.h) the export turns into JSON numbers, booleans,
// objects or base64.
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kJsonOid = 114;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;
constexpr Oid kJsonbOid = 3802;

struct ConnFinisher {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using Conn = std::unique_ptr<PGconn, ConnFinisher>;

struct ResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultClearer>;

// The SQLSTATE of a failed statement as a status whose error name
// (model/connector_errors.h) tells the workflow whether to retry. See
// postgres.h for the table.
absl::Status SqlStateError(absl::string_view sqlstate, std::string message) {
  auto cls = sqlstate.substr(0, 2);
  if (cls == "08" || cls == "40" || sqlstate == "53300" ||
      sqlstate == "55P03" || sqlstate == "57P01" || sqlstate == "57P02" ||
      sqlstate == "57P03" || sqlstate == "57014") {
    return absl::UnavailableError(message);
  }
  if (cls == "53") return absl::ResourceExhaustedError(message);
  if (cls == "28" || sqlstate == "42501" || sqlstate == "25006") {
    return absl::PermissionDeniedError(message);
  }
  if (cls == "23") {
    return WithErrorName(absl::FailedPreconditionError(message),
                         kErrorConstraintViolation);
  }
  if (sqlstate == "42P01" || sqlstate == "42703" || sqlstate == "3F000") {
    return absl::NotFoundError(message);
  }
  if (cls == "22") return absl::InvalidArgumentError(message);
  if (sqlstate == "XX001" || sqlstate == "XX002") {
    return absl::DataLossError(message);
  }
  return absl::InternalError(message);
}

// The server's account of a failed statement, without values: for data
// exceptions (22) and constraint violations (23) the primary message may
// quote the offending value ("invalid input syntax for type integer:
// \"...\""), so only the condition, column and constraint are given.
std::string DescribeError(const PGresult* result) {
  auto field = [&](int code) {
    const char* value = PQresultErrorField(result, code);
    return std::string(value == nullptr ? "" : value);
  };
  std::string sqlstate = field(PG_DIAG_SQLSTATE);
  std::string cls = sqlstate.substr(0, 2);
  if (cls == "22" || cls == "23") {
    std::string text = absl::StrCat(
        cls == "22" ? "data exception" : "integrity constraint violation",
        " (SQLSTATE ", sqlstate, ")");
    if (!field(PG_DIAG_TABLE_NAME).empty()) {
      absl::StrAppend(&text, " in table ", field(PG_DIAG_TABLE_NAME));
    }
    if (!field(PG_DIAG_COLUMN_NAME).empty()) {
      absl::StrAppend(&text, " column ", field(PG_DIAG_COLUMN_NAME));
    }
    if (!field(PG_DIAG_CONSTRAINT_NAME).empty()) {
      absl::StrAppend(&text, " constraint ", field(PG_DIAG_CONSTRAINT_NAME));
    }
    return text;
  }
  return absl::StrCat(field(PG_DIAG_MESSAGE_PRIMARY), " (SQLSTATE ", sqlstate,
                      ")");
}

// The password named by the inventory (first line of password_file, or
// the value of password_env); empty when it names none.
absl::StatusOr<std::string> ReadPassword(const StoreSpec& store) {
  const PostgresConnection& connection = store.connection;
  if (!connection.password_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(connection.password_file);
    if (!text.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "store ", store.name, ": cannot read connection.password_file ",
          connection.password_file, ": ", text.status().message()));
    }
    std::string password(text->substr(0, text->find('\n')));
    if (!password.empty() && password.back() == '\r') password.pop_back();
    return password;
  }
  if (!connection.password_env.empty()) {
    const char* value = std::getenv(connection.password_env.c_str());
    if (value == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("store ", store.name, ": connection.password_env names ",
                       connection.password_env, ", which is not set"));
    }
    return std::string(value);
  }
  return std::string();
}

// One column of a table: its name, type name and pg_type.typcategory
// ('N' numeric, 'S' string, 'B' boolean ...).
struct Column {
  std::string name;
  std::string type;
  char category = 'X';
};

class Session {
 public:
  // Connects to `store`'s server. CANCELLED when `cancel` is set now;
  // UNAVAILABLE when the server cannot be reached, PERMISSION_DENIED when
  // it refuses the login, NOT_FOUND for a database that does not exist.
  static absl::StatusOr<std::unique_ptr<Session>> Open(
      const StoreSpec& store, const std::atomic<bool>* cancel) {
    if (internal::Cancelled(cancel))
      return internal::CancelledError(store.name);
    ASSIGN_OR_RETURN(std::string password, ReadPassword(store));
    const PostgresConnection& connection = store.connection;
    std::vector<std::pair<const char*, std::string>> parameters = {
        {"host", connection.host},
        {"port", connection.port},
        {"dbname", connection.dbname},
        {"user", connection.user},
        {"password", password},
        {"sslmode", connection.sslmode},
        {"sslrootcert", connection.sslrootcert},
        {"connect_timeout", kConnectTimeoutSeconds},
        {"application_name", "dsar-worker"},
        {"client_encoding", "UTF8"},
    };
    std::vector<const char*> keywords;
    std::vector<const char*> values;
    for (const auto& [keyword, value] : parameters) {
      if (value.empty()) continue;
      keywords.push_back(keyword);
      values.push_back(value.c_str());
    }
    keywords.push_back(nullptr);
    values.push_back(nullptr);
    // expand_dbname = 0: dbname is a name, never read as a connection
    // string.
    Conn conn(PQconnectdbParams(keywords.data(), values.data(), 0));
    auto session =
        std::unique_ptr<Session>(new Session(std::move(conn), store, cancel));
    session->password_ = std::move(password);
    if (session->conn_ == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("store ", store.name, ": libpq is out of memory"));
    }
    if (PQstatus(session->conn_.get()) != CONNECTION_OK) {
      std::string detail = session->Scrub(PQerrorMessage(session->conn_.get()));
      absl::StripTrailingAsciiWhitespace(&detail);
      std::string message =
          absl::StrCat("store ", store.name, ": connect to ", connection.host,
                       connection.port.empty() ? "" : ":", connection.port, "/",
                       connection.dbname, ": ", detail);
      if (absl::StrContains(detail, "authentication failed") ||
          absl::StrContains(detail, "no pg_hba.conf entry") ||
          absl::StrContains(detail, "rejects connection")) {
        return absl::PermissionDeniedError(message);
      }
      if (absl::StrContains(detail, "database \"") &&
          absl::StrContains(detail, "does not exist")) {
        return absl::NotFoundError(message);
      }
      return absl::UnavailableError(message);
    }
    session->password_.clear();
    return session;
  }

  ~Session() { password_.assign(password_.size(), '\0'); }

  // Runs `sql` with `params` ($1, $2 ... in text form; nullopt is NULL),
  // waiting for the server kCancelPollMs at a time so that the cancel flag
  // is seen, and sending PQcancel once it is. The result of the last
  // statement; the status of the first error.
  absl::StatusOr<Result> Run(
      const std::string& sql,
      const std::vector<std::optional<std::string>>& params = {}) {
    if (internal::Cancelled(cancel_)) {
      return internal::CancelledError(store_->name);
    }
    std::vector<const char*> values;
    for (const std::optional<std::string>& param : params) {
      if (param.has_value() && param->find('\0') != std::string::npos) {
        // libpq takes C strings: a NUL would silently cut the value.
        return absl::InvalidArgumentError(
            absl::StrCat("store ", store_->name,
                         ": a value holds a NUL byte, which PostgreSQL text "
                         "cannot store"));
      }
      values.push_back(param.has_value() ? param->c_str() : nullptr);
    }
    PGconn* conn = conn_.get();
    if (PQsendQueryParams(conn, sql.c_str(), static_cast<int>(values.size()),
                          nullptr, values.data(), nullptr, nullptr, 0) != 1) {
      return ConnectionError(sql);
    }
    bool cancel_sent = false;
    while (PQisBusy(conn)) {
      if (!cancel_sent && internal::Cancelled(cancel_)) {
        SendCancel();
        cancel_sent = true;
      }
      pollfd wait = {PQsocket(conn), POLLIN, 0};
      ::poll(&wait, 1, kCancelPollMs);
      if (PQconsumeInput(conn) != 1) return ConnectionError(sql);
    }
    Result last;
    absl::Status error;
    while (PGresult* raw = PQgetResult(conn)) {
      Result result(raw);
      ExecStatusType status = PQresultStatus(raw);
      if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK &&
          error.ok()) {
        error = StatementError(raw, sql);
      }
      last = std::move(result);
    }
    if (!error.ok()) return error;
    if (last == nullptr) return ConnectionError(sql);
    return last;
  }

  absl::Status Exec(const std::string& sql) { return Run(sql).status(); }

  // Rolls back the open transaction, if any, even when cancelled. A broken
  // connection rolls back when it closes.
  void Rollback() { Result(PQexec(conn_.get(), "ROLLBACK")); }

  // `name` quoted as an SQL identifier (PQescapeIdentifier).
  std::string Quote(const std::string& name) {
    char* quoted = PQescapeIdentifier(conn_.get(), name.data(), name.size());
    if (quoted == nullptr) return "\"\"";  // Out of memory: names nothing.
    std::string result(quoted);
    PQfreemem(quoted);
    return result;
  }

  // schema.table, quoted.
  std::string Table(const std::string& table) {
    return absl::StrCat(Quote(store_->schema), ".", Quote(table));
  }

  // The columns of `table`, looked up once per session. NOT_FOUND when the
  // schema has no such table.
  absl::StatusOr<const std::vector<Column>*> Columns(const std::string& table) {
    auto cached = columns_.find(table);
    if (cached != columns_.end()) return &cached->second;
    const std::string sql =
        "SELECT a.attname, t.typname, t.typcategory "
        "FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
        "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY a.attnum";
    ASSIGN_OR_RETURN(Result result, Run(sql, {store_->schema, table}));
    std::vector<Column> columns;
    for (int row = 0; row < PQntuples(result.get()); ++row) {
      const char* category = PQgetvalue(result.get(), row, 2);
      columns.push_back({PQgetvalue(result.get(), row, 0),
                         PQgetvalue(result.get(), row, 1),
                         category[0] == '\0' ? 'X' : category[0]});
    }
    if (columns.empty()) {
      return absl::NotFoundError(
          absl::StrCat("store ", store_->name,
                       ": no such table: ", store_->schema, ".", table));
    }
    return &columns_.emplace(table, std::move(columns)).first->second;
  }

  const StoreSpec& store() const { return *store_; }

 private:
  Session(Conn conn, const StoreSpec& store, const std::atomic<bool>* cancel)
      : conn_(std::move(conn)), store_(&store), cancel_(cancel) {}

  void SendCancel() {
    PGcancel* cancel = PQgetCancel(conn_.get());
    if (cancel == nullptr) return;
    char error[256];
    PQcancel(cancel, error, sizeof error);
    PQfreeCancel(cancel);
  }

  // `text` with the password, should a message ever quote it, replaced.
  std::string Scrub(std::string text) const {
    if (password_.empty()) return text;
    return absl::StrReplaceAll(text, {{password_, "<password>"}});
  }

  absl::Status ConnectionError(absl::string_view sql) {
    std::string detail = PQerrorMessage(conn_.get());
    absl::StripTrailingAsciiWhitespace(&detail);
    return absl::UnavailableError(
        absl::StrCat("store ", store_->name, ": connection lost: ", detail));
  }

  absl::Status StatementError(const PGresult* result, absl::string_view sql) {
    const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    std::string state = sqlstate == nullptr ? "" : sqlstate;
    if (state == "57014" && internal::Cancelled(cancel_)) {
      return internal::CancelledError(store_->name);
    }
    return SqlStateError(
        state, absl::StrCat("store ", store_->name, ": ", DescribeError(result),
                            ": ", sql.substr(0, sql.find(" WHERE "))));
  }

  Conn conn_;
  const StoreSpec* store_;
  const std::atomic<bool>* cancel_;
  std::string password_;  // Only until the connection is made.
  std::map<std::string, std::vector<Column>> columns_;
};

const Column* FindColumn(const std::vector<Column>& columns,
                         const std::string& name) {
  for (const Column& column : columns) {
    if (column.name == name) return &column;
  }
  return nullptr;
}

bool IsIntegerType(const Column& column) {
  return column.type == "int2" || column.type == "int4" ||
         column.type == "int8";
}

// A WHERE clause finding the candidates among the subject's rows of one
// table, and its parameters.
struct RowFilter {
  std::string sql;
  std::vector<std::optional<std::string>> params;

  // Appends `value` as the next parameter, cast to `type`; returns "$n".
  std::string Param(std::string value, absl::string_view type) {
    params.push_back(std::move(value));
    return absl::StrCat("$", params.size(), "::", type);
  }
};

// The term finding `values` (canonical) of identity `key` in `column`,
// written so that an index serves it (postgres.h, "Matching"); nullopt
// when no value can be held by the column.
std::optional<std::string> IdentityTerm(Session& session,
                                        const CollectionSpec& collection,
                                        const std::string& key,
                                        const Column& column,
                                        const std::set<std::string>& values,
                                        RowFilter* filter) {
  bool canonical = collection.canonical_identities.count(key) > 0;
  std::string quoted = session.Quote(column.name);
  std::string as_text =
      column.category == 'S' ? quoted : absl::StrCat(quoted, "::text");
  std::vector<std::string> params;
  std::string target;
  if (key == kEmailKey && !canonical) {
    target = absl::StrCat("lower(", as_text, ")");
    for (const std::string& value : values) {
      params.push_back(
          absl::StrCat("lower(", filter->Param(value, "text"), ")"));
    }
  } else if (key == kPhoneKey && !canonical) {
    target =
        absl::StrCat("translate(", as_text, ", '", kPhoneSeparators, "', '')");
    for (const std::string& value : values) {
      for (std::string& form : PhoneLookupForms(value)) {
        params.push_back(filter->Param(std::move(form), "text"));
      }
    }
  } else if (column.category == 'N' && key != kEmailKey && key != kPhoneKey) {
    target = quoted;
    for (const std::string& value : values) {
      int64_t number = 0;
      if (!ParseCanonicalInt64(value, &number)) continue;
      params.push_back(
          filter->Param(value, IsIntegerType(column) ? "int8" : "numeric"));
    }
  } else {
    target = as_text;
    for (const std::string& value : values) {
      params.push_back(filter->Param(value, "text"));
    }
  }
  if (params.empty()) return std::nullopt;
  return absl::StrCat(target, " IN (", absl::StrJoin(params, ", "), ")");
}

// The filter selecting candidate rows of `collection`; nullopt when no given
// identity can match there. NOT_FOUND when the table or one of its identity
// columns does not exist.
absl::StatusOr<std::optional<RowFilter>> BuildRowFilter(
    Session& session, const CollectionSpec& collection,
    const IdentityMatcher& matcher) {
  ASSIGN_OR_RETURN(const std::vector<Column>* columns,
                   session.Columns(collection.name));
  RowFilter filter;
  std::vector<std::string> terms;
  for (const auto& [key, name] : collection.identity_fields) {
    const Column* column = FindColumn(*columns, name);
    if (column == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "store ", session.store().name, ": table ", collection.name,
          " has no column ", name, " (identity field of ", key, ")"));
    }
    // PostgreSQL text cannot hold NUL: such a value matches nothing.
    std::set<std::string> values;
    for (const std::string& value : matcher.ValuesFor(key)) {
      if (value.find('\0') == std::string::npos) values.insert(value);
    }
    if (values.empty()) continue;
    std::optional<std::string> term =
        IdentityTerm(session, collection, key, *column, values, &filter);
    if (term.has_value()) terms.push_back(*std::move(term));
  }
  if (terms.empty()) return std::optional<RowFilter>();
  filter.sql = absl::StrJoin(terms, " OR ");
  return std::optional<RowFilter>(std::move(filter));
}

// A row of the subject, confirmed with the normaliser.
struct MatchedRow {
  std::string ctid;  // Its address; stable while the row is locked.
  // Values of the `extra` columns asked for, as text; nullopt for NULL.
  std::vector<std::optional<std::string>> extra;
};

// The subject's rows of one table.
struct MatchedRows {
  const CollectionSpec* collection = nullptr;
  std::vector<MatchedRow> rows;

  // The rows' ctids as a tid[] literal, a statement parameter.
  std::string CtidArray() const {
    std::vector<std::string> ctids;
    for (const MatchedRow& row : rows) {
      ctids.push_back(absl::StrCat("\"", row.ctid, "\""));
    }
    return absl::StrCat("{", absl::StrJoin(ctids, ","), "}");
  }
};

// Finds the subject's rows of `collection` (locking them FOR UPDATE when
// `lock`), confirms each candidate with `matcher`, and refuses with
// Identity.Conflict when the identities match different rows. `extra`:
// columns whose values to return with each row.
absl::StatusOr<MatchedRows> FindSubjectRows(
    Session& session, const CollectionSpec& collection,
    const IdentityMatcher& matcher, bool lock,
    const std::vector<std::string>& extra = {}) {
  MatchedRows matched;
  matched.collection = &collection;
  ASSIGN_OR_RETURN(std::optional<RowFilter> filter,
                   BuildRowFilter(session, collection, matcher));
  if (!filter.has_value()) return matched;
  std::vector<std::pair<std::string, std::string>> keys;  // key, column
  std::vector<std::string> selected = {"ctid::text"};
  for (const auto& [key, column] : collection.identity_fields) {
    if (matcher.ValuesFor(key).empty()) continue;
    keys.emplace_back(key, column);
    selected.push_back(absl::StrCat(session.Quote(column), "::text"));
  }
  for (const std::string& column : extra) {
    selected.push_back(absl::StrCat(session.Quote(column), "::text"));
  }
  std::string sql =
      absl::StrCat("SELECT ", absl::StrJoin(selected, ", "), " FROM ",
                   session.Table(collection.name), " WHERE ", filter->sql,
                   lock ? " FOR UPDATE" : "");
  ASSIGN_OR_RETURN(Result result, session.Run(sql, filter->params));
  IdentityConflictDetector detector;
  PGresult* rows = result.get();
  for (int row = 0; row < PQntuples(rows); ++row) {
    std::set<std::string> matched_keys;
    for (size_t k = 0; k < keys.size(); ++k) {
      int column = static_cast<int>(k) + 1;
      if (PQgetisnull(rows, row, column)) continue;
      if (matcher.Matches(keys[k].first, PQgetvalue(rows, row, column))) {
        matched_keys.insert(keys[k].first);
      }
    }
    if (matched_keys.empty()) continue;  // A candidate the normaliser refused.
    detector.AddRecord(matched_keys);
    MatchedRow match;
    match.ctid = PQgetvalue(rows, row, 0);
    for (size_t e = 0; e < extra.size(); ++e) {
      int column = static_cast<int>(1 + keys.size() + e);
      if (PQgetisnull(rows, row, column)) {
        match.extra.push_back(std::nullopt);
      } else {
        match.extra.push_back(std::string(PQgetvalue(rows, row, column),
                                          PQgetlength(rows, row, column)));
      }
    }
    matched.rows.push_back(std::move(match));
  }
  RETURN_IF_ERROR(detector.Check(session.store().name, collection.name));
  return matched;
}

// The subject's rows of every collection (FindSubjectRows), so that an
// identity conflict anywhere is found before anything is read out or
// changed. `extra_of` gives each collection's extra columns.
absl::StatusOr<std::vector<MatchedRows>> FindSubjectRowsEverywhere(
    Session& session, const IdentityMatcher& matcher, bool lock,
    const std::function<std::vector<std::string>(const CollectionSpec&)>&
        extra_of = nullptr) {
  std::vector<MatchedRows> all;
  for (const CollectionSpec& collection : session.store().collections) {
    std::vector<std::string> extra;
    if (extra_of) extra = extra_of(collection);
    ASSIGN_OR_RETURN(MatchedRows rows, FindSubjectRows(session, collection,
                                                       matcher, lock, extra));
    all.push_back(std::move(rows));
  }
  return all;
}

// Runs `body` in one transaction, committing when it succeeds and rolling
// back when it fails or is cancelled.
template <typename T>
absl::StatusOr<T> InTransaction(
    const StoreSpec& store, const std::atomic<bool>* cancel, const char* begin,
    const std::function<absl::StatusOr<T>(Session&)>& body) {
  ASSIGN_OR_RETURN(std::unique_ptr<Session> session,
                   Session::Open(store, cancel));
  RETURN_IF_ERROR(session->Exec(begin));
  absl::StatusOr<T> result = body(*session);
  absl::Status status = result.status();
  if (status.ok()) status = session->Exec("COMMIT");
  if (!status.ok()) {
    session->Rollback();
    return status;
  }
  return result;
}

constexpr char kBeginRead[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
constexpr char kBeginWrite[] = "BEGIN ISOLATION LEVEL READ COMMITTED";

// Decimal digits a double holds exactly (DBL_DIG).
constexpr int kDoubleDigits = 15;

// The significant digits of a number written in decimal ("-0012.50": 4).
int SignificantDigits(absl::string_view text) {
  int digits = 0;
  bool leading = true;
  for (char c : text) {
    if (c < '0' || c > '9') continue;
    if (leading && c == '0') continue;
    leading = false;
    ++digits;
  }
  return digits;
}

// A value of the export's JSON: numbers, booleans and JSON columns keep
// their type; bytea is base64, as the SQLite connector writes blobs;
// everything else is its text form.
nlohmann::ordered_json ValueAsJson(const PGresult* result, int row, int i) {
  if (PQgetisnull(result, row, i)) return nullptr;
  std::string text(PQgetvalue(result, row, i), PQgetlength(result, row, i));
  switch (PQftype(result, i)) {
    case kBoolOid:
      return text == "t";
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid: {
      int64_t number = 0;
      if (absl::SimpleAtoi(text, &number)) return number;
      return text;
    }
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid: {
      // A numeric with more significant digits than a double keeps (15)
      // stays text, so the export is exact: 12345678901234567.89 is not
      // rounded. NaN and Infinity have no JSON number: they stay text too.
      if (PQftype(result, i) == kNumericOid &&
          SignificantDigits(text) > kDoubleDigits) {
        return text;
      }
      double number = 0;
      if (absl::SimpleAtod(text, &number) && std::isfinite(number)) {
        return number;
      }
      return text;
    }
    case kJsonOid:
    case kJsonbOid: {
      nlohmann::ordered_json parsed =
          nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/
                                        false);
      if (parsed.is_discarded()) return text;
      return parsed;
    }
    case kByteaOid: {
      // The text form is hex: "\x00ff".
      if (absl::StartsWith(text, "\\x")) {
        return absl::Base64Escape(absl::HexStringToBytes(text.substr(2)));
      }
      return text;
    }
    default:
      return text;
  }
}

// Reads the subject's rows of every table, adding discovered identities and,
// when `writer` is set, each row to the export.
absl::StatusOr<ConnectorResult> ScanMatchingRows(
    const StoreSpec& store, const std::atomic<bool>* cancel,
    const std::vector<Identity>& identities, ExportWriter* writer) {
  IdentityMatcher matcher(identities, store.default_phone_region);
  return InTransaction<ConnectorResult>(
      store, cancel, kBeginRead,
      [&](Session& session) -> absl::StatusOr<ConnectorResult> {
        DiscoveredIdentities discovered(identities, matcher);
        ConnectorResult result;
        auto identity_columns = [](const CollectionSpec& collection) {
          std::vector<std::string> columns;
          for (const auto& [key, column] : collection.identity_fields) {
            columns.push_back(column);
          }
          return columns;
        };
        ASSIGN_OR_RETURN(
            std::vector<MatchedRows> everywhere,
            FindSubjectRowsEverywhere(session, matcher,
                                      /*lock=*/false, identity_columns));
        for (const MatchedRows& matched : everywhere) {
          const CollectionSpec& collection = *matched.collection;
          result.record_count += static_cast<int64_t>(matched.rows.size());
          std::vector<std::string> keys;
          for (const auto& [key, column] : collection.identity_fields) {
            keys.push_back(key);
          }
          for (const MatchedRow& row : matched.rows) {
            for (size_t k = 0; k < keys.size(); ++k) {
              if (row.extra[k].has_value()) {
                discovered.Add(keys[k], *row.extra[k]);
              }
            }
          }
          if (writer == nullptr || matched.rows.empty()) continue;
          // The same snapshot: the ctids found above address these rows.
          std::string sql =
              absl::StrCat("SELECT * FROM ", session.Table(collection.name),
                           " WHERE ctid = ANY($1::tid[]) ORDER BY ctid");
          ASSIGN_OR_RETURN(Result rows,
                           session.Run(sql, {matched.CtidArray()}));
          for (int row = 0; row < PQntuples(rows.get()); ++row) {
            nlohmann::ordered_json data = nlohmann::ordered_json::object();
            for (int i = 0; i < PQnfields(rows.get()); ++i) {
              data[PQfname(rows.get(), i)] = ValueAsJson(rows.get(), row, i);
            }
            RETURN_IF_ERROR(writer->AddRecord(collection.name, data));
          }
        }
        result.discovered = discovered.Take();
        return result;
      });
}

// Number of rows a statement changed.
int64_t ChangedRows(const Result& result) {
  int64_t rows = 0;
  if (!absl::SimpleAtoi(PQcmdTuples(result.get()), &rows)) return 0;
  return rows;
}

// Masks the subject's rows of one table (CollectionSpec::masks), row by
// row, writing only the fields whose value changes.
absl::Status MaskRows(Session& session, const MatchedRows& matched,
                      const std::vector<std::string>& masked_fields,
                      const std::string& key, CollectionErasure* erasure) {
  const CollectionSpec& collection = *matched.collection;
  for (const MatchedRow& row : matched.rows) {
    std::vector<std::string> assignments;
    std::vector<std::optional<std::string>> params = {row.ctid};
    for (size_t f = 0; f < masked_fields.size(); ++f) {
      const std::string& field = masked_fields[f];
      MaskedValue masked =
          MaskValue(collection.masks.at(field), row.extra[f], key);
      if (!masked.changes) continue;
      params.push_back(std::move(masked.value));
      assignments.push_back(
          absl::StrCat(session.Quote(field), " = $", params.size()));
    }
    if (assignments.empty()) continue;
    std::string sql =
        absl::StrCat("UPDATE ", session.Table(collection.name), " SET ",
                     absl::StrJoin(assignments, ", "), " WHERE ctid = $1::tid");
    ASSIGN_OR_RETURN(Result result, session.Run(sql, params));
    if (ChangedRows(result) == 0) continue;
    ++erasure->rows_masked;
    erasure->fields_masked += static_cast<int64_t>(assignments.size());
  }
  return absl::OkStatus();
}

// The masked fields (not kept) of a collection, in name order.
std::vector<std::string> MaskedFields(const CollectionSpec& collection) {
  std::vector<std::string> fields;
  if (!collection.mask_on_erase) return fields;
  for (const auto& [field, mask] : collection.masks) {
    if (mask.strategy != MaskStrategy::kKeep) fields.push_back(field);
  }
  return fields;
}

}  // namespace

absl::StatusOr<ConnectorResult> PostgresConnector::Export(
    const std::vector<Identity>& identities, ByteSink& sink) {
  ExportWriter writer(sink, store_.name);
  ASSIGN_OR_RETURN(ConnectorResult result,
                   ScanMatchingRows(store_, cancel_, identities, &writer));
  RETURN_IF_ERROR(writer.Finish());
  return result;
}

absl::StatusOr<ConnectorResult> PostgresConnector::Discover(
    const std::vector<Identity>& identities) {
  return ScanMatchingRows(store_, cancel_, identities, /*writer=*/nullptr);
}

absl::StatusOr<std::vector<std::string>> PostgresConnector::ExplainLookup(
    const std::vector<Identity>& identities, bool avoid_scans) {
  IdentityMatcher matcher(identities, store_.default_phone_region);
  return InTransaction<std::vector<std::string>>(
      store_, cancel_, kBeginRead,
      [&](Session& session) -> absl::StatusOr<std::vector<std::string>> {
        if (avoid_scans) {
          RETURN_IF_ERROR(
              session.Run("SET LOCAL enable_seqscan = off").status());
        }
        std::vector<std::string> plan;
        for (const CollectionSpec& collection : store_.collections) {
          ASSIGN_OR_RETURN(std::optional<RowFilter> filter,
                           BuildRowFilter(session, collection, matcher));
          if (!filter.has_value()) continue;
          std::string sql = absl::StrCat(
              "EXPLAIN (COSTS OFF) SELECT ctid FROM ",
              session.Table(collection.name), " WHERE ", filter->sql);
          ASSIGN_OR_RETURN(Result result, session.Run(sql, filter->params));
          for (int row = 0; row < PQntuples(result.get()); ++row) {
            std::string line = PQgetvalue(result.get(), row, 0);
            absl::StripAsciiWhitespace(&line);
            plan.push_back(absl::StrCat(collection.name, ": ", line));
          }
        }
        return plan;
      });
}

absl::StatusOr<std::map<std::string, CollectionShape>> PostgresConnector::Probe(
    int sample_rows) {
  using Shapes = std::map<std::string, CollectionShape>;
  return InTransaction<Shapes>(
      store_, cancel_, kBeginRead,
      [&](Session& session) -> absl::StatusOr<Shapes> {
        Shapes shapes;
        for (const CollectionSpec& collection : store_.collections) {
          CollectionShape& shape = shapes[collection.name];
          absl::StatusOr<const std::vector<Column>*> columns =
              session.Columns(collection.name);
          if (absl::IsNotFound(columns.status())) continue;
          if (!columns.ok()) return columns.status();
          shape.exists = true;
          if ((*columns)->empty()) continue;
          std::string select = "SELECT ";
          for (size_t i = 0; i < (*columns)->size(); ++i) {
            absl::StrAppend(&select, i == 0 ? "" : ", ",
                            session.Quote((**columns)[i].name), "::text");
            shape.columns[(**columns)[i].name];
          }
          absl::StrAppend(&select, " FROM ", session.Table(collection.name),
                          " LIMIT ", sample_rows);
          ASSIGN_OR_RETURN(Result result, session.Run(select));
          for (int row = 0; row < PQntuples(result.get()); ++row) {
            for (size_t i = 0; i < (*columns)->size(); ++i) {
              if (PQgetisnull(result.get(), row, static_cast<int>(i))) continue;
              shape.columns[(**columns)[i].name].emplace_back(
                  PQgetvalue(result.get(), row, static_cast<int>(i)));
            }
          }
        }
        return shapes;
      });
}

absl::Status PostgresConnector::ScanRecords(
    const std::vector<PostgresRowScan>& scans,
    std::vector<int64_t>* table_rows) {
  if (table_rows != nullptr) table_rows->clear();
  return InTransaction<bool>(
             store_, cancel_, kBeginRead,
             [&](Session& session) -> absl::StatusOr<bool> {
               for (const PostgresRowScan& scan : scans) {
                 const CollectionSpec& collection = *scan.collection;
                 ASSIGN_OR_RETURN(const std::vector<Column>* columns,
                                  session.Columns(collection.name));
                 std::vector<std::string> names = scan.columns;
                 if (names.empty()) {
                   for (const Column& column : *columns) {
                     names.push_back(column.name);
                   }
                 }
                 std::vector<std::string> selected;
                 const std::string& key = collection.record_key;
                 for (const std::string& name : names) {
                   if (FindColumn(*columns, name) == nullptr) {
                     return absl::NotFoundError(absl::StrCat(
                         "store ", store_.name,
                         ": no such column: ", collection.name, ".", name));
                   }
                   selected.push_back(
                       absl::StrCat(session.Quote(name), "::text"));
                 }
                 std::string where;
                 std::vector<std::string> texts;
                 if (scan.where) {
                   where = absl::StrCat(" WHERE ",
                                        scan.where(
                                            [&](const std::string& name) {
                                              return session.Quote(name);
                                            },
                                            &texts));
                 }
                 std::vector<std::optional<std::string>> params(texts.begin(),
                                                                texts.end());
                 if (table_rows != nullptr) {
                   ASSIGN_OR_RETURN(Result count,
                                    session.Run(absl::StrCat(
                                        "SELECT count(*) FROM ",
                                        session.Table(collection.name))));
                   int64_t rows = 0;
                   if (!absl::SimpleAtoi(PQgetvalue(count.get(), 0, 0),
                                         &rows)) {
                     rows = 0;
                   }
                   table_rows->push_back(rows);
                 }
                 RETURN_IF_ERROR(
                     session
                         .Run(absl::StrCat(
                                  "DECLARE dsar_scan NO SCROLL CURSOR FOR "
                                  "SELECT ",
                                  key.empty() ? std::string("ctid::text")
                                              : absl::StrCat(session.Quote(key),
                                                             "::text"),
                                  selected.empty() ? "" : ", ",
                                  absl::StrJoin(selected, ", "), " FROM ",
                                  session.Table(collection.name), where),
                              params)
                         .status());
                 const std::string fetch = absl::StrCat(
                     "FETCH FORWARD ", kScanFetchRows, " FROM dsar_scan");
                 ScannedRecord record;
                 for (const std::string& name : names) {
                   record.fields.push_back({name, std::nullopt});
                 }
                 while (true) {
                   ASSIGN_OR_RETURN(Result batch, session.Run(fetch));
                   const int rows = PQntuples(batch.get());
                   if (rows == 0) break;
                   for (int row = 0; row < rows; ++row) {
                     record.key = PQgetisnull(batch.get(), row, 0)
                                      ? std::string()
                                      : PQgetvalue(batch.get(), row, 0);
                     for (size_t i = 0; i < names.size(); ++i) {
                       int column = static_cast<int>(i) + 1;
                       if (PQgetisnull(batch.get(), row, column)) {
                         record.fields[i].value.reset();
                       } else {
                         record.fields[i].value = std::string_view(
                             PQgetvalue(batch.get(), row, column),
                             PQgetlength(batch.get(), row, column));
                       }
                     }
                     RETURN_IF_ERROR(scan.visit(collection, record));
                   }
                 }
                 RETURN_IF_ERROR(session.Exec("CLOSE dsar_scan"));
               }
               return true;
             })
      .status();
}

absl::StatusOr<EraseResult> PostgresConnector::Erase(
    const std::vector<Identity>& identities) {
  std::string key;
  if (UsesHashMask(store_)) {
    ASSIGN_OR_RETURN(key, ReadMaskingKey(store_));
  }
  IdentityMatcher matcher(identities, store_.default_phone_region);
  return InTransaction<EraseResult>(
      store_, cancel_, kBeginWrite,
      [&](Session& session) -> absl::StatusOr<EraseResult> {
        ASSIGN_OR_RETURN(std::vector<MatchedRows> everywhere,
                         FindSubjectRowsEverywhere(
                             session, matcher, /*lock=*/true, &MaskedFields));
        EraseResult result;
        for (const MatchedRows& matched : everywhere) {
          const CollectionSpec& collection = *matched.collection;
          result.collections.push_back({collection.name});
          CollectionErasure& erasure = result.collections.back();
          if (matched.rows.empty()) continue;
          if (collection.mask_on_erase) {
            RETURN_IF_ERROR(MaskRows(session, matched, MaskedFields(collection),
                                     key, &erasure));
            continue;
          }
          std::string sql =
              absl::StrCat("DELETE FROM ", session.Table(collection.name),
                           " WHERE ctid = ANY($1::tid[])");
          ASSIGN_OR_RETURN(Result deleted,
                           session.Run(sql, {matched.CtidArray()}));
          erasure.rows_deleted = ChangedRows(deleted);
        }
        return result;
      });
}

absl::StatusOr<int64_t> PostgresConnector::Rectify(
    const std::vector<Identity>& identities,
    const std::vector<FieldCorrection>& corrections) {
  for (const FieldCorrection& correction : corrections) {
    if (correction.value.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("store ", store_.name,
                       ": the corrected value of field \"", correction.field,
                       "\" holds a NUL byte, which PostgreSQL text "
                       "cannot store"));
    }
  }
  IdentityMatcher matcher(identities, store_.default_phone_region);
  return InTransaction<int64_t>(
      store_, cancel_, kBeginWrite,
      [&](Session& session) -> absl::StatusOr<int64_t> {
        // Every correction is checked before any row changes.
        std::vector<std::map<std::string, std::string>> updates;
        for (const CollectionSpec& collection : store_.collections) {
          ASSIGN_OR_RETURN(const std::vector<Column>* columns,
                           session.Columns(collection.name));
          auto has_column = [&](const std::string& field) {
            return FindColumn(*columns, field) != nullptr;
          };
          ASSIGN_OR_RETURN(
              CollectionCorrections resolved,
              ResolveCorrections(store_, collection, corrections, has_column));
          updates.push_back(std::move(resolved.updates));
        }
        ASSIGN_OR_RETURN(std::vector<MatchedRows> everywhere,
                         FindSubjectRowsEverywhere(session, matcher,
                                                   /*lock=*/true));
        int64_t changed = 0;
        for (size_t c = 0; c < everywhere.size(); ++c) {
          const MatchedRows& matched = everywhere[c];
          if (updates[c].empty() || matched.rows.empty()) continue;
          std::vector<std::string> assignments;
          std::vector<std::string> differences;
          std::vector<std::optional<std::string>> params = {
              matched.CtidArray()};
          for (const auto& [field, value] : updates[c]) {
            params.push_back(value);
            std::string column = session.Quote(field);
            assignments.push_back(absl::StrCat(column, " = $", params.size()));
            differences.push_back(
                absl::StrCat(column, " IS DISTINCT FROM $", params.size()));
          }
          std::string sql =
              absl::StrCat("UPDATE ", session.Table(matched.collection->name),
                           " SET ", absl::StrJoin(assignments, ", "),
                           " WHERE ctid = ANY($1::tid[]) AND (",
                           absl::StrJoin(differences, " OR "), ")");
          ASSIGN_OR_RETURN(Result result, session.Run(sql, params));
          changed += ChangedRows(result);
        }
        return changed;
      });
}

absl::StatusOr<int64_t> PostgresConnector::SetProcessingFlag(
    const std::vector<Identity>& identities, const std::string& flag) {
  RETURN_IF_ERROR(CheckProcessingFlagName(store_.name, flag));
  bool any = false;
  for (const CollectionSpec& collection : store_.collections) {
    if (collection.processing_flags.count(flag) > 0) any = true;
  }
  if (!any) return 0;  // Nothing to flag here; the server is not contacted.
  IdentityMatcher matcher(identities, store_.default_phone_region);
  return InTransaction<int64_t>(
      store_, cancel_, kBeginWrite,
      [&](Session& session) -> absl::StatusOr<int64_t> {
        ASSIGN_OR_RETURN(std::vector<MatchedRows> everywhere,
                         FindSubjectRowsEverywhere(session, matcher,
                                                   /*lock=*/true));
        int64_t flagged = 0;
        for (const MatchedRows& matched : everywhere) {
          const CollectionSpec& collection = *matched.collection;
          auto it = collection.processing_flags.find(flag);
          if (it == collection.processing_flags.end() || matched.rows.empty()) {
            continue;
          }
          ASSIGN_OR_RETURN(const std::vector<Column>* columns,
                           session.Columns(collection.name));
          const Column* column = FindColumn(*columns, it->second);
          if (column == nullptr) {
            return absl::NotFoundError(
                absl::StrCat("store ", store_.name, ": table ", collection.name,
                             " has no column ", it->second,
                             " (processing flag ", flag, ")"));
          }
          // true in a boolean column, 1 in a numeric one (as in SQLite).
          std::string value = column->category == 'B' ? "true" : "1";
          std::string quoted = session.Quote(it->second);
          std::string sql = absl::StrCat(
              "UPDATE ", session.Table(collection.name), " SET ", quoted, " = ",
              value, " WHERE ctid = ANY($1::tid[]) AND ", quoted,
              " IS DISTINCT FROM ", value);
          ASSIGN_OR_RETURN(Result result,
                           session.Run(sql, {matched.CtidArray()}));
          flagged += ChangedRows(result);
        }
        return flagged;
      });
}

}  // namespace dsar
