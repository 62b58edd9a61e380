#include "workers/connectors/inventory_check.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::Not;

class InventoryCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "inventory_check.XXXXXX")
            .string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ + "/shop.db").c_str(), &db), SQLITE_OK);
    const char* sql =
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, full_name "
        "TEXT, card TEXT, notes TEXT, amount INTEGER);"
        "INSERT INTO users VALUES (1, 'a@example.com', 'Ann A', "
        "'4111 1111 1111 1111', '+44 7700 900123', 10);"
        "INSERT INTO users VALUES (2, 'b@example.com', 'Bo B', "
        "'5500 0000 0000 0004', 'prefers post', 20);";
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    std::ofstream(dir_ + "/activity.jsonl")
        << R"({"user_id": 1, "client": "198.51.100.7", "action": "login"})"
        << "\n"
        << R"({"user_id": 2, "client": "2001:db8::5", "action": "logout"})"
        << "\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<InventoryFinding> Check(const std::string& yaml) {
    absl::StatusOr<Inventory> inventory = Inventory::Parse(yaml, dir_);
    EXPECT_TRUE(inventory.ok()) << inventory.status();
    if (!inventory.ok()) return {};
    return CheckInventory(*inventory);
  }

  std::string dir_;
};

auto Finding(InventoryFinding::Severity severity, const std::string& store,
             const std::string& text) {
  return AllOf(Field(&InventoryFinding::severity, severity),
               Field(&InventoryFinding::store, store),
               Field(&InventoryFinding::message, HasSubstr(text)));
}

constexpr auto kError = InventoryFinding::Severity::kError;
constexpr auto kWarning = InventoryFinding::Severity::kWarning;

TEST_F(InventoryCheckTest, ReportsMissingColumnsAndUndeclaredPersonalData) {
  std::vector<InventoryFinding> findings = Check(R"yaml(
stores:
  - name: shop
    kind: sqlite
    path: shop.db
    tables:
      - name: users
        identity_fields: {email: email, user_id: id}
        pii_fields: {full_name: identity, nickname: identity}
      - name: ghosts
        identity_fields: {user_id: user_id}
  - name: activity
    kind: jsonl
    path: activity.jsonl
    identity_fields: {user_id: user_id}
    pii_fields: {user_agent: online_identifiers}
    identities_from: [shop]
  - name: archive
    kind: manual
    owner: records@example.com
    instructions: "by hand"
    identity_kinds: [customer_number]
)yaml");
  EXPECT_THAT(findings,
              Contains(Finding(kError, "shop",
                               "pii field (identity) nickname is not a "
                               "column of users")));
  EXPECT_THAT(findings,
              Contains(Finding(kError, "shop", "table ghosts does not exist")));
  // The card column by its values; the notes column holds a phone in one of
  // two values (a fifth is enough); amounts and names declared are fine.
  EXPECT_THAT(findings, Contains(Finding(kWarning, "shop",
                                         "column card looks like personal "
                                         "data the inventory does not declare "
                                         "(payment_card in 2 of 2")));
  EXPECT_THAT(findings,
              Contains(Finding(kWarning, "shop", "column notes looks like")));
  EXPECT_THAT(findings, Not(Contains(Finding(kWarning, "shop", "amount"))));
  EXPECT_THAT(findings, Not(Contains(Finding(kWarning, "shop", "full_name"))));
  // The log: an undeclared IP field by its values; a declared field the
  // sampled lines lack is a warning only.
  EXPECT_THAT(findings, Contains(Finding(kWarning, "activity",
                                         "column client looks like personal "
                                         "data")));
  EXPECT_THAT(findings, Contains(Finding(kWarning, "activity",
                                         "user_agent not seen in the first")));
  EXPECT_THAT(findings, Contains(Finding(kWarning, "archive", "not probed")));
  // Only customer numbers find the subject in the archive; no store
  // discovers them.
  EXPECT_THAT(findings, Contains(Finding(kWarning, "", "archive")));
  // No value is ever quoted.
  for (const InventoryFinding& finding : findings) {
    EXPECT_THAT(finding.message,
                AllOf(Not(HasSubstr("a@example.com")), Not(HasSubstr("4111")),
                      Not(HasSubstr("198.51"))))
        << finding.message;
  }
}

TEST_F(InventoryCheckTest, AStoreThatCannotBeOpenedIsAnError) {
  std::vector<InventoryFinding> findings = Check(R"yaml(
stores:
  - name: gone
    kind: sqlite
    path: missing.db
    tables:
      - name: users
        identity_fields: {email: email}
)yaml");
  EXPECT_THAT(findings, Contains(Finding(kError, "gone", "cannot open")));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/missing.db"))
      << "probing must not create the database";
}

// A null store has nothing to probe, and is never configured unnoticed.
TEST_F(InventoryCheckTest, WarnsAboutANullStore) {
  std::vector<InventoryFinding> findings = Check(R"yaml(
stores:
  - name: placeholder
    kind: "null"
    identity_fields: {email: email}
)yaml");
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_THAT(findings, Contains(Finding(kWarning, "placeholder",
                                         "null store: it holds nothing")));
}

// The store's planner decides: a lookup it cannot serve from an index reads
// the whole table for every request (the rule of issue 14), and says which
// index would serve it. A JSON-lines log is served by the connector's own
// line index (jsonl_index.h), so it gets no warning.
TEST_F(InventoryCheckTest, WarnsWhenAnIdentityLookupHasNoIndex) {
  const std::string yaml = R"yaml(
stores:
  - name: shop
    kind: sqlite
    path: shop.db
    tables:
      - name: users
        identity_fields: {email: email, user_id: id}
        pii_fields: {full_name: identity, card: financial, notes: other, amount: financial}
  - name: activity
    kind: jsonl
    path: activity.jsonl
    identity_fields: {user_id: user_id}
    pii_fields: {client: online_identifiers, action: usage}
    identities_from: [shop]
)yaml";
  std::vector<InventoryFinding> findings = Check(yaml);
  EXPECT_THAT(findings,
              Contains(Finding(kWarning, "shop",
                               "identity field email (email) has no index a "
                               "lookup can use, so every request reads the "
                               "whole table; create one on lower(email)")));
  // id is the INTEGER PRIMARY KEY: SQLite searches it.
  EXPECT_THAT(findings,
              Not(Contains(Finding(kWarning, "shop", "identity field id"))));
  EXPECT_THAT(findings,
              Not(Contains(Finding(kWarning, "activity", "identity field"))));

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/shop.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE INDEX users_email ON users (lower(email))",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_THAT(Check(yaml),
              Not(Contains(Finding(kWarning, "shop", "identity field email"))));
}

}  // namespace
}  // namespace dsar
