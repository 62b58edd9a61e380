#include "workers/connectors/store_probe.h"

#include <sqlite3.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/postgres.h"

namespace dsar {
namespace {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* statement) const {
    sqlite3_finalize(statement);
  }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

std::string QuoteIdentifier(const std::string& name) {
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted.push_back('"');
    quoted.push_back(c);
  }
  return quoted + "\"";
}

absl::StatusOr<Statement> Prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    return absl::InternalError(sqlite3_errmsg(db));
  }
  return Statement(raw);
}

absl::StatusOr<std::map<std::string, CollectionShape>> ProbeSqlite(
    const StoreSpec& store, int sample_rows) {
  sqlite3* raw = nullptr;
  // Read-only, and never created: a missing file is an error, not an empty
  // database.
  int opened =
      sqlite3_open_v2(store.path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, SqliteCloser> db(raw);
  if (opened != SQLITE_OK) {
    return absl::UnavailableError(
        absl::StrCat("store ", store.name, ": cannot open ", store.path, ": ",
                     raw != nullptr ? sqlite3_errmsg(raw) : "out of memory"));
  }
  sqlite3_busy_timeout(db.get(), 2000);
  std::map<std::string, CollectionShape> shapes;
  for (const CollectionSpec& collection : store.collections) {
    CollectionShape& shape = shapes[collection.name];
    absl::StatusOr<Statement> columns =
        Prepare(db.get(), absl::StrCat("PRAGMA table_info(",
                                       QuoteIdentifier(collection.name), ")"));
    if (!columns.ok()) {
      return absl::UnavailableError(
          absl::StrCat("store ", store.name, ": ", columns.status().message()));
    }
    std::vector<std::string> names;
    while (sqlite3_step(columns->get()) == SQLITE_ROW) {
      names.push_back(reinterpret_cast<const char*>(
          sqlite3_column_text(columns->get(), 1)));
    }
    shape.exists = !names.empty();
    if (!shape.exists) continue;
    for (const std::string& name : names) shape.columns[name];
    std::string select = "SELECT ";
    for (size_t i = 0; i < names.size(); ++i) {
      absl::StrAppend(&select, i == 0 ? "" : ", ", QuoteIdentifier(names[i]));
    }
    absl::StrAppend(&select, " FROM ", QuoteIdentifier(collection.name),
                    " LIMIT ", sample_rows);
    absl::StatusOr<Statement> rows = Prepare(db.get(), select);
    if (!rows.ok()) {
      return absl::UnavailableError(
          absl::StrCat("store ", store.name, ": ", rows.status().message()));
    }
    while (sqlite3_step(rows->get()) == SQLITE_ROW) {
      for (size_t i = 0; i < names.size(); ++i) {
        if (sqlite3_column_type(rows->get(), i) == SQLITE_NULL) continue;
        const unsigned char* text = sqlite3_column_text(rows->get(), i);
        if (text != nullptr) {
          shape.columns[names[i]].emplace_back(
              reinterpret_cast<const char*>(text));
        }
      }
    }
  }
  return shapes;
}

absl::StatusOr<std::map<std::string, CollectionShape>> ProbeJsonl(
    const StoreSpec& store, int sample_rows) {
  std::ifstream in(store.path);
  if (!in) {
    return absl::UnavailableError(
        absl::StrCat("store ", store.name, ": cannot open ", store.path));
  }
  CollectionShape shape;
  shape.exists = true;
  std::string line;
  for (int read = 0; read < sample_rows && std::getline(in, line); ++read) {
    nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded() || !record.is_object()) continue;
    for (const auto& [field, value] : record.items()) {
      std::vector<std::string>& values = shape.columns[field];
      if (value.is_string()) {
        values.push_back(value.get<std::string>());
      } else if (value.is_number()) {
        values.push_back(value.dump());
      }
    }
  }
  std::map<std::string, CollectionShape> shapes;
  shapes[store.collections.front().name] = std::move(shape);
  return shapes;
}

}  // namespace

absl::StatusOr<std::map<std::string, CollectionShape>> ProbeStore(
    const StoreSpec& store, int sample_rows) {
  if (store.kind == "sqlite") return ProbeSqlite(store, sample_rows);
  if (store.kind == "jsonl") return ProbeJsonl(store, sample_rows);
  if (store.kind == "postgres") {
    return PostgresConnector(store).Probe(sample_rows);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "store ", store.name, ": a ", store.kind, " store cannot be probed"));
}

}  // namespace dsar
