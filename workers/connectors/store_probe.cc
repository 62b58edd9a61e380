#include "workers/connectors/store_probe.h"

#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/identity_match.h"
#include "workers/connectors/postgres.h"
#include "workers/connectors/sqlite.h"

namespace dsar {
namespace {

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
  // Every identity field is served by the line index the connector keeps
  // (jsonl_index.h): none is unindexed.
  std::map<std::string, CollectionShape> shapes;
  shapes[store.collections.front().name] = std::move(shape);
  return shapes;
}

// Adds to `shapes` the identity keys whose lookup no index serves, by the
// plans `explain` returns ("<collection>: <plan line>", the connectors'
// ExplainLookup) for a probe value of each key: a SQLite "SCAN" step, a
// PostgreSQL "Seq Scan", or a PostgreSQL plan without an index condition
// reads the whole table.
absl::Status FindUnindexedLookups(
    const StoreSpec& store,
    const std::function<
        absl::StatusOr<std::vector<std::string>>(const Identity&)>& explain,
    std::map<std::string, CollectionShape>& shapes) {
  std::set<std::string> keys;
  for (const CollectionSpec& collection : store.collections) {
    for (const auto& [key, field] : collection.identity_fields)
      keys.insert(key);
  }
  for (const std::string& key : keys) {
    absl::StatusOr<std::vector<std::string>> plan =
        explain(PlannerProbeIdentity(key));
    // A missing table or column is reported from the shapes already.
    if (absl::IsNotFound(plan.status())) continue;
    if (!plan.ok()) return plan.status();
    for (const CollectionSpec& collection : store.collections) {
      if (collection.identity_fields.count(key) == 0) continue;
      const std::string prefix = collection.name + ": ";
      bool lines = false;
      bool scans = false;
      bool condition = false;
      for (const std::string& line : *plan) {
        if (!absl::StartsWith(line, prefix)) continue;
        lines = true;
        absl::string_view step = absl::string_view(line).substr(prefix.size());
        scans = scans || absl::StartsWith(step, "SCAN") ||
                absl::StrContains(step, "Seq Scan");
        condition = condition || absl::StrContains(step, "Index Cond") ||
                    absl::StrContains(step, "Recheck Cond") ||
                    absl::StartsWith(step, "SEARCH");
      }
      if (lines && (scans || !condition)) {
        shapes[collection.name].unindexed_identity_keys.push_back(key);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::map<std::string, CollectionShape>> ProbeStore(
    const StoreSpec& store, int sample_rows) {
  if (store.kind == "jsonl") return ProbeJsonl(store, sample_rows);
  absl::StatusOr<std::map<std::string, CollectionShape>> shapes;
  if (store.kind == "sqlite") {
    SqliteConnector connector(store);
    shapes = connector.Probe(sample_rows);
    if (shapes.ok()) {
      absl::Status indexes = FindUnindexedLookups(
          store,
          [&](const Identity& probe) {
            return connector.ExplainLookup({probe});
          },
          *shapes);
      if (!indexes.ok()) shapes = indexes;
    }
  } else if (store.kind == "postgres") {
    PostgresConnector connector(store);
    shapes = connector.Probe(sample_rows);
    if (shapes.ok()) {
      absl::Status indexes = FindUnindexedLookups(
          store,
          [&](const Identity& probe) {
            return connector.ExplainLookup({probe}, /*avoid_scans=*/true);
          },
          *shapes);
      if (!indexes.ok()) shapes = indexes;
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "store ", store.name, ": a ", store.kind, " store cannot be probed"));
  }
  if (absl::IsUnavailable(shapes.status())) {
    return absl::UnavailableError(
        absl::StrCat("cannot open or read it: ", shapes.status().message()));
  }
  return shapes;
}

}  // namespace dsar
