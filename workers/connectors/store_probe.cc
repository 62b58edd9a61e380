#include "workers/connectors/store_probe.h"

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
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
  std::map<std::string, CollectionShape> shapes;
  shapes[store.collections.front().name] = std::move(shape);
  return shapes;
}

}  // namespace

absl::StatusOr<std::map<std::string, CollectionShape>> ProbeStore(
    const StoreSpec& store, int sample_rows) {
  if (store.kind == "jsonl") return ProbeJsonl(store, sample_rows);
  absl::StatusOr<std::map<std::string, CollectionShape>> shapes;
  if (store.kind == "sqlite") {
    shapes = SqliteConnector(store).Probe(sample_rows);
  } else if (store.kind == "postgres") {
    shapes = PostgresConnector(store).Probe(sample_rows);
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
