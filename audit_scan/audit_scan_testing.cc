#include "audit_scan/audit_scan_testing.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace dsar::audit_testing {
namespace {

const char kHash[] =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

std::string SqlLiteral(const std::optional<std::string>& value) {
  if (!value.has_value()) return "NULL";
  return absl::StrCat("'", absl::StrReplaceAll(*value, {{"'", "''"}}), "'");
}

}  // namespace

const std::vector<PlantedRow>& PlantedRows() {
  static const auto* rows = new std::vector<PlantedRow>{
      {"u-100", "a100@example.com", std::nullopt, "active", 0,
       R"({"theme": "dark"})", "likes blue"},
      // Seed 002's record: opted out (status in capitals), email kept, a
      // phone number hidden in metadata.
      {"u-987", "alice@example.com", std::nullopt, "OPT_OUT", 0,
       R"({"backup_contact": "555-0199"})", std::nullopt},
      {"u-300", "REDACTED", std::nullopt, "opt_out", 0, std::nullopt,
       std::nullopt},
      {"u-400", kHash, "", "Erased", 0, std::nullopt, std::nullopt},
      {"u-500", "carol@example.com", "+44 7700 900500", "restricted", 0,
       std::nullopt, std::nullopt},
      {"u-600", "dave@example.com", std::nullopt, "active", 0, std::nullopt,
       "paid with 4111 1111 1111 1111"},
      {"u-700", "eve@example.com", std::nullopt, "active", 0, std::nullopt,
       "order 4111111111111112"},
      {"u-800", "", "+44 7700 900123", "erased", 0, std::nullopt, std::nullopt},
      // Opted out, but its restriction flag is set: kept lawfully.
      {"u-900", "erin@example.com", std::nullopt, "opt_out", 1, std::nullopt,
       std::nullopt},
      // JSON text inside a JSON string inside the field.
      {"u-950", "frank@example.com", std::nullopt, "active", 0,
       R"({"note": "{\"ip\": \"192.0.2.44\"}"})", std::nullopt},
  };
  return *rows;
}

CollectionSpec PlantedCollection(const std::string& name) {
  CollectionSpec collection;
  collection.name = name;
  collection.identity_fields = {
      {"email", "email"}, {"user_id", "user_id"}, {"phone", "phone"}};
  collection.pii_fields = {{"email", "contact"}, {"phone", "contact"}};
  collection.processing_flags = {{"restriction", "restricted"}};
  PrivacyStatusSpec status;
  status.field = "privacy_status";
  status.opted_out = {"opt_out", "erased"};
  status.restricted = {"restricted"};
  status.scrubbed = {"REDACTED"};
  status.scrubbed_hashes = true;
  collection.privacy_status = status;
  collection.record_key = "user_id";
  return collection;
}

std::string PlantedJsonLines() {
  std::string lines;
  for (const PlantedRow& row : PlantedRows()) {
    nlohmann::ordered_json line;
    line["user_id"] = row.user_id;
    if (row.email) line["email"] = *row.email;
    if (row.phone) line["phone"] = *row.phone;
    line["privacy_status"] = row.privacy_status;
    line["restricted"] = row.restricted == 1;
    if (row.metadata) line["metadata"] = *row.metadata;
    if (row.notes) line["notes"] = *row.notes;
    absl::StrAppend(&lines, line.dump(), "\n");
  }
  return lines;
}

std::string PlantedSql(const std::string& table) {
  std::vector<std::string> values;
  for (const PlantedRow& row : PlantedRows()) {
    values.push_back(absl::StrCat(
        "(", SqlLiteral(row.user_id), ", ", SqlLiteral(row.email), ", ",
        SqlLiteral(row.phone), ", ", SqlLiteral(row.privacy_status), ", ",
        row.restricted, ", ", SqlLiteral(row.metadata), ", ",
        SqlLiteral(row.notes), ")"));
  }
  return absl::StrCat(
      "CREATE TABLE ", table,
      " (user_id text PRIMARY KEY, email text, phone text, privacy_status "
      "text, restricted integer NOT NULL DEFAULT 0, metadata text, notes "
      "text); INSERT INTO ",
      table,
      " (user_id, email, phone, privacy_status, restricted, metadata, notes) "
      "VALUES ",
      absl::StrJoin(values, ", "), ";");
}

std::vector<std::string> PlantedPersonalValues() {
  return {"a100@example.com",  "alice@example.com",   "carol@example.com",
          "dave@example.com",  "eve@example.com",     "erin@example.com",
          "frank@example.com", "+44 7700 900500",     "+44 7700 900123",
          "555-0199",          "4111 1111 1111 1111", "192.0.2.44"};
}

std::vector<std::string> ExpectedPlantedFindings(const std::string& c) {
  return {
      absl::StrCat("OPT_OUT_VIOLATION ", c, ".email @u-987"),
      absl::StrCat("DATA_RENAME_DETECTION ", c,
                   ".metadata/backup_contact @u-987"),
      absl::StrCat("DATA_RENAME_DETECTION ", c, ".notes @u-600"),
      absl::StrCat("OPT_OUT_VIOLATION ", c, ".phone @u-800"),
      absl::StrCat("DATA_RENAME_DETECTION ", c, ".metadata/note.ip @u-950"),
  };
}

std::string Summary(const Finding& finding) {
  return absl::StrCat(SignalName(finding.signal), " ", finding.collection, ".",
                      finding.field, finding.json_path.empty() ? "" : "/",
                      finding.json_path, finding.record_key.empty() ? "" : " @",
                      finding.record_key);
}

std::vector<std::string> Summaries(const std::vector<Finding>& findings) {
  std::vector<std::string> out;
  for (const Finding& finding : findings) out.push_back(Summary(finding));
  return out;
}

std::unique_ptr<SubjectReferencer> TestReferencer() {
  return *SubjectReferencer::Create("audit-test-reference-key-0123456789");
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::string NewTempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern =
      absl::StrCat(base != nullptr ? base : "/tmp", "/audit_scan_XXXXXX");
  char* made = mkdtemp(pattern.data());
  return made == nullptr ? std::string() : std::string(made);
}

void AuditScanTest::SetUp() {
  dir_ = NewTempDir();
  ASSERT_FALSE(dir_.empty());
  referencer_ = TestReferencer();
  options_.referencer = referencer_.get();
}

StoreSpec AuditScanTest::SqliteStore(const std::string& sql,
                                     std::vector<CollectionSpec> collections) {
  StoreSpec store;
  store.name = "crm";
  store.kind = "sqlite";
  store.path = dir_ + "/crm.db";
  store.default_phone_region = "GB";
  store.collections = std::move(collections);
  ExecSqlite(store.path, sql);
  return store;
}

StoreSpec AuditScanTest::JsonlStore(const std::string& lines) {
  StoreSpec store;
  store.name = "activity";
  store.kind = "jsonl";
  store.path = dir_ + "/activity.jsonl";
  store.default_phone_region = "GB";
  store.collections = {PlantedCollection("activity")};
  WriteFile(store.path, lines);
  return store;
}

}  // namespace dsar::audit_testing
