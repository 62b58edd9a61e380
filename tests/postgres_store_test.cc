// A PostgreSQL store end to end: dsard and a dsar-worker process read the
// inventory's postgres store; an access request's bundle holds the
// subject's rows and names the invoice field the law keeps; an erasure
// deletes the subject's account and masks the invoice, dsard keeps the
// per-table counts with the step, and `dsarctl get` shows them.

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/bundle_download.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"
#include "tests/testing/postgres_server.h"
#include "tests/zip_entries.h"

namespace dsar::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kPassword[] = "e2e-Pa55word-never-shown";

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

TEST(PostgresStoreTest, AccessThenErasureThroughTheWorker) {
  absl::StatusOr<std::unique_ptr<PostgresServer>> server =
      PostgresServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  PostgresServer& pg = **server;
  // Apart: CREATE DATABASE cannot run in the transaction of a multi-
  // statement string.
  ASSERT_TRUE(pg.Exec(absl::StrCat("CREATE ROLE dsar_worker LOGIN PASSWORD '",
                                   kPassword, "'"))
                  .ok());
  ASSERT_TRUE(pg.Exec("CREATE DATABASE shop").ok());
  absl::Status schema = pg.Exec(R"sql(
    CREATE TABLE users (id integer PRIMARY KEY, email text, full_name text);
    CREATE INDEX users_email_lower ON users (lower(email));
    INSERT INTO users VALUES (42, 'Person42@example.com', 'Pat Doe'),
                             (43, 'person43@example.com', 'Sam Roe');
    CREATE TABLE invoices (id serial PRIMARY KEY, customer_id integer,
                           email text, full_name text, amount numeric(10, 2));
    CREATE INDEX invoices_customer_id ON invoices (customer_id);
    CREATE INDEX invoices_email_lower ON invoices (lower(email));
    INSERT INTO invoices (customer_id, email, full_name, amount) VALUES
      (42, 'person42@example.com', 'Pat Doe', 19.99),
      (43, 'person43@example.com', 'Sam Roe', 5.00);
    GRANT SELECT, UPDATE, DELETE ON users, invoices TO dsar_worker;
  )sql",
                                "shop");
  ASSERT_TRUE(schema.ok()) << schema;

  TempDir dir("dsar-postgres-store");
  WriteText(dir.Join("pg.password"), absl::StrCat(kPassword, "\n"));
  WriteText(dir.Join("masking.key"), "a masking key of at least 32 bytes....");
  std::string inventory = dir.Join("inventory.yaml");
  WriteText(inventory, absl::StrCat(R"yaml(
masking_key_file: masking.key
stores:
  - name: billing
    kind: postgres
    connection:
      host: 127.0.0.1
      port: )yaml",
                                    pg.port(), R"yaml(
      dbname: shop
      user: dsar_worker
      password_file: pg.password
      sslmode: disable
    tables:
      - name: users
        identity_fields: {email: email, user_id: id}
        pii_fields: {email: contact, full_name: identity}
      - name: invoices
        identity_fields: {email: email, user_id: customer_id}
        pii_fields: {full_name: identity, amount: financial}
        erase:
          mode: mask
          fields:
            email: hash
            customer_id: null
            full_name: {fixed: "[erased]"}
            amount: {keep: "Tax law: HGB 257, 10 years"}
)yaml"));

  DsardOptions dsard_options;
  dsard_options.data_dir = dir.Join("data");
  dsard_options.inventory = inventory;
  absl::StatusOr<RunningDsard> dsard = StartDsard(dsard_options, dir.path());
  ASSERT_TRUE(dsard.ok()) << dsard.status();
  WorkerOptions worker_options;
  worker_options.coordinator_port = dsard->port;
  worker_options.inventory = inventory;
  worker_options.worker_id = "worker-pg";
  absl::StatusOr<std::unique_ptr<Process>> worker =
      StartWorker(worker_options, dir.path());
  ASSERT_TRUE(worker.ok()) << worker.status();

  std::unique_ptr<v1::DsarService::Stub> stub =
      v1::DsarService::NewStub(LoopbackChannel(dsard->port));
  auto submit = [&](v1::RequestType type, const std::string& key) {
    v1::Request created;
    grpc::ClientContext context;
    grpc::Status status = stub->CreateRequest(
        &context, RequestForEmail(type, "person42@example.com", key), &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return created;
  };

  // Access: the export holds the subject's rows, and the answer says which
  // field an erasure would keep, and why.
  v1::Request access = submit(v1::ACCESS, "pg-access");
  absl::StatusOr<v1::Request> accessed =
      WaitUntilTerminal(*stub, access.id(), absl::Seconds(60));
  ASSERT_TRUE(accessed.ok()) << accessed.status();
  ASSERT_EQ(accessed->status(), v1::COMPLETED) << accessed->ShortDebugString();
  absl::StatusOr<std::string> zip = DownloadBundleBytes(*stub, access.id());
  ASSERT_TRUE(zip.ok()) << zip.status();
  absl::StatusOr<std::map<std::string, std::string>> entries =
      ReadZipBytes(*zip);
  ASSERT_TRUE(entries.ok()) << entries.status();
  nlohmann::json exported =
      nlohmann::json::parse((*entries)["data/billing.json"], nullptr, false);
  ASSERT_FALSE(exported.is_discarded()) << (*entries)["data/billing.json"];
  EXPECT_EQ(exported["records"].size(), 2u) << exported.dump();
  nlohmann::json exemptions = nlohmann::json::parse(
      (*entries)["exemptions.json"], nullptr, false)["exemptions"];
  EXPECT_THAT(exemptions.dump(),
              HasSubstr(R"("kind":"retained","legal_basis":"Tax law: HGB 257, )"
                        R"(10 years","reason":"invoices.amount is kept when )"
                        R"(your data is erased")"));
  EXPECT_THAT((*entries)["response.md"],
              HasSubstr("What we keep if you ask us to erase your data"));

  v1::Request created = submit(v1::ERASURE, "pg-erasure");
  absl::StatusOr<v1::Request> done =
      WaitUntilTerminal(*stub, created.id(), absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->status(), v1::COMPLETED)
      << done->ShortDebugString() << ReadFileOrEmpty(dir.Join("worker-pg.log"));

  const v1::StoreStep* erase = nullptr;
  for (const v1::StoreStep& step : done->steps()) {
    if (step.erasures_size() > 0) erase = &step;
  }
  ASSERT_NE(erase, nullptr) << done->ShortDebugString();
  EXPECT_EQ(erase->record_count(), 2);
  ASSERT_EQ(erase->erasures_size(), 2);
  EXPECT_EQ(erase->erasures(0).collection(), "users");
  EXPECT_EQ(erase->erasures(0).rows_deleted(), 1);
  EXPECT_EQ(erase->erasures(1).collection(), "invoices");
  EXPECT_EQ(erase->erasures(1).rows_masked(), 1);
  EXPECT_EQ(erase->erasures(1).fields_masked(), 3);

  EXPECT_EQ(pg.Query("SELECT count(*) FROM users", "shop").value_or(""), "1");
  EXPECT_EQ(
      pg.Query("SELECT full_name FROM invoices WHERE amount = 19.99", "shop")
          .value_or(""),
      "[erased]");
  EXPECT_EQ(
      pg.Query("SELECT full_name FROM invoices WHERE customer_id = 43", "shop")
          .value_or(""),
      "Sam Roe");

  std::string log = dir.Join("dsarctl.log");
  absl::StatusOr<int> exit = RunToExit(
      DsarctlPath(),
      {absl::StrCat("--addr=127.0.0.1:", dsard->port), "get", created.id()},
      log, absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0) << ReadFileOrEmpty(log);
  std::string output = ReadFileOrEmpty(log);
  EXPECT_THAT(output, HasSubstr("billing.users: 1 deleted"));
  EXPECT_THAT(output, HasSubstr("billing.invoices: 1 masked (3 fields)"));
  EXPECT_THAT(ReadFileOrEmpty(dir.Join("worker-pg.log")),
              ::testing::Not(HasSubstr(kPassword)));

  EXPECT_EQ((*worker)->Terminate(), 0);
  EXPECT_EQ(dsard->process->Terminate(), 0);
}

}  // namespace
}  // namespace dsar::testing
