#include "workers/connectors/sqlite.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/connector_errors.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/connector.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using Json = nlohmann::json;

void PrintTo(const Identity& identity, std::ostream* os) {
  *os << identity.key << "=" << identity.value;
}

class StringSink : public ByteSink {
 public:
  absl::Status Write(std::string_view bytes) override {
    data.append(bytes);
    ++writes;
    largest_write = std::max(largest_write, bytes.size());
    return absl::OkStatus();
  }
  std::string data;
  int writes = 0;
  size_t largest_write = 0;
};

class SqliteConnectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/sqlite_connector_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/shop.db";
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db_), SQLITE_OK);
    Exec(R"sql(
      CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, full_name TEXT,
                          phone TEXT, photo BLOB, score REAL);
      INSERT INTO users VALUES
        (42, 'alice@example.com', 'Alice Adams', '+44 7700 900001', x'00ff',
         1.5),
        (7, 'bob@example.com', 'Bob Brown', '07700 900002', NULL, NULL);
      CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, item TEXT);
      INSERT INTO orders VALUES (1, 42, 'lamp'), (2, 42, 'desk'), (3, 7, 'pen'),
                                (4, 420, 'chair');
      CREATE TABLE tickets (ref, user_id TEXT);
      INSERT INTO tickets VALUES ('t1', '42'), ('t2', '7');
      CREATE TABLE "odd ""table""" ("user id", note);
      INSERT INTO "odd ""table""" VALUES (42, 'untyped integer'),
                                         ('42', 'untyped text'),
                                         (7, 'other');
    )sql");

    store_.name = "shop";
    store_.kind = "sqlite";
    store_.default_phone_region = "GB";
    store_.path = path_;
    store_.collections = {
        {"users",
         {{"email", "email"}, {"user_id", "id"}, {"phone", "phone"}},
         {},
         {}},
        {"orders", {{"user_id", "user_id"}}, {}, {}},
        {"tickets", {{"user_id", "user_id"}}, {}, {}},
        {"odd \"table\"", {{"user_id", "user id"}}, {}, {}},
    };
  }

  void TearDown() override {
    sqlite3_close(db_);
    std::filesystem::remove_all(dir_);
  }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error),
              SQLITE_OK)
        << (error ? error : "");
  }

  int64_t Count(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    int64_t count = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return count;
  }

  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    std::string result = text ? reinterpret_cast<const char*>(text) : "NULL";
    sqlite3_finalize(stmt);
    return result;
  }

  // `n` more orders of user 42: far more than one sink write's worth, and
  // many of SQLite's progress steps to scan or delete (orders.user_id has
  // no index).
  void AddOrdersOfUser42(int n) {
    Exec(absl::StrCat(R"sql(
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
                              WHERE i < )sql",
                      n, R"sql()
      INSERT INTO orders (user_id, item) SELECT 42, 'item ' || i FROM n;
    )sql"));
  }

  std::unique_ptr<Connector> Make() {
    absl::StatusOr<std::unique_ptr<Connector>> connector =
        CreateConnector(store_);
    EXPECT_TRUE(connector.ok()) << connector.status();
    return std::move(*connector);
  }

  std::string dir_;
  std::string path_;
  sqlite3* db_ = nullptr;
  StoreSpec store_;
};

TEST_F(SqliteConnectorTest, ExportWritesMatchingRowsAsJson) {
  StringSink sink;
  absl::StatusOr<ConnectorResult> result =
      Make()->Export({{"email", "Alice@EXAMPLE.com"}}, sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 1);

  Json document = Json::parse(sink.data);
  EXPECT_EQ(document["store"], "shop");
  ASSERT_EQ(document["records"].size(), 1u);
  const Json& record = document["records"][0];
  EXPECT_EQ(record["collection"], "users");
  EXPECT_EQ(record["data"], Json::parse(R"({
    "id": 42, "email": "alice@example.com", "full_name": "Alice Adams",
    "phone": "+44 7700 900001", "photo": "AP8=", "score": 1.5})"));
  // Columns keep the table's order.
  EXPECT_THAT(
      sink.data,
      ::testing::HasSubstr(
          R"("data":{"id":42,"email":"alice@example.com","full_name")"));
  // The email found the row; its user_id and phone are new identities, in
  // canonical form.
  EXPECT_THAT(result->discovered,
              UnorderedElementsAre(Identity{"user_id", "42"},
                                   Identity{"phone", "+447700900001"}));
}

TEST_F(SqliteConnectorTest, UserIdMatchesIntegerTextAndUntypedColumns) {
  StringSink sink;
  absl::StatusOr<ConnectorResult> result =
      Make()->Export({{"user_id", "42"}}, sink);
  ASSERT_TRUE(result.ok()) << result.status();
  // users 42, orders 1 and 2 (not 420), tickets t1, both untyped rows.
  EXPECT_EQ(result->record_count, 6);
  Json document = Json::parse(sink.data);
  std::vector<std::string> collections;
  for (const Json& record : document["records"]) {
    collections.push_back(record["collection"]);
  }
  EXPECT_THAT(collections, ElementsAre("users", "orders", "orders", "tickets",
                                       "odd \"table\"", "odd \"table\""));
  EXPECT_EQ(document["records"][1]["data"]["item"], "lamp");
  EXPECT_EQ(document["records"][4]["data"]["user id"], 42);
  EXPECT_EQ(document["records"][5]["data"]["user id"], "42");
  EXPECT_THAT(result->discovered,
              UnorderedElementsAre(Identity{"email", "alice@example.com"},
                                   Identity{"phone", "+447700900001"}));
}

TEST_F(SqliteConnectorTest, DiscoverCountsWithoutWriting) {
  absl::StatusOr<ConnectorResult> result =
      Make()->Discover({{"email", "BOB@example.com"}, {"user_id", "7"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 4);  // users, orders, tickets, odd.
  EXPECT_THAT(result->discovered,
              ElementsAre(Identity{"phone", "+447700900002"}));
}

TEST_F(SqliteConnectorTest, NoMatchGivesAnEmptyDocument) {
  StringSink sink;
  absl::StatusOr<ConnectorResult> result = Make()->Export(
      {{"email", "nobody@example.com"}, {"customer", "x"}}, sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 0);
  EXPECT_THAT(result->discovered, IsEmpty());
  EXPECT_EQ(sink.data, R"({"store":"shop","records":[]})");
}

TEST_F(SqliteConnectorTest, ValuesAreBoundNotSpliced) {
  std::unique_ptr<Connector> connector = Make();
  for (const char* evil : {"' OR 1=1 --", "42) OR (1=1", "\" OR 1=1 --"}) {
    absl::StatusOr<ConnectorResult> found =
        connector->Discover({{"email", evil}, {"user_id", evil}});
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(found->record_count, 0) << evil;
    absl::StatusOr<EraseResult> erased =
        connector->Erase({{"email", evil}, {"user_id", evil}});
    ASSERT_TRUE(erased.ok()) << erased.status();
    EXPECT_EQ(erased->record_count(), 0) << evil;
  }
  EXPECT_EQ(Count("SELECT count(*) FROM users"), 2);
}

TEST_F(SqliteConnectorTest, EraseDeletesEverywhereAndIsIdempotent) {
  std::unique_ptr<Connector> connector = Make();
  std::vector<Identity> alice = {{"email", "ALICE@example.com"},
                                 {"user_id", "42"}};
  absl::StatusOr<EraseResult> erased = connector->Erase(alice);
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->record_count(), 6);
  // Rows deleted, table by table, in inventory order.
  std::vector<std::pair<std::string, int64_t>> deleted;
  for (const CollectionErasure& collection : erased->collections) {
    deleted.emplace_back(collection.collection, collection.rows_deleted);
    EXPECT_EQ(collection.rows_masked, 0);
    EXPECT_EQ(collection.fields_masked, 0);
  }
  EXPECT_THAT(deleted,
              ElementsAre(std::pair<std::string, int64_t>("users", 1),
                          std::pair<std::string, int64_t>("orders", 2),
                          std::pair<std::string, int64_t>("tickets", 1),
                          std::pair<std::string, int64_t>("odd \"table\"", 2)));

  EXPECT_EQ(Count("SELECT count(*) FROM users WHERE id = 42"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM orders WHERE user_id = 42"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM tickets WHERE user_id = '42'"), 0);
  EXPECT_EQ(Count(R"(SELECT count(*) FROM "odd ""table""")"), 1);
  // Others stay, including user 420 whose id merely starts with 42.
  EXPECT_EQ(Count("SELECT count(*) FROM users"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM orders"), 2);

  absl::StatusOr<ConnectorResult> found = connector->Discover(alice);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->record_count, 0);

  absl::StatusOr<EraseResult> again = connector->Erase(alice);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->record_count(), 0);
}

// An invoices table kept for tax law: erasure masks it as `masks` says.
class SqliteMaskingTest : public SqliteConnectorTest {
 protected:
  static constexpr char kKey[] = "0123456789abcdef0123456789abcdef-sqlite";

  void SetUp() override {
    SqliteConnectorTest::SetUp();
    Exec(R"sql(
      CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER,
                             email TEXT, full_name TEXT, note TEXT,
                             amount REAL);
      INSERT INTO invoices VALUES
        (1, 42, 'alice@example.com', 'Alice Adams', 'VIP', 19.99),
        (2, 7, 'bob@example.com', 'Bob Brown', 'new', 5.0);
    )sql");
    std::ofstream(dir_ + "/masking.key") << kKey;
    store_.masking_key_file = dir_ + "/masking.key";
  }

  void MaskInvoices(std::map<std::string, FieldMask> masks) {
    CollectionSpec invoices;
    invoices.name = "invoices";
    invoices.identity_fields = {{"email", "email"}, {"user_id", "customer_id"}};
    invoices.pii_fields = {
        {"full_name", "identity"}, {"note", "other"}, {"amount", "financial"}};
    invoices.mask_on_erase = true;
    invoices.masks = std::move(masks);
    store_.collections = {invoices};
  }

  static std::string HmacHex(const std::string& value) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    HMAC(EVP_sha256(), kKey, static_cast<int>(sizeof kKey - 1),
         reinterpret_cast<const unsigned char*>(value.data()), value.size(),
         digest, &size);
    return absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(digest), size));
  }
};

TEST_F(SqliteMaskingTest, EraseMasksEachFieldAndKeepsTheRow) {
  MaskInvoices({
      {"email", {MaskStrategy::kHash, ""}},
      {"customer_id", {MaskStrategy::kNull, ""}},
      {"full_name", {MaskStrategy::kRandom, ""}},
      {"note", {MaskStrategy::kFixed, "[erased]"}},
      {"amount", {MaskStrategy::kKeep, "Tax law: HGB 257, 10 years"}},
  });
  std::vector<Identity> alice = {{"email", "ALICE@example.com"},
                                 {"user_id", "42"}};
  absl::StatusOr<EraseResult> erased = Make()->Erase(alice);
  ASSERT_TRUE(erased.ok()) << erased.status();
  ASSERT_EQ(erased->collections.size(), 1u);
  EXPECT_EQ(erased->collections[0].collection, "invoices");
  EXPECT_EQ(erased->collections[0].rows_deleted, 0);
  EXPECT_EQ(erased->collections[0].rows_masked, 1);
  EXPECT_EQ(erased->collections[0].fields_masked, 4);
  EXPECT_EQ(erased->record_count(), 1);

  EXPECT_EQ(Count("SELECT count(*) FROM invoices"), 2);
  EXPECT_EQ(Text("SELECT email FROM invoices WHERE id = 1"),
            HmacHex("alice@example.com"));
  EXPECT_EQ(Text("SELECT customer_id FROM invoices WHERE id = 1"), "NULL");
  std::string random = Text("SELECT full_name FROM invoices WHERE id = 1");
  EXPECT_EQ(random.size(), 32u);
  EXPECT_NE(random, "Alice Adams");
  EXPECT_EQ(Text("SELECT note FROM invoices WHERE id = 1"), "[erased]");
  EXPECT_EQ(Text("SELECT amount FROM invoices WHERE id = 1"), "19.99");
  EXPECT_EQ(Text("SELECT full_name FROM invoices WHERE id = 2"), "Bob Brown");

  // The masked row no longer matches: nothing is hashed twice.
  absl::StatusOr<EraseResult> again = Make()->Erase(alice);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->record_count(), 0);
  EXPECT_EQ(again->collections[0].fields_masked, 0);
  EXPECT_EQ(Text("SELECT email FROM invoices WHERE id = 1"),
            HmacHex("alice@example.com"));
  EXPECT_EQ(Text("SELECT full_name FROM invoices WHERE id = 1"), random);
}

TEST_F(SqliteMaskingTest, MaskingThatKeepsTheIdentityIsIdempotent) {
  MaskInvoices({
      {"email", {MaskStrategy::kNull, ""}},
      {"customer_id", {MaskStrategy::kKeep, "Tax law"}},
      {"full_name", {MaskStrategy::kFixed, "[erased]"}},
      {"note", {MaskStrategy::kNull, ""}},
      {"amount", {MaskStrategy::kKeep, "Tax law"}},
  });
  absl::StatusOr<EraseResult> erased = Make()->Erase({{"user_id", "42"}});
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->collections[0].rows_masked, 1);
  EXPECT_EQ(erased->collections[0].fields_masked, 3);
  // Still found through the kept customer_id, but already masked.
  absl::StatusOr<EraseResult> again = Make()->Erase({{"user_id", "42"}});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->collections[0].rows_masked, 0);
  EXPECT_EQ(again->collections[0].fields_masked, 0);
  EXPECT_EQ(Text("SELECT full_name FROM invoices WHERE customer_id = 42"),
            "[erased]");
  EXPECT_EQ(Text("SELECT email FROM invoices WHERE customer_id = 42"), "NULL");
}

TEST_F(SqliteMaskingTest, HashWithoutItsKeyChangesNothing) {
  MaskInvoices({
      {"email", {MaskStrategy::kHash, ""}},
      {"customer_id", {MaskStrategy::kNull, ""}},
      {"full_name", {MaskStrategy::kNull, ""}},
      {"note", {MaskStrategy::kNull, ""}},
      {"amount", {MaskStrategy::kKeep, "Tax law"}},
  });
  std::filesystem::remove(store_.masking_key_file);
  absl::StatusOr<EraseResult> erased = Make()->Erase({{"user_id", "42"}});
  EXPECT_EQ(erased.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(erased.status().message()),
              ::testing::HasSubstr("masking_key_file"));
  EXPECT_EQ(Text("SELECT full_name FROM invoices WHERE id = 1"), "Alice Adams");
}

TEST_F(SqliteConnectorTest, EraseIsOneTransaction) {
  // The last table does not exist: the whole erase fails and nothing in the
  // tables before it is deleted.
  store_.collections.push_back(
      {"no_such_table", {{"user_id", "user_id"}}, {}, {}});
  absl::StatusOr<EraseResult> erased = Make()->Erase({{"user_id", "42"}});
  EXPECT_EQ(erased.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(erased.status().message()),
              ::testing::HasSubstr("no_such_table"));
  EXPECT_EQ(Count("SELECT count(*) FROM users"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM orders"), 4);
}

TEST_F(SqliteConnectorTest, NonCanonicalUserIdsNeverMatchNumbers) {
  // SQLite's type affinity would turn each of these into 7, 8, 9 or 10 when
  // compared with an INTEGER (or REAL, NUMERIC) column.
  Exec(R"sql(
    CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT UNIQUE);
    CREATE TABLE scores (user_id REAL, points NUMERIC, note);
    CREATE TABLE handles (user_id TEXT, note);
    INSERT INTO people VALUES (7, 'p7@x.org'), (8, 'p8@x.org'),
                              (9, 'p9@x.org'), (10, 'p10@x.org');
    INSERT INTO scores VALUES (7, 7, 'a'), (8, 8, 'b'), (9.0, 9, 'c'),
                              (10, 10, 'd');
    INSERT INTO handles VALUES ('7', 'a'), ('007', 'b'), ('9.0', 'c');
  )sql");
  store_.collections = {
      {"people", {{"user_id", "id"}}, {}, {}},
      {"scores",
       {{"user_id", "user_id"}, {"customer_number", "points"}},
       {},
       {}},
      {"handles", {{"user_id", "user_id"}}, {}, {}},
  };
  for (const char* value : {"+8", "1e1", " 1e1", "0x8", "8.", "10.00"}) {
    SCOPED_TRACE(value);
    absl::StatusOr<EraseResult> erased = Make()->Erase({{"user_id", value}});
    ASSERT_TRUE(erased.ok()) << erased.status();
    EXPECT_EQ(erased->record_count(), 0);
    erased = Make()->Erase({{"customer_number", value}});
    ASSERT_TRUE(erased.ok()) << erased.status();
    EXPECT_EQ(erased->record_count(), 0);
  }
  // A TEXT column holds the text as it is: "007" and "9.0" are found there
  // and only there.
  absl::StatusOr<EraseResult> erased = Make()->Erase({{"user_id", "007"}});
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->record_count(), 1);
  erased = Make()->Erase({{"user_id", "9.0"}});
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->record_count(), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM people"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM scores"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM handles WHERE user_id = '7'"), 1);
  // The canonical form still matches every column type.
  erased = Make()->Erase({{"user_id", "9"}});
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->record_count(), 2);  // people 9 and scores 9.0.
}

TEST_F(SqliteConnectorTest,
       IdentitiesOfDifferentPeopleAreRefusedByEveryOperation) {
  // Alice's email and Bob's user id both match rows of users, different ones.
  const std::vector<Identity> mixed = {{"email", "alice@example.com"},
                                       {"user_id", "7"}};
  store_.collections[0].pii_fields = {{"full_name", "identity"}};
  store_.collections[0].processing_flags = {{"restriction", "score"}};
  const std::string before = Text(
      "SELECT group_concat(quote(id)||quote(full_name)||quote(score)) "
      "FROM users");
  std::unique_ptr<Connector> connector = Make();
  StringSink sink;
  std::vector<absl::Status> outcomes = {
      connector->Export(mixed, sink).status(),
      connector->Discover(mixed).status(),
      connector->Erase(mixed).status(),
      connector->Rectify(mixed, {{"users", "full_name", "X"}}).status(),
      connector->SetProcessingFlag(mixed, "restriction").status(),
  };
  for (const absl::Status& status : outcomes) {
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    EXPECT_EQ(ConnectorErrorName(status), "Identity.Conflict");
    std::string message(status.message());
    EXPECT_THAT(message, ::testing::HasSubstr("store shop: collection users"));
    EXPECT_THAT(message, ::testing::HasSubstr("email"));
    EXPECT_THAT(message, ::testing::HasSubstr("user_id"));
    EXPECT_THAT(message, Not(::testing::HasSubstr("alice")));
    EXPECT_THAT(message, Not(::testing::HasSubstr("7")));
  }
  EXPECT_TRUE(sink.data.empty());
  EXPECT_EQ(Count("SELECT count(*) FROM orders"), 4);
  EXPECT_EQ(Text("SELECT group_concat(quote(id)||quote(full_name)||"
                 "quote(score)) FROM users"),
            before);
  // Identities of one person are fine, even when a row holds only one.
  absl::StatusOr<ConnectorResult> same =
      connector->Discover({{"email", "alice@example.com"}, {"user_id", "42"}});
  ASSERT_TRUE(same.ok()) << same.status();
}

TEST_F(SqliteConnectorTest, MissingDatabaseIsUnavailableAndNotCreated) {
  store_.path = dir_ + "/gone.db";
  std::unique_ptr<Connector> connector = Make();
  StringSink sink;
  EXPECT_EQ(connector->Export({{"user_id", "1"}}, sink).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(connector->Discover({{"user_id", "1"}}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(connector->Erase({{"user_id", "1"}}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(std::filesystem::exists(store_.path));
}

// Connections are kept between calls (sqlite.h): never one to a file that
// is no longer the store's.
TEST_F(SqliteConnectorTest, AKeptConnectionFollowsTheFileAtThePath) {
  std::unique_ptr<Connector> connector = Make();
  ASSERT_EQ(connector->Discover({{"user_id", "7"}}).value().record_count, 4);
  ASSERT_EQ(connector->Erase({{"user_id", "42"}}).value().record_count(), 6);

  // A restored copy replaces the file: bob is not in it.
  std::string copy = dir_ + "/restored.db";
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(copy.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other,
                         "CREATE TABLE users (id INTEGER PRIMARY KEY, email "
                         "TEXT, phone TEXT); CREATE TABLE orders (user_id); "
                         "CREATE TABLE tickets (user_id); CREATE TABLE "
                         "\"odd \"\"table\"\"\" (\"user id\");",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(other);
  ASSERT_EQ(std::rename(copy.c_str(), path_.c_str()), 0);
  EXPECT_EQ(connector->Discover({{"user_id", "7"}}).value().record_count, 0);
  EXPECT_EQ(connector->Erase({{"user_id", "7"}}).value().record_count(), 0);

  ASSERT_TRUE(std::filesystem::remove(path_));
  EXPECT_EQ(connector->Discover({{"user_id", "7"}}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(connector->Erase({{"user_id", "7"}}).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(SqliteConnectorTest, AKeptConnectionSeesSchemaChanges) {
  std::unique_ptr<Connector> connector = Make();
  StringSink before;
  ASSERT_TRUE(connector->Export({{"user_id", "7"}}, before).ok());
  EXPECT_THAT(before.data, Not(HasSubstr("tier")));
  Exec("ALTER TABLE orders ADD COLUMN tier TEXT DEFAULT 'gold'");
  StringSink after;
  ASSERT_TRUE(connector->Export({{"user_id", "7"}}, after).ok());
  EXPECT_THAT(after.data, HasSubstr(R"("tier":"gold")"));
}

// The columns of a table are remembered per connection: a column added
// later (here the identity column the inventory names) is seen by the next
// operation, not hidden by what an earlier one read.
TEST_F(SqliteConnectorTest, AKeptConnectionSeesANewIdentityColumn) {
  Exec("CREATE TABLE visits (id INTEGER PRIMARY KEY, page TEXT)");
  Exec("INSERT INTO visits (page) VALUES ('/home')");
  store_.collections.push_back({"visits", {{"user_id", "user_id"}}, {}, {}});
  std::unique_ptr<Connector> connector = Make();
  absl::StatusOr<ConnectorResult> missing =
      connector->Discover({{"user_id", "42"}});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("has no column user_id"));
  Exec("ALTER TABLE visits ADD COLUMN user_id INTEGER");
  Exec("INSERT INTO visits (page, user_id) VALUES ('/cart', 42)");
  absl::StatusOr<ConnectorResult> found =
      connector->Discover({{"user_id", "42"}});
  ASSERT_TRUE(found.ok()) << found.status();
  // users 42, orders 1 and 2, tickets t1, both untyped rows, the new visit.
  EXPECT_EQ(found->record_count, 7);
}

TEST_F(SqliteConnectorTest, LargeExportReachesTheSinkInBoundedChunks) {
  Exec("BEGIN");
  for (int i = 0; i < 5000; ++i) {
    Exec(absl::StrCat("INSERT INTO orders (user_id, item) VALUES (42, 'item ",
                      i, " with a longish description')"));
  }
  Exec("COMMIT");
  StringSink sink;
  absl::StatusOr<ConnectorResult> result =
      Make()->Export({{"user_id", "42"}}, sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 5006);
  EXPECT_EQ(Json::parse(sink.data)["records"].size(), 5006u);
  EXPECT_GT(sink.writes, 3);
  EXPECT_LT(sink.largest_write, 80u * 1024);
}

TEST_F(SqliteConnectorTest, ConcurrentCallsFromManyThreads) {
  Exec("BEGIN");
  for (int i = 1000; i < 1016; ++i) {
    Exec(absl::StrCat("INSERT INTO users (id, email) VALUES (", i, ", 'u", i,
                      "@example.com')"));
    Exec(absl::StrCat("INSERT INTO orders (user_id, item) VALUES (", i,
                      ", 'x'), (", i, ", 'y')"));
  }
  Exec("COMMIT");
  std::unique_ptr<Connector> connector = Make();
  std::vector<std::thread> threads;
  std::vector<absl::Status> statuses(32);
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] {
      int user = 1000 + t / 2;
      std::vector<Identity> who = {{"user_id", absl::StrCat(user)}};
      if (t % 2 == 0) {
        statuses[t] = connector->Erase(who).status();
      } else {
        StringSink sink;
        statuses[t] = connector->Export(who, sink).status();
        if (statuses[t].ok() && !Json::accept(sink.data)) {
          statuses[t] = absl::InternalError("bad export");
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses)
    EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(Count("SELECT count(*) FROM users WHERE id >= 1000"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM orders WHERE user_id >= 1000"), 0);
}

// Rows of every table, as text, to check that nothing else changed.
constexpr char kEverything[] =
    "SELECT group_concat(row, ';') FROM ("
    " SELECT quote(id)||quote(email)||quote(full_name)||quote(phone)||"
    "  quote(photo)||quote(score) AS row FROM users"
    " UNION ALL SELECT quote(id)||quote(user_id)||quote(item) FROM orders"
    " UNION ALL SELECT quote(ref)||quote(user_id) FROM tickets"
    " UNION ALL SELECT quote(\"user id\")||quote(note) FROM \"odd "
    "\"\"table\"\"\")";

TEST_F(SqliteConnectorTest, RectifyChangesOnlyTheNamedFieldOfTheSubjectsRows) {
  store_.collections[0].pii_fields = {{"full_name", "identity"},
                                      {"phone", "contact"}};
  store_.collections[1].pii_fields = {{"item", "purchase_history"}};
  std::string before = Text(kEverything);
  std::unique_ptr<Connector> connector = Make();
  // No collection is named: every table with a full_name column.
  absl::StatusOr<int64_t> changed = connector->Rectify(
      {{"email", "ALICE@example.com"}}, {{"", "full_name", "Alice Smith"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 1);
  EXPECT_EQ(Text(kEverything),
            absl::StrReplaceAll(before, {{"'Alice Adams'", "'Alice Smith'"}}));

  // Idempotent: the value is already there.
  changed = connector->Rectify({{"email", "alice@example.com"}},
                               {{"", "full_name", "Alice Smith"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 0);

  // Two fields of one row count the row once; one already equal is fine.
  changed = connector->Rectify({{"user_id", "42"}},
                               {{"users", "full_name", "Alice Smith"},
                                {"users", "phone", "+44 7700 900009"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 1);
  EXPECT_EQ(Text("SELECT phone FROM users WHERE id = 42"), "+44 7700 900009");
  EXPECT_EQ(Text("SELECT phone FROM users WHERE id = 7"), "07700 900002");

  // A correction of one collection leaves the others alone.
  changed = connector->Rectify({{"user_id", "42"}},
                               {{"orders", "item", "standing desk"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 2);
  EXPECT_EQ(Count("SELECT count(*) FROM orders WHERE item = 'standing desk'"),
            2);
  EXPECT_EQ(Text("SELECT item FROM orders WHERE id = 4"), "chair");  // 420.
}

TEST_F(SqliteConnectorTest, RectifyRejectsFieldsThatAreNotPii) {
  store_.collections[0].pii_fields = {{"full_name", "identity"}};
  std::string before = Text(kEverything);
  std::unique_ptr<Connector> connector = Make();
  // orders has an item column, not listed as PII; the valid correction of
  // full_name is not applied either.
  absl::StatusOr<int64_t> changed = connector->Rectify(
      {{"user_id", "42"}},
      {{"", "full_name", "Eve"}, {"", "item", "stolen goods"}});
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(changed.status().message()),
              ::testing::HasSubstr("\"item\""));
  // An identity column is not PII here either.
  changed = connector->Rectify({{"user_id", "42"}}, {{"users", "id", "43"}});
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(changed.status().message()),
              ::testing::HasSubstr("\"id\""));
  EXPECT_EQ(
      connector->Rectify({{"user_id", "42"}}, {{"", "", "x"}}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(connector
                ->Rectify({{"user_id", "42"}},
                          {{"", "full_name", "A"}, {"users", "full_name", "B"}})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Text(kEverything), before);

  // A field no table has, or a collection this store does not have, is
  // skipped.
  changed = connector->Rectify(
      {{"user_id", "42"}},
      {{"", "shoe_size", "9"}, {"invoices", "full_name", "Eve"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 0);
  EXPECT_EQ(Text(kEverything), before);
}

TEST_F(SqliteConnectorTest, RectifiedValuesTakeTheColumnsType) {
  Exec("ALTER TABLE users ADD COLUMN age INTEGER");
  store_.collections[0].pii_fields = {
      {"age", "identity"}, {"email", "contact"}, {"full_name", "identity"}};
  store_.collections[3].pii_fields = {{"note", "other"}};
  std::unique_ptr<Connector> connector = Make();
  absl::StatusOr<int64_t> changed = connector->Rectify(
      {{"user_id", "42"}}, {{"", "age", "37"}, {"", "note", "37"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 3);  // users 42 and both untyped rows.
  // Bound as text, stored with the column's affinity.
  EXPECT_EQ(Text("SELECT typeof(age) || age FROM users WHERE id = 42"),
            "integer37");
  EXPECT_EQ(Count("SELECT count(*) FROM \"odd \"\"table\"\"\" "
                  "WHERE note = '37' AND typeof(note) = 'text'"),
            2);
  // The same number again is no change, also in the INTEGER column.
  changed = connector->Rectify({{"user_id", "42"}},
                               {{"", "age", "37"}, {"", "note", "37"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 0);

  // Text that is not a number stays text; a change of case is a change.
  changed = connector->Rectify({{"user_id", "42"}},
                               {{"", "email", "ALICE@example.com"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 1);
  EXPECT_EQ(Text("SELECT email FROM users WHERE id = 42"), "ALICE@example.com");

  // Values are bound, never spliced into the SQL.
  const std::string evil = "x'); DROP TABLE users; --";
  changed = connector->Rectify({{"user_id", "42"}}, {{"", "full_name", evil}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(Text("SELECT full_name FROM users WHERE id = 42"), evil);
  EXPECT_EQ(Count("SELECT count(*) FROM users"), 2);
}

TEST_F(SqliteConnectorTest, RectifyIsOneTransaction) {
  // tickets lists a PII column it does not have: the whole call fails and
  // users, corrected first, keeps its value.
  store_.collections[0].pii_fields = {{"full_name", "identity"}};
  store_.collections[2].pii_fields = {{"full_name", "identity"}};
  absl::StatusOr<int64_t> changed =
      Make()->Rectify({{"user_id", "42"}}, {{"", "full_name", "Alice Smith"}});
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ConnectorErrorName(changed.status()), "Connector.SchemaMismatch");
  EXPECT_EQ(Text("SELECT full_name FROM users WHERE id = 42"), "Alice Adams");
}

TEST_F(SqliteConnectorTest, ErrorsCarryTheirErrorNames) {
  Exec("CREATE UNIQUE INDEX users_email ON users (email)");
  store_.collections[0].pii_fields = {{"email", "contact"},
                                      {"full_name", "identity"}};
  std::unique_ptr<Connector> connector = Make();
  const std::string before = Text(kEverything);

  // A value that is not of the field's type is refused before the store is
  // opened for writing.
  absl::Status invalid =
      connector->Rectify({{"user_id", "42"}}, {{"", "email", "not an email"}})
          .status();
  EXPECT_EQ(invalid.code(), absl::StatusCode::kInvalidArgument) << invalid;
  EXPECT_EQ(ConnectorErrorName(invalid), "Connector.InvalidValue");
  EXPECT_THAT(std::string(invalid.message()),
              ::testing::HasSubstr("not an email address"));

  // Bob's email for Alice: UNIQUE refuses it, and nothing changes.
  absl::Status unique =
      connector
          ->Rectify({{"user_id", "42"}}, {{"", "full_name", "Alice Smith"},
                                          {"", "email", "bob@example.com"}})
          .status();
  EXPECT_EQ(unique.code(), absl::StatusCode::kFailedPrecondition) << unique;
  EXPECT_EQ(ConnectorErrorName(unique), "Connector.ConstraintViolation");
  EXPECT_EQ(Text(kEverything), before);

  // A table the inventory names but the database lacks.
  store_.collections.push_back({"gone", {{"user_id", "user_id"}}, {}, {}});
  absl::Status missing = Make()->Discover({{"user_id", "42"}}).status();
  EXPECT_EQ(ConnectorErrorName(missing), "Connector.SchemaMismatch");

  // A database file the worker may not write.
  if (::geteuid() != 0) {  // Root writes read-only files anyway.
    store_.collections.pop_back();
    std::filesystem::permissions(path_, std::filesystem::perms::owner_read |
                                            std::filesystem::perms::group_read);
    absl::Status read_only = Make()->Erase({{"user_id", "42"}}).status();
    EXPECT_EQ(ConnectorErrorName(read_only), "Connector.PermissionDenied")
        << read_only;
  }
}

TEST_F(SqliteConnectorTest, SetProcessingFlagSetsTheColumnToOne) {
  Exec("ALTER TABLE users ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0");
  Exec("ALTER TABLE orders ADD COLUMN restricted BOOLEAN");
  store_.collections[0].processing_flags = {{"restriction", "restricted"}};
  store_.collections[1].processing_flags = {{"restriction", "restricted"}};
  std::string before = Text(kEverything);
  std::unique_ptr<Connector> connector = Make();
  std::vector<Identity> alice = {{"email", "alice@EXAMPLE.com"},
                                 {"user_id", "42"}};
  absl::StatusOr<int64_t> flagged =
      connector->SetProcessingFlag(alice, "restriction");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 3);  // users 42, orders 1 and 2.
  EXPECT_EQ(Text("SELECT group_concat(id || ':' || restricted) FROM users"),
            "7:0,42:1");
  EXPECT_EQ(Text("SELECT group_concat(id || ':' || quote(restricted)) "
                 "FROM orders"),
            "1:1,2:1,3:NULL,4:NULL");
  EXPECT_EQ(Text(kEverything), before);  // Nothing else changed.

  flagged = connector->SetProcessingFlag(alice, "restriction");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);

  // No table has an objection flag.
  flagged = connector->SetProcessingFlag(alice, "objection");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);
  EXPECT_EQ(connector->SetProcessingFlag(alice, "erasure").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteConnectorTest, StoreWithoutTheFlagIsNotOpened) {
  store_.path = dir_ + "/gone.db";
  absl::StatusOr<int64_t> flagged =
      Make()->SetProcessingFlag({{"user_id", "42"}}, "restriction");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);
  store_.collections[0].processing_flags = {{"restriction", "restricted"}};
  EXPECT_EQ(Make()
                ->SetProcessingFlag({{"user_id", "42"}}, "restriction")
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(Make()
                ->Rectify({{"user_id", "42"}}, {{"", "phone", "1"}})
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(std::filesystem::exists(store_.path));
}

// Sets the cancel flag it was given on its first write, as a worker's stop
// would while an export is under way.
class CancellingSink : public ByteSink {
 public:
  explicit CancellingSink(std::atomic<bool>& cancel) : cancel_(cancel) {}
  absl::Status Write(std::string_view bytes) override {
    cancel_ = true;
    return absl::OkStatus();
  }

 private:
  std::atomic<bool>& cancel_;
};

TEST_F(SqliteConnectorTest, CancelInterruptsAnExportMidScan) {
  AddOrdersOfUser42(20000);
  std::atomic<bool> cancel{false};
  absl::StatusOr<std::unique_ptr<Connector>> connector =
      CreateConnector(store_, &cancel);
  ASSERT_TRUE(connector.ok()) << connector.status();
  CancellingSink sink(cancel);
  absl::StatusOr<ConnectorResult> result =
      (*connector)->Export({{"user_id", "42"}}, sink);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled)
      << result.status();
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::HasSubstr("store shop"));
}

TEST_F(SqliteConnectorTest, CancelledConnectorChangesNothing) {
  store_.collections[0].processing_flags = {{"restriction", "restricted"}};
  Exec("ALTER TABLE users ADD COLUMN restricted INTEGER");
  std::atomic<bool> cancel{true};
  absl::StatusOr<std::unique_ptr<Connector>> connector =
      CreateConnector(store_, &cancel);
  ASSERT_TRUE(connector.ok()) << connector.status();
  const std::vector<Identity> alice = {{"user_id", "42"}};
  StringSink sink;
  EXPECT_EQ((*connector)->Export(alice, sink).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ((*connector)->Discover(alice).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ((*connector)->Erase(alice).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ((*connector)
                ->Rectify(alice, {{"users", "full_name", "A"}})
                .status()
                .code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(
      (*connector)->SetProcessingFlag(alice, "restriction").status().code(),
      absl::StatusCode::kCancelled);
  EXPECT_EQ(Count("SELECT count(*) FROM orders WHERE user_id = 42"), 2);
  EXPECT_EQ(Text("SELECT full_name FROM users WHERE id = 42"), "Alice Adams");
  EXPECT_EQ(Text("SELECT restricted FROM users WHERE id = 42"), "NULL");
}

// A connection rolled back after a failed write goes back to the pool and
// must still stop when the worker stops.
TEST_F(SqliteConnectorTest, AConnectionKeptAfterARollbackStillHonoursCancel) {
  AddOrdersOfUser42(20000);
  // A flag whose column the table lacks: setting it fails inside the write
  // transaction, which is rolled back; the connection is kept.
  store_.collections[0].processing_flags = {{"restriction", "restricted"}};
  std::atomic<bool> cancel{false};
  absl::StatusOr<std::unique_ptr<Connector>> connector =
      CreateConnector(store_, &cancel);
  ASSERT_TRUE(connector.ok()) << connector.status();
  const std::vector<Identity> alice = {{"user_id", "42"}};
  EXPECT_FALSE((*connector)->SetProcessingFlag(alice, "restriction").ok());
  cancel = true;
  EXPECT_EQ((*connector)->Erase(alice).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(Count("SELECT count(*) FROM orders WHERE user_id = 42"), 20002);
}

// A store laid out like the sample shop's: users.email UNIQUE and stored
// lowercase, users.phone as people type it, subscribers.email in any case.
class SqliteLookupTest : public ::testing::Test {
 protected:
  // The index docs/inventory.md tells stores to create for phone lookups.
  static constexpr char kPhoneIndex[] =
      "CREATE INDEX users_phone_digits ON users (replace(replace(replace("
      "replace(replace(replace(phone, ' ', ''), '-', ''), '.', ''), '(', ''), "
      "')', ''), '/', ''))";

  void SetUp() override {
    char pattern[] = "/tmp/sqlite_lookup_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/accounts.db";
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db_), SQLITE_OK);
    Exec(R"sql(
      CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE,
                          full_name TEXT, phone TEXT);
      CREATE TABLE subscribers (email TEXT NOT NULL, consent TEXT);
      CREATE INDEX subscribers_email_lower ON subscribers (lower(email));
      INSERT INTO users VALUES
        (5, 'person5@example.com', 'Ada Adams', '+44 7700 454764'),
        (6, 'person6@example.com', 'Ben Brown', '(01632) 960-123');
      INSERT INTO subscribers VALUES ('Person5@Example.com', 'newsletter'),
                                     ('person6@example.com', 'newsletter');
    )sql");
    Exec(kPhoneIndex);
    for (int i = 100; i < 300; ++i) {  // Enough rows for the planner to care.
      Exec(absl::StrCat("INSERT INTO users VALUES (", i, ", 'p", i,
                        "@example.com', 'x', '+44 7700 900", i, "');",
                        "INSERT INTO subscribers VALUES ('P", i,
                        "@example.com', 'n');"));
    }
    Exec("ANALYZE");
    store_.name = "accounts";
    store_.kind = "sqlite";
    store_.path = path_;
    store_.default_phone_region = "GB";
    CollectionSpec users;
    users.name = "users";
    users.identity_fields = {
        {"email", "email"}, {"user_id", "id"}, {"phone", "phone"}};
    users.canonical_identities = {"email"};
    CollectionSpec subscribers;
    subscribers.name = "subscribers";
    subscribers.identity_fields = {{"email", "email"}};
    store_.collections = {users, subscribers};
  }

  void TearDown() override {
    sqlite3_close(db_);
    std::filesystem::remove_all(dir_);
  }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error),
              SQLITE_OK)
        << (error ? error : "");
  }

  int64_t Found(const std::vector<Identity>& identities) {
    SqliteConnector connector(store_);
    absl::StatusOr<ConnectorResult> result = connector.Discover(identities);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->record_count : -1;
  }

  std::vector<std::string> Plan(const std::vector<Identity>& identities) {
    SqliteConnector connector(store_);
    absl::StatusOr<std::vector<std::string>> plan =
        connector.ExplainLookup(identities);
    EXPECT_TRUE(plan.ok()) << plan.status();
    return plan.ok() ? *plan : std::vector<std::string>{};
  }

  std::string dir_;
  std::string path_;
  sqlite3* db_ = nullptr;
  StoreSpec store_;
};

TEST_F(SqliteLookupTest, StoredPhonesMatchThroughTheNormaliser) {
  EXPECT_EQ(Found({{"phone", "+447700454764"}}), 1);
  EXPECT_EQ(Found({{"phone", "07700 454764"}}), 1);
  EXPECT_EQ(Found({{"phone", "+44 (0)7700-454764"}}), 1);  // Trunk "(0)".
  EXPECT_EQ(Found({{"phone", "+441632960123"}}), 1);
  EXPECT_EQ(Found({{"phone", "+447700454765"}}), 0);
  SqliteConnector connector(store_);
  absl::StatusOr<ConnectorResult> result =
      connector.Discover({{"phone", "+447700454764"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->discovered,
              UnorderedElementsAre(Identity{"email", "person5@example.com"},
                                   Identity{"user_id", "5"}));
}

TEST_F(SqliteLookupTest, StoredEmailsMatchIgnoringCase) {
  // users (stored lowercase) and subscribers (stored as typed).
  EXPECT_EQ(Found({{"email", "PERSON5@example.com"}}), 2);
  EXPECT_EQ(Found({{"email", " person6@EXAMPLE.com "}}), 2);
}

TEST_F(SqliteLookupTest, EveryLookupIsAnIndexSearch) {
  std::vector<std::string> plan = Plan({{"email", "Person5@Example.com"},
                                        {"user_id", "5"},
                                        {"phone", "+447700454764"}});
  ASSERT_FALSE(plan.empty());
  for (const std::string& step : plan) {
    EXPECT_THAT(step, Not(::testing::HasSubstr(": SCAN"))) << step;
  }
  EXPECT_THAT(plan, ::testing::Contains(::testing::HasSubstr(
                        "users: SEARCH users USING INDEX users_phone_digits")));
  EXPECT_THAT(plan, ::testing::Contains(::testing::HasSubstr(
                        "subscribers: SEARCH subscribers USING INDEX "
                        "subscribers_email_lower")));
}

TEST_F(SqliteLookupTest, AStoreWithoutTheIndexesIsScanned) {
  Exec("DROP INDEX subscribers_email_lower; DROP INDEX users_phone_digits");
  std::vector<std::string> plan =
      Plan({{"email", "person5@example.com"}, {"phone", "+447700454764"}});
  EXPECT_THAT(plan, ::testing::Contains(
                        ::testing::HasSubstr("subscribers: SCAN subscribers")));
  EXPECT_THAT(plan,
              ::testing::Contains(::testing::HasSubstr("users: SCAN users")));
}

TEST(CreateConnectorTest, RejectsUnknownKind) {
  StoreSpec store;
  store.name = "x";
  store.kind = "mongodb";
  store.collections = {{"t", {{"email", "email"}}, {}, {}}};
  EXPECT_EQ(CreateConnector(store).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dsar
