// dsar-audit-scan-bench: how fast the audit scans (audit_scan/store_scan.h,
// docs/audit-scan.md) read seed 002's records, beside `grep -cE` with the
// same patterns over the same data as JSON lines, measured in the same run.
// A benchmark, not a test: it prints figures and checks that every planted
// signal is found (exit status 1 otherwise).
//
//   dsar-audit-scan-bench [--records=1500000] [--dir=DIR] [--keep]
//
// The records have seed 002's columns (user_id, email, privacy_status,
// metadata as a JSON string, timestamp). Planted, by record number i:
//   i % 100 == 0   opted out (every other one in capitals), email kept:
//                  OPT_OUT_VIOLATION on email;
//   i % 100 == 50  opted out with the email scrubbed: nothing;
//   i % 200 == 7   metadata {"backup_contact": "555-01xx"}:
//                  DATA_RENAME_DETECTION on metadata/backup_contact;
//   i % 500 == 13  a Luhn-valid card in metadata.payment:
//                  DATA_RENAME_DETECTION on metadata/payment;
//   i % 500 == 17  a Luhn-invalid 16-digit number there: nothing.
// The same rows go into a SQLite table and a JSON-lines log; each store is
// scanned once (one thread: records/s is per core), and `grep -cE` runs
// over the log with the detector's patterns (PiiDetector::PatternSources,
// RE2's (?: groups written as ERE groups).

#include <sqlite3.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "audit_scan/store_scan.h"
#include "common/program_usage.h"
#include "model/pii_detector.h"
#include "nlohmann/json.hpp"
#include "tools/bench_stats.h"

ABSL_FLAG(int64_t, records, 1500000, "Records generated (seed 002: 1.5M).");
ABSL_FLAG(std::string, dir, "",
          "Scratch directory (must not exist); default a new one under "
          "$TMPDIR or /tmp. Removed at the end unless --keep.");
ABSL_FLAG(bool, keep, false, "Keep the scratch directory.");

namespace dsar {
namespace {

using bench::Clock;
using bench::Seconds;

void Check(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  std::fprintf(stderr, "dsar-audit-scan-bench: %s: %s\n", what,
               status.ToString().c_str());
  std::exit(1);
}

void CheckSqlite(int rc, sqlite3* db, const char* what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE) return;
  std::fprintf(stderr, "dsar-audit-scan-bench: %s: %s\n", what,
               sqlite3_errmsg(db));
  std::exit(1);
}

// CPU seconds this process has used (user + system).
double CpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct Row {
  std::string user_id;
  std::string email;
  std::string privacy_status;
  std::string metadata;
  std::string timestamp;
};

// Record `i` and the findings planted in it (signal name -> count).
Row MakeRow(int64_t i, std::map<std::string, int64_t>* planted) {
  Row row;
  row.user_id = absl::StrCat("u-", i);
  row.email = absl::StrCat("user", i, "@example.com");
  row.privacy_status = "active";
  if (i % 100 == 0) {
    row.privacy_status = i % 200 == 0 ? "OPT_OUT" : "opt_out";
    ++(*planted)["OPT_OUT_VIOLATION"];
  } else if (i % 100 == 50) {
    row.privacy_status = "opt_out";
    row.email = "";
  }
  nlohmann::ordered_json metadata = {{"theme", i % 3 == 0 ? "dark" : "light"},
                                     {"visits", i % 97}};
  if (i % 200 == 7) {
    metadata["backup_contact"] = absl::StrCat("555-01", 10 + i % 90);
    ++(*planted)["DATA_RENAME_DETECTION"];
  }
  if (i % 500 == 13) {
    metadata["payment"] = "4111 1111 1111 1111";
    ++(*planted)["DATA_RENAME_DETECTION"];
  } else if (i % 500 == 17) {
    metadata["payment"] = "4111 1111 1111 1112";
  }
  row.metadata = metadata.dump();
  row.timestamp = absl::StrCat("2026-01-06T", 10 + i % 10, ":00:00Z");
  return row;
}

CollectionSpec SeedCollection(const std::string& name) {
  CollectionSpec collection;
  collection.name = name;
  collection.identity_fields = {{"email", "email"}, {"user_id", "user_id"}};
  collection.pii_fields = {{"email", "contact"}};
  PrivacyStatusSpec status;
  status.field = "privacy_status";
  status.opted_out = {"opt_out"};
  collection.privacy_status = status;
  collection.record_key = "user_id";
  return collection;
}

// Runs `command`, returning its first output line and the wall time.
std::pair<std::string, double> Run(const std::string& command) {
  Clock::time_point start = Clock::now();
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {"", 0};
  char buffer[256] = {0};
  std::string out;
  if (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out = buffer;
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
    out.pop_back();
  }
  return {out, Seconds(start)};
}

// The detector's patterns as one POSIX extended expression for grep -E.
std::string GrepPattern() {
  std::vector<std::string> parts;
  for (const std::string& source : PiiDetector::PatternSources()) {
    parts.push_back(absl::StrReplaceAll(source, {{"(?:", "("}}));
  }
  return absl::StrJoin(parts, "|");
}

std::string ShellQuoted(const std::string& text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

int Main() {
  const int64_t records = absl::GetFlag(FLAGS_records);
  std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/audit-scan-bench-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = pattern;
  } else if (!std::filesystem::create_directory(dir)) {
    std::fprintf(stderr, "dsar-audit-scan-bench: %s exists\n", dir.c_str());
    return 1;
  }
  const std::string log_path = dir + "/users.jsonl";
  const std::string db_path = dir + "/users.db";

  // Generate both stores.
  Clock::time_point start = Clock::now();
  std::map<std::string, int64_t> planted;
  {
    std::ofstream log(log_path);
    sqlite3* db = nullptr;
    CheckSqlite(sqlite3_open(db_path.c_str(), &db), db, "open");
    CheckSqlite(
        sqlite3_exec(db,
                     "PRAGMA journal_mode = WAL; CREATE TABLE users (user_id "
                     "TEXT PRIMARY KEY, email TEXT, privacy_status TEXT, "
                     "metadata TEXT, timestamp TEXT); BEGIN",
                     nullptr, nullptr, nullptr),
        db, "create");
    sqlite3_stmt* insert = nullptr;
    CheckSqlite(
        sqlite3_prepare_v2(db, "INSERT INTO users VALUES (?, ?, ?, ?, ?)", -1,
                           &insert, nullptr),
        db, "prepare");
    for (int64_t i = 0; i < records; ++i) {
      Row row = MakeRow(i, &planted);
      nlohmann::ordered_json line = {{"user_id", row.user_id},
                                     {"email", row.email},
                                     {"privacy_status", row.privacy_status},
                                     {"metadata", row.metadata},
                                     {"timestamp", row.timestamp}};
      log << line.dump() << '\n';
      const std::string* values[] = {&row.user_id, &row.email,
                                     &row.privacy_status, &row.metadata,
                                     &row.timestamp};
      for (int v = 0; v < 5; ++v) {
        sqlite3_bind_text(insert, v + 1, values[v]->data(),
                          static_cast<int>(values[v]->size()),
                          SQLITE_TRANSIENT);
      }
      CheckSqlite(sqlite3_step(insert), db, "insert");
      sqlite3_reset(insert);
    }
    sqlite3_finalize(insert);
    CheckSqlite(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db,
                "commit");
    sqlite3_close(db);
  }
  std::printf("generated %lld records (JSON lines %.0f MiB) in %.1f s\n",
              static_cast<long long>(records),
              std::filesystem::file_size(log_path) / 1048576.0, Seconds(start));
  std::printf("planted: %lld OPT_OUT_VIOLATION, %lld DATA_RENAME_DETECTION\n",
              static_cast<long long>(planted["OPT_OUT_VIOLATION"]),
              static_cast<long long>(planted["DATA_RENAME_DETECTION"]));

  std::unique_ptr<SubjectReferencer> referencer =
      *SubjectReferencer::Create("audit-scan-bench-reference-key-0123");
  ScanOptions options;
  options.referencer = referencer.get();
  options.max_findings_per_collection = records;  // Count every finding.
  PiiDetector::Default();  // Compiled before the clock starts.

  bool all_found = true;
  for (const char* kind : {"sqlite", "jsonl"}) {
    StoreSpec store;
    store.name = "users";
    store.kind = kind;
    store.path = store.kind == "sqlite" ? db_path : log_path;
    store.collections = {SeedCollection("users")};
    double cpu = CpuSeconds();
    start = Clock::now();
    absl::StatusOr<StoreScanResult> result = ScanStore(store, options);
    double seconds = Seconds(start);
    cpu = CpuSeconds() - cpu;
    Check(result.status(), kind);
    std::map<std::string, int64_t> found;
    for (const Finding& finding : result->findings) {
      ++found[SignalName(finding.signal)];
    }
    std::printf(
        "%-6s %lld records in %.2f s (%.2f s CPU): %.0f records/s, %.0f "
        "records/CPU-s; found %lld OPT_OUT_VIOLATION, %lld "
        "DATA_RENAME_DETECTION, %lld UNDECLARED_PII_FIELD\n",
        kind, static_cast<long long>(result->records_scanned()), seconds, cpu,
        result->records_scanned() / seconds, result->records_scanned() / cpu,
        static_cast<long long>(found["OPT_OUT_VIOLATION"]),
        static_cast<long long>(found["DATA_RENAME_DETECTION"]),
        static_cast<long long>(found["UNDECLARED_PII_FIELD"]));
    for (const auto& [signal, count] : planted) {
      if (found[signal] != count) {
        std::printf("  MISMATCH: %s planted %lld, found %lld\n", signal.c_str(),
                    static_cast<long long>(count),
                    static_cast<long long>(found[signal]));
        all_found = false;
      }
    }
  }

  // The baseline: the same patterns, no Luhn or JSON, one pass of grep.
  auto [count, seconds] = Run(absl::StrCat(
      "LC_ALL=C grep -cE ", ShellQuoted(GrepPattern()), " ", log_path));
  std::printf(
      "grep -cE (same patterns) over the JSON lines: %s lines in %.2f "
      "s: %.0f records/s\n",
      count.c_str(), seconds, records / seconds);

  if (!absl::GetFlag(FLAGS_keep)) {
    std::error_code error;
    std::filesystem::remove_all(dir, error);
  } else {
    std::printf("kept %s\n", dir.c_str());
  }
  std::printf("%s\n", all_found ? "every planted signal found"
                                : "NOT every planted signal found");
  return all_found ? 0 : 1;
}

}  // namespace
}  // namespace dsar

int main(int argc, char** argv) {
  dsar::SetProgramUsage(
      "Benchmarks the audit scans over seed 002's records beside grep -cE.\n"
      "  dsar-audit-scan-bench [--records=1500000] [--dir=DIR] [--keep]",
      __FILE__);
  absl::ParseCommandLine(argc, argv);
  return dsar::Main();
}
