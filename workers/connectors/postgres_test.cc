#include "workers/connectors/postgres.h"

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/connector_errors.h"
#include "nlohmann/json.hpp"
#include "tests/testing/postgres_server.h"
#include "workers/connectors/connector.h"
#include "workers/connectors/store_probe.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using Json = nlohmann::json;
using testing::PostgresServer;

constexpr char kPassword[] = "s3cret-Pa55word-never-shown";
constexpr char kMaskingKey[] = "0123456789abcdef0123456789abcdef-test-key";
// How long a test polls the server for a condition (a lock wait, a
// backend's end) before it gives up.
constexpr auto kPollTimeout = std::chrono::seconds(30);

void PrintTo(const Identity& identity, std::ostream* os) {
  *os << identity.key << "=" << identity.value;
}

std::string HmacHex(const std::string& key, const std::string& value) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(value.data()), value.size(),
       digest, &size);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), size));
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// One PostgreSQL server for the whole binary (initdb takes seconds); each
// test gets a database of its own.
class PostgresConnectorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (server_ != nullptr) return;
    absl::StatusOr<std::unique_ptr<PostgresServer>> started =
        PostgresServer::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(*started).release();
    ASSERT_TRUE(
        server_
            ->Exec(absl::StrCat(
                "CREATE ROLE dsar_worker LOGIN PASSWORD '", kPassword,
                "'; CREATE ROLE tls_worker LOGIN PASSWORD '", kPassword,
                "'; CREATE ROLE reader LOGIN PASSWORD '", kPassword, "'"))
            .ok());
  }

  // After the suite's last test: stops the server and removes its files.
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    dbname_ = absl::StrCat("test_", ++databases_);
    ASSERT_TRUE(server_->Exec("CREATE DATABASE " + dbname_).ok());
    Exec(R"sql(
      CREATE TABLE users (id integer PRIMARY KEY, email text, full_name text,
                          phone text, photo bytea, score double precision,
                          restricted boolean NOT NULL DEFAULT false,
                          objected integer NOT NULL DEFAULT 0, meta jsonb);
      CREATE INDEX users_email_lower ON users (lower(email));
      CREATE INDEX users_phone_digits ON users (translate(phone, ' -.()/', ''));
      INSERT INTO users VALUES
        (42, 'Alice@Example.com', 'Alice Adams', '+44 7700 900001', '\x00ff',
         1.5, false, 0, '{"a": 1}'),
        (7, 'bob@example.com', 'Bob Brown', '07700 900002', NULL, NULL, false,
         0, NULL);
      CREATE TABLE orders (id serial PRIMARY KEY, user_id bigint, item text);
      CREATE INDEX orders_user_id ON orders (user_id);
      INSERT INTO orders (user_id, item) VALUES (42, 'lamp'), (42, 'desk'),
                                                (7, 'pen'), (420, 'chair');
      CREATE TABLE tickets (ref text, user_id text);
      CREATE INDEX tickets_user_id ON tickets (user_id);
      INSERT INTO tickets VALUES ('t1', '42'), ('t2', '7'), ('t3', '042');
      CREATE TABLE invoices (id serial PRIMARY KEY, customer_id integer,
                             email text, full_name text, note text,
                             amount numeric(10, 2));
      CREATE INDEX invoices_customer_id ON invoices (customer_id);
      CREATE INDEX invoices_email_lower ON invoices (lower(email));
      INSERT INTO invoices (customer_id, email, full_name, note, amount) VALUES
        (42, 'alice@example.com', 'Alice Adams', 'VIP', 19.99),
        (7, 'bob@example.com', 'Bob Brown', 'new', 5.00);
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public
        TO dsar_worker, tls_worker;
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;
    )sql");

    password_file_ = server_->scratch_dir() + "/password";
    WriteFile(password_file_, absl::StrCat(kPassword, "\n"));
    key_file_ = server_->scratch_dir() + "/masking.key";
    WriteFile(key_file_, kMaskingKey);

    store_.name = "crm";
    store_.kind = "postgres";
    store_.default_phone_region = "GB";
    store_.schema = "public";
    store_.masking_key_file = key_file_;
    store_.connection.host = "127.0.0.1";
    store_.connection.port = absl::StrCat(server_->port());
    store_.connection.dbname = dbname_;
    store_.connection.user = "dsar_worker";
    store_.connection.password_file = password_file_;
    store_.connection.sslmode = "disable";
    CollectionSpec users;
    users.name = "users";
    users.identity_fields = {
        {"email", "email"}, {"user_id", "id"}, {"phone", "phone"}};
    users.pii_fields = {
        {"email", "contact"}, {"full_name", "identity"}, {"phone", "contact"}};
    users.processing_flags = {{"restriction", "restricted"},
                              {"objection", "objected"}};
    CollectionSpec orders;
    orders.name = "orders";
    orders.identity_fields = {{"user_id", "user_id"}};
    CollectionSpec tickets;
    tickets.name = "tickets";
    tickets.identity_fields = {{"user_id", "user_id"}};
    store_.collections = {users, orders, tickets};
  }

  // The invoices table, masked on erasure as `masks` says.
  CollectionSpec Invoices(std::map<std::string, FieldMask> masks) {
    CollectionSpec invoices;
    invoices.name = "invoices";
    invoices.identity_fields = {{"email", "email"}, {"user_id", "customer_id"}};
    invoices.pii_fields = {
        {"full_name", "identity"}, {"note", "other"}, {"amount", "financial"}};
    invoices.mask_on_erase = true;
    invoices.masks = std::move(masks);
    return invoices;
  }

  void Exec(const std::string& sql) {
    absl::Status status = server_->Exec(sql, dbname_);
    ASSERT_TRUE(status.ok()) << status;
  }

  std::string Value(const std::string& sql) {
    absl::StatusOr<std::string> value = server_->Query(sql, dbname_);
    EXPECT_TRUE(value.ok()) << value.status();
    return value.ok() ? *value : "";
  }

  int64_t Count(const std::string& sql) { return std::stoll(Value(sql)); }

  // Polls until `sql` gives a value other than "0"; false after
  // kPollTimeout.
  bool WaitUntil(const std::string& sql) {
    auto deadline = std::chrono::steady_clock::now() + kPollTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      absl::StatusOr<std::string> value = server_->Query(sql, dbname_);
      if (value.ok() && *value != "0") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::unique_ptr<PostgresConnector> Make(
      const std::atomic<bool>* cancel = nullptr) {
    return std::make_unique<PostgresConnector>(store_, cancel);
  }

  // A superuser connection holding `lock_sql` in an open transaction until
  // it is destroyed.
  class LockHolder {
   public:
    LockHolder(const PostgresServer& server, const std::string& dbname,
               const std::string& lock_sql)
        : conn_(PQconnectdb(server.SuperuserConninfo(dbname).c_str())) {
      EXPECT_EQ(PQstatus(conn_), CONNECTION_OK) << PQerrorMessage(conn_);
      PGresult* result = PQexec(conn_, ("BEGIN; " + lock_sql).c_str());
      EXPECT_EQ(PQresultStatus(result), PGRES_COMMAND_OK)
          << PQresultErrorMessage(result);
      PQclear(result);
    }
    ~LockHolder() { PQfinish(conn_); }  // Rolls back, releasing the lock.

   private:
    PGconn* conn_;
  };

  static PostgresServer* server_;
  static int databases_;
  std::string dbname_;
  std::string password_file_;
  std::string key_file_;
  StoreSpec store_;
};

PostgresServer* PostgresConnectorTest::server_ = nullptr;
int PostgresConnectorTest::databases_ = 0;

const std::vector<Identity> kAlice = {{"email", "ALICE@example.com"},
                                      {"user_id", "42"}};

TEST_F(PostgresConnectorTest, ExportWritesTheSubjectsRowsAsOneJsonDocument) {
  StringSink sink;
  absl::StatusOr<ConnectorResult> result = Make()->Export(kAlice, sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 4);  // 1 user, 2 orders, ticket "42".
  Json document = Json::parse(sink.text());
  EXPECT_EQ(document["store"], "crm");
  ASSERT_EQ(document["records"].size(), 4u);
  const Json& user = document["records"][0];
  EXPECT_EQ(user["collection"], "users");
  EXPECT_EQ(user["data"]["id"], 42);
  EXPECT_EQ(user["data"]["email"], "Alice@Example.com");
  EXPECT_EQ(user["data"]["photo"], "AP8=");  // bytea as base64.
  EXPECT_EQ(user["data"]["score"], 1.5);
  EXPECT_EQ(user["data"]["restricted"], false);
  EXPECT_EQ(user["data"]["meta"], Json::parse(R"({"a": 1})"));
  std::vector<std::string> collections;
  for (const Json& record : document["records"]) {
    collections.push_back(record["collection"]);
  }
  EXPECT_THAT(collections, ElementsAre("users", "orders", "orders", "tickets"));
  EXPECT_THAT(result->discovered,
              UnorderedElementsAre(Identity{"phone", "+447700900001"}));
}

TEST_F(PostgresConnectorTest, DiscoverFindsIdentitiesByEveryKey) {
  absl::StatusOr<ConnectorResult> by_email =
      Make()->Discover({{"email", "alice@EXAMPLE.com"}});
  ASSERT_TRUE(by_email.ok()) << by_email.status();
  EXPECT_EQ(by_email->record_count, 1);
  EXPECT_THAT(by_email->discovered,
              UnorderedElementsAre(Identity{"user_id", "42"},
                                   Identity{"phone", "+447700900001"}));
  // A phone stored as typed, in national form, found by its E.164 form.
  absl::StatusOr<ConnectorResult> by_phone =
      Make()->Discover({{"phone", "+447700900002"}});
  ASSERT_TRUE(by_phone.ok()) << by_phone.status();
  EXPECT_EQ(by_phone->record_count, 1);
  EXPECT_THAT(by_phone->discovered,
              UnorderedElementsAre(Identity{"user_id", "7"},
                                   Identity{"email", "bob@example.com"}));
}

TEST_F(PostgresConnectorTest,
       UserIdsMatchAcrossColumnTypesOnlyInCanonicalForm) {
  // "42" matches the integer 42 and the text "42", never the text "042";
  // "042" matches only that text (never the number 42).
  absl::StatusOr<ConnectorResult> found = Make()->Discover({{"user_id", "42"}});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->record_count, 4);
  found = Make()->Discover({{"user_id", "042"}});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->record_count, 1);
}

TEST_F(PostgresConnectorTest, OtherColumnTypesAreComparedAsText) {
  // A uuid column: "not-a-uuid" must match nothing rather than fail the
  // cast, and a numeric too precise for a double is exported exactly.
  Exec(R"sql(
    CREATE TABLE sessions (token uuid PRIMARY KEY, total numeric(30, 2));
    CREATE INDEX sessions_token_text ON sessions ((token::text));
    INSERT INTO sessions VALUES
      ('8c5e0f3a-1b2c-4d5e-8f90-123456789abc', 1234567890123456789.25);
    GRANT SELECT, UPDATE, DELETE ON sessions TO dsar_worker;
  )sql");
  CollectionSpec sessions;
  sessions.name = "sessions";
  sessions.identity_fields = {{"session_token", "token"}};
  store_.collections = {sessions};
  StringSink sink;
  absl::StatusOr<ConnectorResult> found = Make()->Export(
      {{"session_token", "8c5e0f3a-1b2c-4d5e-8f90-123456789abc"}}, sink);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->record_count, 1);
  EXPECT_EQ(Json::parse(sink.text())["records"][0]["data"]["total"],
            "1234567890123456789.25");
  absl::StatusOr<EraseResult> erased =
      Make()->Erase({{"session_token", "not-a-uuid"}});
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->record_count(), 0);
}

TEST_F(PostgresConnectorTest, LookupsUseTheTablesIndexes) {
  Exec(R"sql(
    INSERT INTO users (id, email, phone)
      SELECT n, 'user' || n || '@example.com', '+4477009' || lpad(n::text, 5, '0')
      FROM generate_series(1000, 6000) AS n;
    INSERT INTO orders (user_id, item)
      SELECT n, 'thing' FROM generate_series(1000, 6000) AS n;
    INSERT INTO tickets SELECT 'x', n::text FROM generate_series(1000, 6000) AS n;
    ANALYZE;
  )sql");
  absl::StatusOr<std::vector<std::string>> plan =
      Make()->ExplainLookup({{"email", "alice@example.com"},
                             {"phone", "+447700900001"},
                             {"user_id", "42"}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_FALSE(plan->empty());
  for (const std::string& line : *plan) {
    EXPECT_THAT(line, Not(HasSubstr("Seq Scan")))
        << ::testing::PrintToString(*plan);
  }
}

// dsarctl inventory check asks the planner with sequential scans priced
// out: on these small tables a plan would scan anyway, yet every lookup has
// an index; without users' lower(email) index, the email lookup has none.
TEST_F(PostgresConnectorTest, InventoryCheckFindsALookupWithoutAnIndex) {
  absl::StatusOr<std::map<std::string, CollectionShape>> shapes =
      ProbeStore(store_, /*sample_rows=*/5);
  ASSERT_TRUE(shapes.ok()) << shapes.status();
  for (const auto& [table, shape] : *shapes) {
    EXPECT_THAT(shape.unindexed_identity_keys, ::testing::IsEmpty()) << table;
  }
  Exec("DROP INDEX users_email_lower");
  shapes = ProbeStore(store_, /*sample_rows=*/5);
  ASSERT_TRUE(shapes.ok()) << shapes.status();
  EXPECT_THAT((*shapes)["users"].unindexed_identity_keys,
              ::testing::ElementsAre("email"));
}

TEST_F(PostgresConnectorTest, EraseDeletesEverywhereAndIsIdempotent) {
  absl::StatusOr<EraseResult> erased = Make()->Erase(kAlice);
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->record_count(), 4);
  std::vector<std::pair<std::string, int64_t>> deleted;
  for (const CollectionErasure& collection : erased->collections) {
    deleted.emplace_back(collection.collection, collection.rows_deleted);
  }
  EXPECT_THAT(deleted,
              ElementsAre(std::pair<std::string, int64_t>("users", 1),
                          std::pair<std::string, int64_t>("orders", 2),
                          std::pair<std::string, int64_t>("tickets", 1)));
  EXPECT_EQ(Count("SELECT count(*) FROM users"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM orders"), 2);   // 7's and 420's.
  EXPECT_EQ(Count("SELECT count(*) FROM tickets"), 2);  // "7" and "042".

  absl::StatusOr<EraseResult> again = Make()->Erase(kAlice);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->record_count(), 0);
}

TEST_F(PostgresConnectorTest, EraseMasksEachFieldAsTheInventorySays) {
  store_.collections = {Invoices({
      {"email", {MaskStrategy::kHash, ""}},
      {"customer_id", {MaskStrategy::kNull, ""}},
      {"full_name", {MaskStrategy::kRandom, ""}},
      {"note", {MaskStrategy::kFixed, "[erased]"}},
      {"amount", {MaskStrategy::kKeep, "Tax law: HGB 257, 10 years"}},
  })};
  absl::StatusOr<EraseResult> erased = Make()->Erase(kAlice);
  ASSERT_TRUE(erased.ok()) << erased.status();
  ASSERT_EQ(erased->collections.size(), 1u);
  EXPECT_EQ(erased->collections[0].rows_deleted, 0);
  EXPECT_EQ(erased->collections[0].rows_masked, 1);
  EXPECT_EQ(erased->collections[0].fields_masked, 4);
  EXPECT_EQ(erased->record_count(), 1);

  EXPECT_EQ(Count("SELECT count(*) FROM invoices"), 2);  // The row stays.
  std::string id = "(SELECT id FROM invoices WHERE amount = 19.99)";
  EXPECT_EQ(Value("SELECT email FROM invoices WHERE id = " + id),
            HmacHex(kMaskingKey, "alice@example.com"));
  EXPECT_EQ(Value("SELECT customer_id FROM invoices WHERE id = " + id), "NULL");
  std::string random = Value("SELECT full_name FROM invoices WHERE id = " + id);
  EXPECT_EQ(random.size(), 32u);
  EXPECT_NE(random, "Alice Adams");
  EXPECT_EQ(Value("SELECT note FROM invoices WHERE id = " + id), "[erased]");
  // Bob's invoice is untouched.
  EXPECT_EQ(Value("SELECT full_name FROM invoices WHERE customer_id = 7"),
            "Bob Brown");

  // Masked rows no longer match: nothing is hashed twice.
  absl::StatusOr<EraseResult> again = Make()->Erase(kAlice);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->record_count(), 0);
  EXPECT_EQ(again->collections[0].fields_masked, 0);
  EXPECT_EQ(Value("SELECT email FROM invoices WHERE id = " + id),
            HmacHex(kMaskingKey, "alice@example.com"));
  EXPECT_EQ(Value("SELECT full_name FROM invoices WHERE id = " + id), random);
}

TEST_F(PostgresConnectorTest, MaskingThatKeepsTheIdentityIsIdempotent) {
  store_.collections = {Invoices({
      {"email", {MaskStrategy::kNull, ""}},
      {"customer_id", {MaskStrategy::kKeep, "Tax law"}},
      {"full_name", {MaskStrategy::kFixed, "[erased]"}},
      {"note", {MaskStrategy::kNull, ""}},
      {"amount", {MaskStrategy::kKeep, "Tax law"}},
  })};
  absl::StatusOr<EraseResult> erased = Make()->Erase({{"user_id", "42"}});
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->collections[0].rows_masked, 1);
  EXPECT_EQ(erased->collections[0].fields_masked, 3);
  // The row still matches through its kept customer_id, but holds its
  // masked values already.
  absl::StatusOr<EraseResult> again = Make()->Erase({{"user_id", "42"}});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->collections[0].rows_masked, 0);
  EXPECT_EQ(again->collections[0].fields_masked, 0);
  EXPECT_EQ(Value("SELECT full_name FROM invoices WHERE customer_id = 42"),
            "[erased]");
}

TEST_F(PostgresConnectorTest, HashMaskWithoutAKeyChangesNothing) {
  store_.collections = {Invoices({
      {"email", {MaskStrategy::kHash, ""}},
      {"customer_id", {MaskStrategy::kNull, ""}},
      {"full_name", {MaskStrategy::kNull, ""}},
      {"note", {MaskStrategy::kNull, ""}},
      {"amount", {MaskStrategy::kKeep, "Tax law"}},
  })};
  WriteFile(key_file_, "short");
  absl::StatusOr<EraseResult> erased = Make()->Erase(kAlice);
  EXPECT_EQ(erased.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(erased.status().message()),
              HasSubstr("fewer than 32 bytes"));
  EXPECT_EQ(Value("SELECT full_name FROM invoices WHERE customer_id = 42"),
            "Alice Adams");
}

TEST_F(PostgresConnectorTest, RectifyChangesOnlyDifferingValues) {
  std::vector<FieldCorrection> corrections = {
      {"", "full_name", "Alice Archer"}};
  absl::StatusOr<int64_t> changed = Make()->Rectify(kAlice, corrections);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 1);
  EXPECT_EQ(Value("SELECT full_name FROM users WHERE id = 42"), "Alice Archer");
  EXPECT_EQ(Value("SELECT full_name FROM users WHERE id = 7"), "Bob Brown");
  changed = Make()->Rectify(kAlice, corrections);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 0);

  // A column that is not a PII field cannot be rectified.
  absl::StatusOr<int64_t> refused =
      Make()->Rectify(kAlice, {{"users", "score", "9"}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  // Nor can a value holding NUL be stored.
  refused =
      Make()->Rectify(kAlice, {{"users", "full_name", std::string("A\0B", 3)}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PostgresConnectorTest, RestrictAndObjectSetTheirFlagsOnce) {
  absl::StatusOr<int64_t> flagged =
      Make()->SetProcessingFlag(kAlice, "restriction");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 1);
  EXPECT_EQ(Value("SELECT restricted FROM users WHERE id = 42"), "t");
  EXPECT_EQ(Value("SELECT restricted FROM users WHERE id = 7"), "f");
  flagged = Make()->SetProcessingFlag(kAlice, "objection");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 1);
  EXPECT_EQ(Value("SELECT objected FROM users WHERE id = 42"), "1");
  flagged = Make()->SetProcessingFlag(kAlice, "objection");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);
}

TEST_F(PostgresConnectorTest, IdentitiesOfDifferentPeopleAreRefused) {
  std::vector<Identity> mixed = {{"email", "alice@example.com"},
                                 {"user_id", "7"}};
  absl::StatusOr<EraseResult> erased = Make()->Erase(mixed);
  ASSERT_EQ(erased.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ConnectorErrorName(erased.status()), kErrorIdentityConflict);
  EXPECT_THAT(std::string(erased.status().message()), Not(HasSubstr("alice")));
  StringSink sink;
  EXPECT_EQ(ConnectorErrorName(Make()->Export(mixed, sink).status()),
            kErrorIdentityConflict);
  EXPECT_EQ(Count("SELECT count(*) FROM users"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM orders"), 4);
}

TEST_F(PostgresConnectorTest, HostileIdentitiesAreOnlyData) {
  const std::vector<std::string> hostile = {
      "'; DROP TABLE users;--",
      "\"; DROP TABLE users;--",
      "42' OR '1'='1",
      "42 OR 1=1",
      "ünïcødé@exämple.com",
      "$1",
      std::string("alice@example.com\0' OR 1=1", 26),
      std::string("42\0", 3),
  };
  for (const std::string& evil : hostile) {
    std::vector<Identity> identities = {
        {"email", evil}, {"user_id", evil}, {"phone", evil}};
    StringSink sink;
    absl::StatusOr<ConnectorResult> exported = Make()->Export(identities, sink);
    ASSERT_TRUE(exported.ok()) << exported.status();
    EXPECT_EQ(exported->record_count, 0);
    absl::StatusOr<EraseResult> erased = Make()->Erase(identities);
    ASSERT_TRUE(erased.ok()) << erased.status();
    EXPECT_EQ(erased->record_count(), 0);
  }
  EXPECT_EQ(Count("SELECT count(*) FROM users"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM tickets"), 3);
}

TEST_F(PostgresConnectorTest, AnEraseKilledMidTransactionChangesNothing) {
  // The erase deletes the user, then waits for the orders table, which
  // another session holds in SHARE mode (it allows the erase's SELECT ...
  // FOR UPDATE, not its DELETE). The worker is killed while it waits.
  auto blocker = std::make_unique<LockHolder>(
      *server_, dbname_, "LOCK TABLE orders IN SHARE MODE");
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<EraseResult> erased = Make()->Erase(kAlice);
    ::_exit(erased.ok() ? 0 : 1);
  }
  bool waiting = WaitUntil(
      "SELECT count(*) FROM pg_locks WHERE NOT granted "
      "AND relation = 'orders'::regclass");
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(waiting) << "the erase never waited for the orders table";
  ASSERT_TRUE(WIFSIGNALED(status));
  // The user's row was deleted in the dead worker's transaction, which can
  // never commit now.
  EXPECT_EQ(Count("SELECT count(*) FROM users WHERE id = 42"), 1);
  blocker.reset();
  // Once the lock is released, the dead worker's backend finds its client
  // gone and ends, rolling back.
  ASSERT_TRUE(WaitUntil(
      "SELECT CASE WHEN count(*) = 0 THEN 1 ELSE 0 END FROM pg_stat_activity "
      "WHERE application_name = 'dsar-worker'"));
  EXPECT_EQ(Count("SELECT count(*) FROM users"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM orders"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM tickets"), 3);
}

TEST_F(PostgresConnectorTest, CancellingAnEraseWaitingForALockRollsItBack) {
  LockHolder blocker(*server_, dbname_, "LOCK TABLE orders IN SHARE MODE");
  std::atomic<bool> cancel{false};
  absl::Status status;
  std::thread eraser([&] { status = Make(&cancel)->Erase(kAlice).status(); });
  bool waiting = WaitUntil(
      "SELECT count(*) FROM pg_locks WHERE NOT granted "
      "AND relation = 'orders'::regclass");
  cancel = true;
  eraser.join();
  ASSERT_TRUE(waiting);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_EQ(Count("SELECT count(*) FROM users WHERE id = 42"), 1);
}

TEST_F(PostgresConnectorTest, ErrorsCarryTheirErrorNames) {
  // A table the inventory names but the database lacks.
  CollectionSpec missing;
  missing.name = "no_such_table";
  missing.identity_fields = {{"user_id", "user_id"}};
  store_.collections.push_back(missing);
  absl::StatusOr<EraseResult> erased = Make()->Erase(kAlice);
  EXPECT_EQ(ConnectorErrorName(erased.status()), kErrorSchemaMismatch)
      << erased.status();
  EXPECT_EQ(Count("SELECT count(*) FROM users"), 2);  // One transaction.
  store_.collections.pop_back();

  // A column that does not exist.
  store_.collections[1].identity_fields = {{"user_id", "customer"}};
  EXPECT_EQ(ConnectorErrorName(Make()->Discover(kAlice).status()),
            kErrorSchemaMismatch);
  store_.collections[1].identity_fields = {{"user_id", "user_id"}};

  // A unique constraint refusing a correction.
  Exec("CREATE UNIQUE INDEX users_full_name ON users (full_name)");
  absl::StatusOr<int64_t> rectified =
      Make()->Rectify(kAlice, {{"users", "full_name", "Bob Brown"}});
  EXPECT_EQ(ConnectorErrorName(rectified.status()), kErrorConstraintViolation);
  EXPECT_THAT(std::string(rectified.status().message()),
              Not(HasSubstr("Bob Brown")));

  // A role that may only read.
  store_.connection.user = "reader";
  EXPECT_EQ(ConnectorErrorName(Make()->Erase(kAlice).status()),
            kErrorPermissionDenied);
  store_.connection.user = "dsar_worker";

  // Nobody listening.
  store_.connection.port = "1";
  absl::StatusOr<ConnectorResult> unreachable = Make()->Discover(kAlice);
  EXPECT_EQ(ConnectorErrorName(unreachable.status()), kErrorUnavailable)
      << unreachable.status();
}

TEST_F(PostgresConnectorTest, ThePasswordNeverAppearsInErrors) {
  WriteFile(password_file_, "wrong-Pa55word-xyzzy\n");
  absl::StatusOr<ConnectorResult> refused = Make()->Discover(kAlice);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied)
      << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), Not(HasSubstr("xyzzy")));
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("password authentication failed"));

  // password_env instead of a file.
  store_.connection.password_file.clear();
  store_.connection.password_env = "DSAR_TEST_PG_PASSWORD";
  ::setenv("DSAR_TEST_PG_PASSWORD", kPassword, 1);
  absl::StatusOr<ConnectorResult> found = Make()->Discover(kAlice);
  ::unsetenv("DSAR_TEST_PG_PASSWORD");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->record_count, 4);
  absl::StatusOr<ConnectorResult> unset = Make()->Discover(kAlice);
  EXPECT_THAT(std::string(unset.status().message()),
              HasSubstr("DSAR_TEST_PG_PASSWORD, which is not set"));
}

TEST_F(PostgresConnectorTest, TlsIsUsedAndVerifiedWhenTheInventoryAsksForIt) {
  // tls_worker is refused without TLS (the server's pg_hba).
  store_.connection.user = "tls_worker";
  EXPECT_EQ(Make()->Discover(kAlice).status().code(),
            absl::StatusCode::kPermissionDenied);

  store_.connection.host = "localhost";
  store_.connection.sslmode = "verify-full";
  store_.connection.sslrootcert = server_->ca_file();
  absl::StatusOr<ConnectorResult> found = Make()->Discover(kAlice);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->record_count, 4);

  // A certificate no trusted CA signed is refused.
  store_.connection.sslrootcert = password_file_;  // Not a CA at all.
  EXPECT_FALSE(Make()->Discover(kAlice).ok());
  store_.connection.sslrootcert = "/etc/ssl/certs/ca-certificates.crt";
  EXPECT_EQ(Make()->Discover(kAlice).status().code(),
            absl::StatusCode::kUnavailable);
}

// dsarctl inventory check reads a postgres store's shape through Probe.
TEST_F(PostgresConnectorTest, ProbeSamplesColumnsWithoutReadingWholeTables) {
  Exec("CREATE TABLE wide AS SELECT g AS n FROM generate_series(1, 1000) g");
  Exec("GRANT SELECT ON wide TO PUBLIC");
  StoreSpec store = store_;
  CollectionSpec wide;
  wide.name = "wide";
  wide.identity_fields["user_id"] = "n";
  CollectionSpec ghost;
  ghost.name = "ghosts";
  ghost.identity_fields["user_id"] = "id";
  store.collections = {store_.collections[0], wide, ghost};
  absl::StatusOr<std::map<std::string, CollectionShape>> shapes =
      PostgresConnector(store).Probe(5);
  ASSERT_TRUE(shapes.ok()) << shapes.status();
  const CollectionShape& users = shapes->at(store_.collections[0].name);
  EXPECT_TRUE(users.exists);
  EXPECT_TRUE(users.columns.count("email") > 0);
  EXPECT_TRUE(users.columns.count("full_name") > 0);
  EXPECT_LE(shapes->at("wide").columns.at("n").size(), 5u);
  EXPECT_FALSE(shapes->at("ghosts").exists);
}

}  // namespace
}  // namespace dsar
