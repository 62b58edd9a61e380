// dsar-engine-bench: how many requests the coordinator's engine
// (engine/coordinator.h) carries through the whole workflow, and how long a
// restart takes with a long history on disk. A benchmark, not a test: it
// prints figures next to a baseline measured in the same run (the raw synced
// RocksDB write rate) and the targets of docs/BENCHMARKS.md.
//
//   dsar-engine-bench [--requests=5000] [--clients=16] [--workers=64]
//                     [--type=both] [--runs=3] [--restart_requests=200000]
//
// 1. Throughput: an in-process Coordinator in a scratch directory, a 4-store
//    inventory (the coordinator never opens the stores), verification by
//    configuration. --clients threads create --requests requests (ERASURE:
//    discover + erase in every store, no bundle; ACCESS: an export per store,
//    uploaded with ArtifactWriter as dsard's UploadArtifact does, then the
//    bundle) while --workers threads PollTask / CompleteTask as fast as they
//    can. Reported: requests/s from the first create to the last request
//    seen COMPLETED, create latency p50/p99 (in the creating threads), and
//    engine calls per WAL sync (fdatasync calls are counted by interposing
//    the libc function). Medians of --runs runs, each in a fresh directory.
//    Baseline: one small synced WriteBatch per commit, one thread.
// 2. Restart: Coordinator::Create timed on an empty state directory and on
//    one holding K/10 and K finished requests (K = --restart_requests),
//    filled through the engine (create + cancel, --fill_clients threads).
//    The first start after the fill replays the RocksDB WAL; later starts
//    are timed separately.

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/program_usage.h"
#include "dsar/internal/records.pb.h"
#include "dsar/v1/requests.pb.h"
#include "dsar/v1/worker.pb.h"
#include "engine/coordinator.h"
#include "engine/workflow_definition.h"
#include "inventory/inventory.h"
#include "storage/artifact_writer.h"
#include "storage/request_status.h"
#include "storage/state_store.h"
#include "tools/bench_stats.h"

ABSL_FLAG(int, requests, 5000,
          "Requests per throughput run; 0 skips the throughput part.");
ABSL_FLAG(int, clients, 16, "Threads creating requests (closed loop).");
ABSL_FLAG(int, workers, 64,
          "Simulated worker threads (PollTask/CompleteTask).");
ABSL_FLAG(std::string, type, "both", "erasure, access or both.");
ABSL_FLAG(double, rate, 0,
          "Requests/s the clients offer together (paced; latency counted "
          "from the scheduled time); 0: as fast as they can.");
ABSL_FLAG(int, runs, 3, "Runs per measurement; medians are reported.");
ABSL_FLAG(int, raw_commits, 500, "Synced commits per baseline run.");
ABSL_FLAG(int, restart_requests, 200000,
          "Finished requests on disk for the restart part (also timed at a "
          "tenth of it); 0 skips the restart part.");
ABSL_FLAG(int, fill_clients, 64, "Threads filling the history.");
ABSL_FLAG(int, restarts, 3, "Coordinator starts timed per history size.");
ABSL_FLAG(std::string, dir, "",
          "Scratch directory (must not exist); default a new one under "
          "$TMPDIR or /tmp. Removed at the end unless --keep.");
ABSL_FLAG(bool, keep, false, "Keep the scratch directory.");

// Every fdatasync (RocksDB's WAL and file syncs) and fsync (artifacts,
// directories) of the process, counted on the way to libc. The executable's
// definitions take precedence over libc's for librocksdb too.
namespace {
std::atomic<uint64_t> g_fdatasyncs{0};
std::atomic<uint64_t> g_fsyncs{0};
}  // namespace

extern "C" int fdatasync(int fd) {
  using Fn = int (*)(int);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "fdatasync"));
  g_fdatasyncs.fetch_add(1, std::memory_order_relaxed);
  return real(fd);
}

extern "C" int fsync(int fd) {
  using Fn = int (*)(int);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "fsync"));
  g_fsyncs.fetch_add(1, std::memory_order_relaxed);
  return real(fd);
}

namespace dsar {
namespace {

namespace fs = std::filesystem;
using bench::Clock;

// Four independent stores: every task of a Map run is ready at once.
constexpr char kInventoryYaml[] = R"yaml(
stores:
  - name: accounts
    kind: sqlite
    path: /nonexistent/accounts.db
    tables:
      - name: users
        identity_fields: {email: email, user_id: id}
        pii_fields: {email: contact, full_name: identity}
  - name: orders
    kind: sqlite
    path: /nonexistent/orders.db
    tables:
      - name: orders
        identity_fields: {email: email}
        pii_fields: {email: contact}
  - name: marketing
    kind: jsonl
    path: /nonexistent/marketing.jsonl
    identity_fields: {email: email}
    pii_fields: {email: contact}
  - name: activity
    kind: jsonl
    path: /nonexistent/activity.jsonl
    identity_fields: {email: email}
    pii_fields: {email: contact}
)yaml";

const std::vector<std::string>& AllStores() {
  static const auto* stores = new std::vector<std::string>{
      "accounts", "orders", "marketing", "activity"};
  return *stores;
}

using bench::Median;
using bench::Quantile;
using bench::Seconds;

void Check(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  std::fprintf(stderr, "dsar-engine-bench: %s: %s\n", what,
               status.ToString().c_str());
  std::exit(1);
}

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t bytes = 0;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(dir, error);
       it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (error) break;
    if (it->is_regular_file(error)) bytes += it->file_size(error);
  }
  return bytes;
}

uint64_t WalBytes(const std::string& state_dir) {
  uint64_t bytes = 0;
  std::error_code error;
  for (const fs::directory_entry& entry :
       fs::directory_iterator(state_dir, error)) {
    if (entry.path().extension() == ".log") bytes += entry.file_size(error);
  }
  return bytes;
}

struct Shared {
  std::shared_ptr<const Inventory> inventory;
  std::shared_ptr<const WorkflowDefinition> definition;
};

std::unique_ptr<Coordinator> Start(const Shared& shared,
                                   const std::string& dir) {
  Coordinator::Options options;
  options.data_dir = dir;
  options.definition = shared.definition;
  options.inventory = shared.inventory;
  options.verify_unattested = false;
  absl::StatusOr<std::unique_ptr<Coordinator>> coordinator =
      Coordinator::Create(std::move(options));
  Check(coordinator.status(), "Coordinator::Create");
  return std::move(*coordinator);
}

v1::CreateRequestRequest NewCreate(v1::RequestType type, uint64_t n) {
  v1::CreateRequestRequest create;
  create.set_type(type);
  v1::SubjectIdentity* identity = create.add_identities();
  identity->set_type(v1::EMAIL);
  identity->set_value(absl::StrCat("subject", n, "@example.com"));
  return create;
}

// --- Baseline: one small synced WriteBatch per commit, one thread. ---

double RawCommitsPerSecond(const std::string& dir, int commits) {
  absl::StatusOr<std::unique_ptr<FileKeyRing>> ring =
      FileKeyRing::Open(dir + ".kek");
  Check(ring.status(), "FileKeyRing::Open");
  absl::StatusOr<std::unique_ptr<StateStore>> store =
      StateStore::Open(dir, ring->get());
  Check(store.status(), "StateStore::Open");
  Clock::time_point start = Clock::now();
  for (int i = 0; i < commits; ++i) {
    StateBatch batch = (*store)->NewBatch();
    batch.PutIdempotencyKey(absl::StrCat("key-", i),
                            absl::StrCat("dsr_raw", 100000000 + i));
    Check((*store)->Commit(batch), "StateStore::Commit");
  }
  return commits / Seconds(start);
}

// --- Part 1: throughput through the whole workflow. ---

struct RunResult {
  double requests_per_s = 0;
  double create_phase_s = 0;  // First create to last create answered.
  double total_s = 0;
  double create_p50_ms = 0;
  double create_p99_ms = 0;
  double create_max_ms = 0;
  uint64_t calls = 0;       // Engine calls of clients and workers.
  uint64_t wal_syncs = 0;   // fdatasync calls in the run.
  uint64_t file_syncs = 0;  // fsync calls (artifacts, directories).
  int not_completed = 0;
};

RunResult ThroughputRun(const Shared& shared, const std::string& dir,
                        v1::RequestType type, int requests, int clients,
                        int workers, double rate) {
  std::unique_ptr<Coordinator> coordinator = Start(shared, dir);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> calls{0};

  std::vector<std::thread> worker_threads;
  for (int w = 0; w < workers; ++w) {
    worker_threads.emplace_back([&, w] {
      std::string worker_id = absl::StrCat("bench-worker-", w);
      v1::PollTaskRequest poll;
      poll.set_worker_id(worker_id);
      for (const std::string& store : AllStores()) poll.add_stores(store);
      poll.set_wait_ms(100);
      uint64_t my_calls = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        absl::StatusOr<Coordinator::LeasedTasks> task = coordinator->PollTask(
            poll, [&] { return stop.load(std::memory_order_relaxed); });
        ++my_calls;
        if (!task.ok() && stop.load()) break;
        Check(task.status(), "PollTask");
        if (task->empty()) continue;
        const v1::Task& leased = task->front();
        v1::CompleteTaskRequest complete;
        complete.set_worker_id(worker_id);
        complete.set_task_id(leased.task_id());
        complete.set_attempt(leased.attempt());
        complete.set_record_count(1);
        if (leased.operation() == "export") {
          v1::ArtifactHeader header;
          header.set_worker_id(worker_id);
          header.set_task_id(leased.task_id());
          header.set_attempt(leased.attempt());
          absl::StatusOr<Coordinator::ArtifactUpload> upload =
              coordinator->ArtifactPathForUpload(header);
          ++my_calls;
          Check(upload.status(), "ArtifactPathForUpload");
          absl::StatusOr<std::string> key =
              coordinator->RequestDataKey(upload->request_id);
          Check(key.status(), "RequestDataKey");
          absl::StatusOr<std::unique_ptr<ArtifactWriter>> writer =
              ArtifactWriter::Create(upload->path, *key,
                                     ExportFileContext(upload->request_id));
          Check(writer.status(), "ArtifactWriter::Create");
          Check(
              (*writer)->Append(absl::StrCat(
                  R"({"store":")", leased.store(), R"(","records":[{"email":")",
                  leased.identities(0).value(), R"("}]})")),
              "ArtifactWriter::Append");
          absl::StatusOr<ArtifactInfo> info = (*writer)->Commit();
          Check(info.status(), "ArtifactWriter::Commit");
          complete.set_artifact_sha256(info->sha256);
        }
        Check(coordinator->CompleteTask(complete), "CompleteTask");
        ++my_calls;
      }
      calls.fetch_add(my_calls);
    });
  }

  std::vector<std::string> ids(requests);
  std::vector<std::vector<double>> latencies(clients);
  std::atomic<int> next{0};
  uint64_t wal_before = g_fdatasyncs.load(), files_before = g_fsyncs.load();
  Clock::time_point start = Clock::now();
  std::vector<std::thread> client_threads;
  for (int c = 0; c < clients; ++c) {
    client_threads.emplace_back([&, c] {
      while (true) {
        int n = next.fetch_add(1);
        if (n >= requests) break;
        Clock::time_point sent = Clock::now();
        if (rate > 0) {
          // Latency from the scheduled time: a late send counts as waiting.
          sent = start + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(n / rate));
          std::this_thread::sleep_until(sent);
        }
        absl::StatusOr<v1::Request> created =
            coordinator->CreateRequest(NewCreate(type, n));
        latencies[c].push_back(Seconds(sent) * 1e3);
        Check(created.status(), "CreateRequest");
        ids[n] = created->id();
      }
    });
  }
  for (std::thread& thread : client_threads) thread.join();
  RunResult result;
  result.create_phase_s = Seconds(start);
  calls.fetch_add(requests);

  // Requests finish roughly in creation order: wait for each in turn.
  for (const std::string& id : ids) {
    while (true) {
      absl::StatusOr<v1::Request> request = coordinator->GetRequest(id);
      Check(request.status(), "GetRequest");
      if (IsTerminalStatus(request->status())) {
        if (request->status() != v1::COMPLETED) ++result.not_completed;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  result.total_s = Seconds(start);
  result.wal_syncs = g_fdatasyncs.load() - wal_before;
  result.file_syncs = g_fsyncs.load() - files_before;
  stop = true;
  for (std::thread& thread : worker_threads) thread.join();
  coordinator.reset();

  std::vector<double> all;
  for (const std::vector<double>& some : latencies) {
    all.insert(all.end(), some.begin(), some.end());
  }
  result.requests_per_s = requests / result.total_s;
  result.create_p50_ms = Quantile(all, 0.5);
  result.create_p99_ms = Quantile(all, 0.99);
  result.create_max_ms = Quantile(all, 1.0);
  // Worker calls after the end (the last empty polls) are few; counting them
  // slightly overstates calls per sync.
  result.calls = calls.load();
  return result;
}

void BenchThroughput(const Shared& shared, const std::string& dir,
                     double raw_rate) {
  const int requests = absl::GetFlag(FLAGS_requests);
  const int clients = std::max(1, absl::GetFlag(FLAGS_clients));
  const int workers = std::max(1, absl::GetFlag(FLAGS_workers));
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));
  const double rate = absl::GetFlag(FLAGS_rate);
  const std::string type_flag = absl::GetFlag(FLAGS_type);
  std::vector<v1::RequestType> types;
  if (type_flag == "erasure" || type_flag == "both") {
    types.push_back(v1::ERASURE);
  }
  if (type_flag == "access" || type_flag == "both") types.push_back(v1::ACCESS);
  if (types.empty()) {
    std::fprintf(stderr,
                 "dsar-engine-bench: --type: erasure, access or both\n");
    std::exit(2);
  }

  std::printf(
      "\n== Throughput: %d requests, 4 stores each, %d clients, %d workers, "
      "%s ==\n",
      requests, clients, workers,
      rate > 0 ? absl::StrCat("offered ", rate, " requests/s").c_str()
               : "clients as fast as they can");
  for (v1::RequestType type : types) {
    std::vector<double> rps, p50, p99, max, create_s, calls_per_sync,
        requests_per_sync, syncs_per_s, file_syncs_per_request;
    for (int run = 0; run < runs; ++run) {
      std::string run_dir =
          absl::StrCat(dir, "/", v1::RequestType_Name(type), "-", run + 1);
      RunResult r = ThroughputRun(shared, run_dir, type, requests, clients,
                                  workers, rate);
      std::error_code error;
      fs::remove_all(run_dir, error);
      rps.push_back(r.requests_per_s);
      p50.push_back(r.create_p50_ms);
      p99.push_back(r.create_p99_ms);
      max.push_back(r.create_max_ms);
      create_s.push_back(r.create_phase_s);
      double syncs = static_cast<double>(std::max<uint64_t>(r.wal_syncs, 1));
      calls_per_sync.push_back(r.calls / syncs);
      requests_per_sync.push_back(requests / syncs);
      syncs_per_s.push_back(r.wal_syncs / r.total_s);
      file_syncs_per_request.push_back(static_cast<double>(r.file_syncs) /
                                       requests);
      std::printf(
          "  %s run %d: %.0f requests/s end to end (%.2f s; creates done "
          "after %.2f s), create p50 %.2f ms p99 %.2f ms max %.1f ms, %llu "
          "engine calls, %llu WAL syncs (%.0f/s), %.1f calls/sync, %llu "
          "fsyncs%s\n",
          v1::RequestType_Name(type).c_str(), run + 1, r.requests_per_s,
          r.total_s, r.create_phase_s, r.create_p50_ms, r.create_p99_ms,
          r.create_max_ms, static_cast<unsigned long long>(r.calls),
          static_cast<unsigned long long>(r.wal_syncs), syncs_per_s.back(),
          calls_per_sync.back(), static_cast<unsigned long long>(r.file_syncs),
          r.not_completed > 0
              ? absl::StrCat(", ", r.not_completed, " NOT COMPLETED").c_str()
              : "");
      std::fflush(stdout);
    }
    std::printf(
        "%s (median of %d): %.0f requests/s end to end; create p50 %.2f ms, "
        "p99 %.2f ms (max %.1f ms); creates answered within %.2f s; %.0f WAL "
        "syncs/s carrying %.1f engine calls (%.2f requests) each; %.1f "
        "other fsyncs per request\n",
        v1::RequestType_Name(type).c_str(), runs, Median(rps), Median(p50),
        Median(p99), Median(max), Median(create_s), Median(syncs_per_s),
        Median(calls_per_sync), Median(requests_per_sync),
        Median(file_syncs_per_request));
    std::printf(
        "  vs baseline %.0f synced commits/s: the engine syncs %.2fx as "
        "often, %.1f engine calls per sync\n",
        raw_rate, Median(syncs_per_s) / raw_rate, Median(calls_per_sync));
    std::fflush(stdout);
  }
}

// --- Part 2: restart time against history size. ---

// Adds `count` finished requests (create + cancel) to the state in `dir`.
void Fill(const Shared& shared, const std::string& dir, uint64_t first,
          uint64_t count, int threads) {
  if (count == 0) return;
  std::unique_ptr<Coordinator> coordinator = Start(shared, dir);
  std::atomic<uint64_t> next{first};
  const uint64_t end = first + count;
  Clock::time_point start = Clock::now();
  std::atomic<bool> done{false};
  std::thread progress([&] {
    Clock::time_point report = Clock::now();
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (Seconds(report) > 30) {
        report = Clock::now();
        uint64_t at = std::min(next.load(), end);
        std::printf("  ... %llu finished requests, %.0f/s\n",
                    static_cast<unsigned long long>(at),
                    (at - first) / Seconds(start));
        std::fflush(stdout);
      }
    }
  });
  std::vector<std::thread> fillers;
  for (int t = 0; t < threads; ++t) {
    fillers.emplace_back([&] {
      while (true) {
        uint64_t n = next.fetch_add(1);
        if (n >= end) break;
        absl::StatusOr<v1::Request> created =
            coordinator->CreateRequest(NewCreate(v1::ERASURE, n));
        Check(created.status(), "CreateRequest");
        v1::CancelRequestRequest cancel;
        cancel.set_id(created->id());
        cancel.set_reason("benchmark history");
        Check(coordinator->CancelRequest(cancel).status(), "CancelRequest");
      }
    });
  }
  for (std::thread& thread : fillers) thread.join();
  done = true;
  progress.join();
  double seconds = Seconds(start);
  Clock::time_point stopping = Clock::now();
  coordinator.reset();
  std::printf(
      "filled %llu -> %llu finished requests in %.1f s (%.0f/s, create + "
      "cancel, %d threads); shutdown %.2f s\n",
      static_cast<unsigned long long>(first),
      static_cast<unsigned long long>(end), seconds, count / seconds, threads,
      Seconds(stopping));
  std::fflush(stdout);
}

struct StartTimes {
  double first_s = 0;  // First start after the last writes (WAL replay).
  double later_s = 0;  // Median of the following starts.
  double open_s = 0;   // StateStore::Open alone, after those starts.
  double live_scan_s = 0;
  double outbox_scan_s = 0;
};

StartTimes TimeStarts(const Shared& shared, const std::string& dir, int starts,
                      const char* label) {
  StartTimes times;
  std::vector<double> later;
  uint64_t wal = WalBytes(dir + "/state");
  for (int i = 0; i < starts; ++i) {
    Clock::time_point start = Clock::now();
    std::unique_ptr<Coordinator> coordinator = Start(shared, dir);
    double seconds = Seconds(start);
    // It serves: a read and a write go through.
    v1::ListRequestsRequest list;
    list.set_page_size(1);
    Check(coordinator->ListRequests(list).status(), "ListRequests");
    if (i == 0) {
      times.first_s = seconds;
    } else {
      later.push_back(seconds);
    }
    coordinator.reset();
  }
  times.later_s = Median(later);
  // Where a start's time goes: the database open and the two scans recovery
  // does (live requests, notification outbox), timed on the store alone.
  std::vector<double> open_s, live_s, outbox_s;
  int live = 0, outbox = 0;
  for (int i = 0; i < 3; ++i) {
    Clock::time_point start = Clock::now();
    absl::StatusOr<std::unique_ptr<FileKeyRing>> ring =
        FileKeyRing::Open(dir + "/keys/kek");
    Check(ring.status(), "FileKeyRing::Open");
    absl::StatusOr<std::unique_ptr<StateStore>> store =
        StateStore::Open(dir + "/state", ring->get());
    Check(store.status(), "StateStore::Open");
    open_s.push_back(Seconds(start));
    live = outbox = 0;
    start = Clock::now();
    Check((*store)->ForEachLiveRequest([&](internal::RequestRecord) {
      ++live;
      return absl::OkStatus();
    }),
          "ForEachLiveRequest");
    live_s.push_back(Seconds(start));
    start = Clock::now();
    Check((*store)->ForEachNotification([&](internal::Notification) {
      ++outbox;
      return absl::OkStatus();
    }),
          "ForEachNotification");
    outbox_s.push_back(Seconds(start));
  }
  times.open_s = Median(open_s);
  times.live_scan_s = Median(live_s);
  times.outbox_scan_s = Median(outbox_s);
  std::printf(
      "  %-28s first start %7.1f ms (WAL %.1f MB to replay), later starts "
      "%7.1f ms (median of %d); state %.0f MB\n",
      label, times.first_s * 1e3, wal / 1e6, times.later_s * 1e3,
      static_cast<int>(later.size()), DirectoryBytes(dir + "/state") / 1e6);
  std::printf(
      "  %-28s of which: StateStore::Open %.1f ms, live scan %.1f ms (%d "
      "live), outbox scan %.1f ms (%d queued)\n",
      "", times.open_s * 1e3, times.live_scan_s * 1e3, live,
      times.outbox_scan_s * 1e3, outbox);
  std::fflush(stdout);
  return times;
}

void BenchRestart(const Shared& shared, const std::string& dir) {
  const uint64_t k = absl::GetFlag(FLAGS_restart_requests);
  const int threads = std::max(1, absl::GetFlag(FLAGS_fill_clients));
  const int starts = std::max(2, absl::GetFlag(FLAGS_restarts) + 1);
  std::printf("\n== Restart: Coordinator::Create against history size ==\n");

  std::string empty_dir = dir + "/restart-empty";
  Clock::time_point init = Clock::now();
  Start(shared, empty_dir).reset();
  std::printf("  first start ever (keys, database created): %.1f ms\n",
              Seconds(init) * 1e3);
  StartTimes empty = TimeStarts(shared, empty_dir, starts, "empty");

  std::string history_dir = dir + "/restart-history";
  Fill(shared, history_dir, 0, k / 10, threads);
  StartTimes tenth =
      TimeStarts(shared, history_dir, starts,
                 absl::StrCat(k / 10, " finished requests").c_str());
  Fill(shared, history_dir, k / 10, k - k / 10, threads);
  StartTimes full = TimeStarts(shared, history_dir, starts,
                               absl::StrCat(k, " finished requests").c_str());

  std::printf(
      "restart (median of later starts): empty %.1f ms, %llu finished %.1f "
      "ms (%.2fx), %llu finished %.1f ms (%.2fx); first start after the "
      "fill: %.1f / %.1f ms\n"
      "scans at %llu: live %.1f ms, outbox %.1f ms (empty: %.1f, %.1f ms)\n",
      empty.later_s * 1e3, static_cast<unsigned long long>(k / 10),
      tenth.later_s * 1e3, tenth.later_s / empty.later_s,
      static_cast<unsigned long long>(k), full.later_s * 1e3,
      full.later_s / empty.later_s, tenth.first_s * 1e3, full.first_s * 1e3,
      static_cast<unsigned long long>(k), full.live_scan_s * 1e3,
      full.outbox_scan_s * 1e3, empty.live_scan_s * 1e3,
      empty.outbox_scan_s * 1e3);
}

int Main() {
  std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp",
                                       "/dsar-engine-bench-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = pattern;
  } else if (fs::exists(dir)) {
    std::fprintf(stderr, "dsar-engine-bench: --dir=%s exists\n", dir.c_str());
    return 2;
  } else {
    fs::create_directories(dir);
  }
  std::printf("dsar-engine-bench: scratch directory %s\n", dir.c_str());

  Shared shared;
  {
    absl::StatusOr<Inventory> inventory = Inventory::Parse(kInventoryYaml, dir);
    Check(inventory.status(), "Inventory::Parse");
    shared.inventory = std::make_shared<const Inventory>(std::move(*inventory));
    absl::StatusOr<std::shared_ptr<const WorkflowDefinition>> definition =
        WorkflowDefinition::Parse(WorkflowDefinition::DefaultJson());
    Check(definition.status(), "WorkflowDefinition::Parse");
    shared.definition = *definition;
  }

  Clock::time_point all = Clock::now();
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));
  std::vector<double> raw_rates;
  uint64_t syncs_before = g_fdatasyncs.load();
  const int raw_commits = std::max(1, absl::GetFlag(FLAGS_raw_commits));
  for (int run = 0; run < runs; ++run) {
    raw_rates.push_back(
        RawCommitsPerSecond(absl::StrCat(dir, "/raw-", run + 1), raw_commits));
  }
  double raw_rate = Median(raw_rates);
  std::printf(
      "\n== Baseline ==\nraw synced RocksDB commits (one small WriteBatch "
      "each, one thread): %.0f/s (median of %d x %d; %.2f ms each); "
      "fdatasync calls per commit: %.2f\n",
      raw_rate, runs, raw_commits, 1e3 / raw_rate,
      static_cast<double>(g_fdatasyncs.load() - syncs_before) /
          (runs * raw_commits));
  std::fflush(stdout);

  if (absl::GetFlag(FLAGS_requests) > 0) BenchThroughput(shared, dir, raw_rate);
  if (absl::GetFlag(FLAGS_restart_requests) > 0) BenchRestart(shared, dir);

  std::printf(
      "\ntargets (issue 2, 2 cores, durable writes): 1,000 requests/s with 4 "
      "stores each through the whole workflow, create p99 < 20 ms; restart "
      "< 2 s with 1,000,000 finished requests\n");
  std::printf("total %.0f s\n", Seconds(all));

  if (!absl::GetFlag(FLAGS_keep)) {
    std::error_code error;
    fs::remove_all(dir, error);
  }
  return 0;
}

}  // namespace
}  // namespace dsar

int main(int argc, char** argv) {
  dsar::SetProgramUsage(
      "Benchmarks the engine's request throughput and restart time.\n"
      "  dsar-engine-bench [--requests=5000] [--clients=16] [--workers=64] "
      "[--type=both|erasure|access] [--rate=0] [--runs=3] "
      "[--restart_requests=200000] [--dir=DIR]",
      __FILE__);
  absl::ParseCommandLine(argc, argv);
  return dsar::Main();
}
