// Personal data at rest (docs/retention.md, docs/storage.md): after an
// access and an erasure for one person and the retention purge, no file
// under dsard's data directory holds that person's email, name, phone or
// street in its raw bytes (RocksDB SST and WAL files, bundles, exports);
// the access request's personal fields are destroyed while the audit log
// still verifies. Real programs on loopback: dsar-sample-stores, dsard, one
// dsar-worker, dsarctl.

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dsar/v1/admin.grpc.pb.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr int kPerson = 42;

// Every regular file under `dir` whose raw bytes contain `needle`.
std::vector<std::string> FilesContaining(const std::string& dir,
                                         const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos)
      found.push_back(entry.path().string());
  }
  return found;
}

// The first column of every row `sql` returns from the SQLite file `path`.
std::vector<std::string> Column(const std::string& path,
                                const std::string& sql) {
  std::vector<std::string> values;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << path;
    sqlite3_close(db);
    return values;
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      values.emplace_back(
          reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    }
  } else {
    ADD_FAILURE() << path << ": " << sql << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return values;
}

TEST(AtRestTest, NoPersonalDataInAnyFileAfterAccessErasureAndPurge) {
  TempDir dir("dsar-at-rest");
  const std::string stores = dir.Join("stores");
  absl::StatusOr<std::string> inventory = GenerateSampleStores(stores, 60);
  ASSERT_TRUE(inventory.ok()) << inventory.status();

  // What the data directory must never show in clear: the person's email,
  // name, phone (as stored and in E.164, as identities are normalised) and
  // streets.
  const std::string email = absl::StrCat("person", kPerson, "@example.com");
  std::vector<std::string> secrets = {email};
  for (const char* column : {"full_name", "phone"}) {
    std::vector<std::string> values = Column(
        stores + "/accounts.db",
        absl::StrCat("SELECT ", column, " FROM users WHERE id = ", kPerson));
    ASSERT_EQ(values.size(), 1u) << column;
    secrets.push_back(values[0]);
  }
  secrets.push_back(absl::StrReplaceAll(secrets.back(), {{" ", ""}}));
  std::vector<std::string> streets = Column(
      stores + "/shop.db",
      absl::StrCat("SELECT street FROM addresses WHERE user_id = ", kPerson));
  ASSERT_FALSE(streets.empty());
  secrets.insert(secrets.end(), streets.begin(), streets.end());
  // The search works: the stores themselves hold each value.
  for (const std::string& secret : secrets) {
    if (secret.find(' ') == std::string::npos && secret[0] == '+') continue;
    EXPECT_THAT(FilesContaining(stores, secret), Not(IsEmpty())) << secret;
  }

  const std::string data = dir.Join("data");
  DsardOptions options;
  options.data_dir = data;
  options.inventory = *inventory;
  options.lease_seconds = 5;
  options.extra_args = {absl::StrCat("--keys_dir=", dir.Join("keys")),
                        "--bundle_retention=0s", "--record_retention=0s",
                        "--purge_interval=0s"};
  absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir.path());
  ASSERT_TRUE(dsard.ok()) << dsard.status();
  WorkerOptions worker_options;
  worker_options.coordinator_port = dsard->port;
  worker_options.inventory = *inventory;
  worker_options.worker_id = "worker-1";
  absl::StatusOr<std::unique_ptr<Process>> worker =
      StartWorker(worker_options, dir.path());
  ASSERT_TRUE(worker.ok()) << worker.status();
  std::shared_ptr<grpc::Channel> channel = LoopbackChannel(dsard->port);
  std::unique_ptr<v1::DsarService::Stub> stub =
      v1::DsarService::NewStub(channel);

  auto run = [&](v1::RequestType type, const std::string& key) {
    v1::Request created;
    grpc::ClientContext context;
    grpc::Status status = stub->CreateRequest(
        &context, RequestForEmail(type, email, key), &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    absl::StatusOr<v1::Request> done =
        WaitUntilTerminal(*stub, created.id(), absl::Seconds(60));
    EXPECT_TRUE(done.ok()) << done.status();
    return done.ok() ? *done : created;
  };
  v1::Request access = run(v1::ACCESS, "at-rest-access");
  ASSERT_EQ(access.status(), v1::COMPLETED) << access.ShortDebugString();
  ASSERT_TRUE(access.has_bundle());
  ASSERT_GT(access.bundle().size_bytes(), 0);
  // Encrypted while it is there: nothing in clear even before the purge.
  for (const std::string& secret : secrets) {
    EXPECT_THAT(FilesContaining(data, secret), IsEmpty())
        << secret << " in clear while the access answer is kept";
  }

  v1::Request erasure = run(v1::ERASURE, "at-rest-erasure");
  ASSERT_EQ(erasure.status(), v1::COMPLETED) << erasure.ShortDebugString();
  // The erasure destroyed the person's earlier answer on the coordinator.
  {
    v1::GetRequestRequest get;
    get.set_id(access.id());
    v1::Request after;
    grpc::ClientContext context;
    ASSERT_TRUE(stub->GetRequest(&context, get, &after).ok());
    EXPECT_TRUE(after.has_personal_data_destroyed_at())
        << after.ShortDebugString();
    EXPECT_THAT(after.identities(), IsEmpty());
    EXPECT_TRUE(after.bundle().has_purged_at());
    EXPECT_EQ(after.status(), v1::COMPLETED);
    // Removed right after the commit that answered: wait for it.
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (fs::exists(access.bundle().path()) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    EXPECT_FALSE(fs::exists(access.bundle().path())) << access.bundle().path();
  }

  // The purge (record retention 0) destroys the erasure's own identities.
  std::unique_ptr<v1::AdminService::Stub> admin =
      v1::AdminService::NewStub(channel);
  v1::PurgeRequest purge;
  v1::PurgeResponse purged;
  {
    grpc::ClientContext context;
    grpc::Status status = admin->Purge(&context, purge, &purged);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  std::vector<std::string> destroyed;
  for (const v1::PurgedItem& item : purged.items())
    destroyed.push_back(absl::StrCat(item.request_id(), ":", item.what()));
  EXPECT_THAT(destroyed, ::testing::Contains(
                             absl::StrCat(erasure.id(), ":personal_data")));

  // A clean stop flushes every memtable: SST files and what is left of the
  // WAL are all there is.
  (*worker)->Terminate();
  ASSERT_EQ(dsard->process->Terminate(), 0);
  for (const std::string& secret : secrets) {
    EXPECT_THAT(FilesContaining(data, secret), IsEmpty())
        << secret << " in clear after the purge";
  }

  // The audit log still verifies, destroyed fields and all.
  absl::StatusOr<RunningDsard> again = StartDsard(options, dir.path());
  ASSERT_TRUE(again.ok()) << again.status();
  const std::string log = dir.Join("verify.log");
  absl::StatusOr<int> code = RunToExit(
      DsarctlPath(),
      {absl::StrCat("--addr=127.0.0.1:", again->port),
       absl::StrCat("--state-dir=", dir.Join("dsarctl")), "audit", "verify",
       absl::StrCat("--pubkey=", dir.Join("keys/checkpoint.key.pub"))},
      log, absl::Seconds(120));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << ReadFileOrEmpty(log);
}

}  // namespace
}  // namespace dsar::testing
