// dsar-demo-services: the demo's stores that are servers rather than files
// (tools/demo): a throw-away PostgreSQL server holding a billing database,
// and an OpenDSR 2.0 support service on loopback HTTPS. Writes the inventory
// entries that reach them, then serves until SIGTERM or SIGINT and removes
// what it made.
//
//   dsar-demo-services --dir=DIR --people=300
//
// DIR/stores.yaml: inventory entries ("  - name: ..."), to append under an
//   inventory's `stores:` list; DIR/ready: written last, names what runs.
// PostgreSQL is left out, with the reason on stderr and in DIR/ready, when
// it is not installed or cannot run here; the OpenDSR service always runs.
// Person i has email person<i>@example.com and user id i, as in
// dsar-sample-stores.

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/program_usage.h"
#include "nlohmann/json.hpp"
#include "tests/testing/opendsr_processor.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/test_pki.h"

ABSL_FLAG(std::string, dir, "",
          "Directory for the services' files (required).");
ABSL_FLAG(int, people, 300, "People in the billing database.");

namespace dsar {
namespace {

constexpr char kWorkerPassword[] = "demo-billing-worker";

// The billing database: invoices that tax law keeps, so an erasure masks
// the person's fields and keeps the amount (docs/inventory.md, "Masking").
absl::Status LoadBilling(const testing::PostgresServer& pg, int people) {
  if (absl::Status role = pg.Exec(absl::StrCat(
          "CREATE ROLE dsar_worker LOGIN PASSWORD '", kWorkerPassword, "'"));
      !role.ok()) {
    return role;
  }
  if (absl::Status db = pg.Exec("CREATE DATABASE billing"); !db.ok()) return db;
  std::string sql = R"sql(
    CREATE TABLE customers (id integer PRIMARY KEY, email text NOT NULL,
                            full_name text, vat_id text);
    CREATE UNIQUE INDEX customers_email_lower ON customers (lower(email));
    CREATE TABLE invoices (id serial PRIMARY KEY, customer_id integer,
                           billing_name text, amount numeric(10, 2),
                           issued date);
    CREATE INDEX invoices_customer_id ON invoices (customer_id);
  )sql";
  absl::StrAppend(&sql,
                  "INSERT INTO customers SELECT i, 'person' || i || "
                  "'@example.com', 'Person ' || i, 'DE' || (100000000 + i) "
                  "FROM generate_series(1, ",
                  people,
                  ") AS i;"
                  "INSERT INTO invoices (customer_id, billing_name, amount, "
                  "issued) SELECT i, 'Person ' || i, (i % 97) + 0.99, "
                  "date '2026-01-01' + (i % 300) FROM generate_series(1, ",
                  people, ") AS i, generate_series(1, 2);",
                  "GRANT SELECT, UPDATE, DELETE ON customers, invoices TO "
                  "dsar_worker;");
  return pg.Exec(sql, "billing");
}

std::string BillingEntry(const testing::PostgresServer& pg,
                         const std::string& password_file) {
  return absl::StrCat(R"yaml(
  - name: billing
    kind: postgres
    purpose: "Invoicing"
    legal_basis: "Legal obligation (GDPR Art. 6(1)(c)): tax law"
    recipients: ["Tax adviser"]
    retention: "10 years after the invoice (HGB 257)"
    source: "Provided by the data subject at checkout"
    connection:
      host: 127.0.0.1
      port: )yaml",
                      pg.port(), R"yaml(
      dbname: billing
      user: dsar_worker
      password_file: )yaml",
                      password_file, R"yaml(
      sslmode: disable
    tables:
      - name: customers
        identity_fields: {email: email, user_id: id}
        pii_fields: {email: contact, full_name: identity, vat_id: identity}
      - name: invoices
        identity_fields: {user_id: customer_id}
        pii_fields: {billing_name: identity, amount: financial}
        erase:
          mode: mask
          fields:
            customer_id: null
            billing_name: {fixed: "[erased]"}
            amount: {keep: "Tax law: invoices are kept 10 years (HGB 257)"}
    identities_from: [accounts]
)yaml");
}

std::string SupportEntry(const testing::OpenDsrProcessor& service,
                         const testing::TestPki& pki) {
  return absl::StrCat(R"yaml(
  - name: support
    kind: opendsr
    purpose: "Customer support tickets (an outsourced help desk)"
    legal_basis: "Contract (GDPR Art. 6(1)(b))"
    recipients: ["Help desk provider"]
    retention: "2 years after the ticket closed"
    source: "Provided by the data subject"
    identity_fields: {email: email}
    opendsr:
      url: )yaml",
                      service.base_url(), R"yaml(
      processor_domain: support.demo.test
      signing_ca: )yaml",
                      pki.ca_file(), R"yaml(
      tls_ca: )yaml",
                      pki.ca_file(), R"yaml(
      poll_interval_ms: 200
)yaml");
}

int Run(const std::string& dir, int people) {
  std::string entries;
  std::string ready;
  // PostgreSQL, when this machine can run it.
  absl::StatusOr<std::unique_ptr<testing::PostgresServer>> pg =
      testing::PostgresServer::Start();
  if (pg.ok()) {
    if (absl::Status loaded = LoadBilling(**pg, people); !loaded.ok()) {
      std::fprintf(stderr, "dsar-demo-services: %s\n",
                   loaded.ToString().c_str());
      return 1;
    }
    const std::string password_file = dir + "/billing.password";
    std::ofstream(password_file) << kWorkerPassword << "\n";
    entries += BillingEntry(**pg, password_file);
    absl::StrAppend(&ready, "postgres 127.0.0.1:", (*pg)->port(), " socket ",
                    (*pg)->socket_dir(), "\n");
  } else {
    std::fprintf(stderr, "dsar-demo-services: no PostgreSQL store: %s\n",
                 std::string(pg.status().message()).c_str());
    absl::StrAppend(&ready, "postgres none: ", pg.status().message(), "\n");
  }
  // The OpenDSR support service, with a CA of its own.
  absl::StatusOr<testing::TestPki> pki =
      testing::TestPki::Create(dir, "opendsr");
  if (!pki.ok()) {
    std::fprintf(stderr, "dsar-demo-services: %s\n",
                 pki.status().ToString().c_str());
    return 1;
  }
  testing::OpenDsrProcessor::Options options;
  options.domain = "support.demo.test";
  options.polls_before_completion = 2;
  for (int i = 1; i <= people; ++i) {
    options.records[absl::StrCat("person", i, "@example.com")] = {
        {{"ticket", absl::StrCat("T-", 1000 + i)},
         {"subject", "Where is my parcel?"},
         {"status", "closed"}}};
  }
  absl::StatusOr<std::unique_ptr<testing::OpenDsrProcessor>> service =
      testing::OpenDsrProcessor::Start(options, *pki, dir);
  if (!service.ok()) {
    std::fprintf(stderr, "dsar-demo-services: %s\n",
                 service.status().ToString().c_str());
    return 1;
  }
  entries += SupportEntry(**service, *pki);
  absl::StrAppend(&ready, "opendsr ", (*service)->base_url(), "\n");

  std::ofstream(dir + "/stores.yaml") << entries;
  // Written last and renamed into place: whoever waits for it sees it whole.
  std::ofstream(dir + "/ready.tmp") << ready;
  std::rename((dir + "/ready.tmp").c_str(), (dir + "/ready").c_str());

  int signal_number = 0;
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigwait(&signals, &signal_number);
  return 0;  // The destructors stop the services and remove their files.
}

}  // namespace
}  // namespace dsar

int main(int argc, char** argv) {
  dsar::SetProgramUsage(
      "Runs the demo's PostgreSQL billing store and OpenDSR support service.\n"
      "  dsar-demo-services --dir=DIR [--people=300]",
      __FILE__);
  // Blocked before any thread starts, so that sigwait receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  absl::ParseCommandLine(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    std::fprintf(stderr, "dsar-demo-services: --dir=DIR is required\n");
    return 2;
  }
  return dsar::Run(dir, absl::GetFlag(FLAGS_people));
}
