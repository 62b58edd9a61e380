// dsar-audit-bench: how fast the audit log (storage/audit/audit_log.h)
// appends, proves and verifies, on a real StateStore in a scratch directory.
// A benchmark, not a test: it prints figures next to baselines measured in
// the same run, and the targets of docs/BENCHMARKS.md.
//
//   dsar-audit-bench [--max_leaves=10000000] [--dir=DIR] [--runs=3]
//
// 1. Appends: commit groups of 1, 100 and 1000 events (AuditLog::Append of a
//    typical ~150-byte event each, SealGroup, StateStore::Commit, which
//    fsyncs), against the same commits with the leaf bytes only (no hashes,
//    no signed checkpoint).
// 2. Inclusion proofs (AuditLog::GetInclusionProof) at random indexes, at
//    1M leaves and at --max_leaves (the tree is grown in commits of
//    --build_batch events; the build rate is printed).
// 3. Full-log verification, once RocksDB's compactions of the build are
//    done: every leaf read back, the root recomputed with
//    merkle::AppendLeaves (what `dsarctl audit verify` runs) on one thread
//    and on --verify_threads, against streaming SHA-256 over the same bytes
//    on one thread.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/program_usage.h"
#include "common/sha256.h"
#include "dsar/v1/audit.pb.h"
#include "dsar/v1/requests.pb.h"
#include "storage/audit/append_leaves.h"
#include "storage/audit/audit_log.h"
#include "storage/audit/checkpoint.h"
#include "storage/audit/merkle.h"
#include "storage/state_store.h"
#include "tools/bench_stats.h"

ABSL_FLAG(uint64_t, max_leaves, 10000000,
          "Size of the largest tree proofs are timed at (also at 1M when "
          "larger).");
ABSL_FLAG(std::string, dir, "",
          "Scratch directory (must not exist); default a new one under "
          "$TMPDIR or /tmp. Removed at the end unless --keep.");
ABSL_FLAG(bool, keep, false, "Keep the scratch directory.");
ABSL_FLAG(int, runs, 3, "Runs per measurement; medians are reported.");
ABSL_FLAG(int, proofs, 1000, "Random indexes per proof-timing run.");
ABSL_FLAG(int, build_batch, 10000, "Events per commit when growing the tree.");
ABSL_FLAG(uint64_t, verify_leaves, 0,
          "Leaves read back and verified; 0: the whole log.");
ABSL_FLAG(int, verify_threads, 0,
          "Threads recomputing the root in the parallel measurement; 0: one "
          "per hardware thread, as dsarctl audit verify does.");

namespace dsar {
namespace {

using bench::Clock;

using bench::Median;
using bench::Quantile;
using bench::Seconds;

void Check(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  std::fprintf(stderr, "dsar-audit-bench: %s: %s\n", what,
               status.ToString().c_str());
  std::exit(1);
}

// A typical event of a running request: the i-th overall, of request
// i / 12, chained to the previous one. About 150 bytes serialized.
class EventSource {
 public:
  v1::Event Next() {
    v1::Event event;
    uint64_t request = count_ / 12;
    uint64_t sequence = count_ % 12 + 1;
    ++count_;
    event.set_sequence(sequence);
    event.mutable_time()->set_seconds(1700000000 + count_ / 100);
    event.mutable_time()->set_nanos(static_cast<int32_t>(count_ % 1000) *
                                    1000000);
    event.set_request_id(
        absl::StrCat("dsr_01hq", 1000000000 + request, "k7x2m9p4v"));
    event.set_kind(sequence % 3 == 0 ? "task_completed" : "task_leased");
    event.set_state("Export");
    event.set_store(kStores[request % 4]);
    event.set_attempt(1);
    event.set_worker_id("worker-1");
    event.set_detail(absl::StrCat(sequence * 7, " records exported"));
    if (sequence > 1) event.set_previous_leaf_hash(previous_leaf_);
    return event;
  }
  void Appended(const std::string& leaf_hash) { previous_leaf_ = leaf_hash; }

 private:
  static constexpr const char* kStores[] = {"accounts", "orders", "marketing",
                                            "activity"};
  uint64_t count_ = 0;
  std::string previous_leaf_ = std::string(32, '\x5a');
};

struct Bench {
  std::unique_ptr<StateStore> store;
  std::unique_ptr<AuditLog> log;
  EventSource events;
  uint64_t size = 0;

  // One commit group of `n` events through the audit log.
  void AppendGroup(int n) {
    StateBatch batch = store->NewBatch();
    for (int i = 0; i < n; ++i) {
      v1::Event event = events.Next();
      events.Appended(log->Append(batch, &event));
    }
    Check(log->SealGroup(batch), "SealGroup");
    Check(store->Commit(batch), "Commit");
    size += n;
  }
};

// A separate store for the baseline: the same leaf bytes, no tree, no
// checkpoint, the same synced commit.
void RawGroup(StateStore& store, EventSource& events, uint64_t* next, int n) {
  StateBatch batch = store.NewBatch();
  for (int i = 0; i < n; ++i) {
    v1::Event event = events.Next();
    event.set_log_index(*next);
    batch.PutAuditLeaf((*next)++, event.SerializeAsString());
  }
  Check(store.Commit(batch), "Commit");
}

void BenchAppends(Bench& bench, StateStore& raw_store, int runs) {
  std::printf("\n== Appends (each commit group fsyncs) ==\n");
  std::printf("%-8s %10s %16s %16s %8s\n", "batch", "leaves", "audit leaves/s",
              "raw leaves/s", "ratio");
  EventSource raw_events;
  uint64_t raw_next = 0;
  for (int batch : {1, 100, 1000}) {
    // About 0.5 s of fsyncs per run at small batches, 30k leaves at large.
    int groups = batch == 1 ? 500 : batch == 100 ? 100 : 30;
    std::vector<double> audit_rates, raw_rates;
    for (int run = 0; run < runs; ++run) {
      Clock::time_point start = Clock::now();
      for (int g = 0; g < groups; ++g) bench.AppendGroup(batch);
      audit_rates.push_back(groups * batch / Seconds(start));
      start = Clock::now();
      for (int g = 0; g < groups; ++g) {
        RawGroup(raw_store, raw_events, &raw_next, batch);
      }
      raw_rates.push_back(groups * batch / Seconds(start));
    }
    double audit = Median(audit_rates), raw = Median(raw_rates);
    std::printf("%-8d %10d %16.0f %16.0f %7.2fx\n", batch, groups * batch,
                audit, raw, audit / raw);
  }
}

void Grow(Bench& bench, uint64_t target, int build_batch) {
  if (bench.size >= target) return;
  uint64_t from = bench.size;
  Clock::time_point start = Clock::now();
  Clock::time_point report = start;
  while (bench.size < target) {
    bench.AppendGroup(
        static_cast<int>(std::min<uint64_t>(build_batch, target - bench.size)));
    if (std::chrono::duration<double>(Clock::now() - report).count() > 30) {
      report = Clock::now();
      std::printf("  ... %llu leaves, %.0f leaves/s\n",
                  static_cast<unsigned long long>(bench.size),
                  (bench.size - from) / Seconds(start));
      std::fflush(stdout);
    }
  }
  double seconds = Seconds(start);
  std::printf(
      "built %llu -> %llu leaves in %.1f s: %.0f leaves/s (commits of %d)\n",
      static_cast<unsigned long long>(from),
      static_cast<unsigned long long>(bench.size), seconds,
      (bench.size - from) / seconds, build_batch);
  std::fflush(stdout);
}

void BenchProofs(Bench& bench, int runs, int proofs) {
  std::mt19937_64 random(bench.size);
  std::uniform_int_distribution<uint64_t> index(0, bench.size - 1);
  std::vector<double> medians, p99s;
  size_t proof_length = 0;
  for (int run = 0; run < runs; ++run) {
    std::vector<double> micros;
    for (int i = 0; i < proofs; ++i) {
      v1::GetInclusionProofRequest request;
      request.set_index(index(random));
      Clock::time_point start = Clock::now();
      absl::StatusOr<v1::GetInclusionProofResponse> proof =
          bench.log->GetInclusionProof(request);
      micros.push_back(Seconds(start) * 1e6);
      Check(proof.status(), "GetInclusionProof");
      proof_length = proof->proof_size();
    }
    medians.push_back(Median(micros));
    p99s.push_back(Quantile(micros, 0.99));
    std::printf("  run %d: median %.1f us, p99 %.1f us\n", run + 1,
                medians.back(), p99s.back());
  }
  std::printf(
      "inclusion proof at %llu leaves (%zu hashes): median %.1f us, p99 "
      "%.1f us (medians of %d runs of %d random indexes)\n",
      static_cast<unsigned long long>(bench.size), proof_length,
      Median(medians), Median(p99s), runs, proofs);
  std::fflush(stdout);
}

// The root recomputed from `leaves` leaves read in chunks, as a verifier
// does; fails the bench when it differs from the signed checkpoint.
void CheckRoot(Bench& bench, uint64_t leaves, const std::string& root,
               const char* what) {
  if (leaves != bench.size) return;
  absl::StatusOr<v1::GetCheckpointResponse> checkpoint =
      bench.log->GetCheckpoint();
  Check(checkpoint.status(), "GetCheckpoint");
  absl::StatusOr<audit::Checkpoint> verified = audit::VerifyCheckpoint(
      checkpoint->checkpoint(), bench.log->signer().public_key_pem(),
      bench.log->signer().key_name());
  Check(verified.status(), "VerifyCheckpoint");
  if (verified->size != leaves || verified->root_hash != root) {
    std::fprintf(stderr,
                 "dsar-audit-bench: root recomputed (%s) differs from the "
                 "signed checkpoint\n",
                 what);
    std::exit(1);
  }
}

void BenchVerify(Bench& bench, uint64_t leaves, int runs, int threads) {
  std::printf("\n== Full-log verification over %llu leaves ==\n",
              static_cast<unsigned long long>(leaves));
  std::vector<double> read_s, one_s, parallel_s, stream_s, per_leaf_s;
  uint64_t bytes = 0;
  int used = 1;
  constexpr uint64_t kChunk = 100000;
  for (int run = 0; run < runs; ++run) {
    merkle::CompactRange one_thread, parallel;
    Sha256 stream;
    double read = 0, one = 0, hashed = 0, streamed = 0, per_leaf = 0;
    bytes = 0;
    std::string per_leaf_sink, leaf_hashes;
    std::vector<std::string> chunk;
    for (uint64_t start = 0; start < leaves; start += kChunk) {
      uint64_t end = std::min(leaves, start + kChunk);
      chunk.clear();
      Clock::time_point t = Clock::now();
      Check(bench.store->GetAuditLeaves(start, end, &chunk), "GetAuditLeaves");
      read += Seconds(t);
      for (const std::string& leaf : chunk) bytes += leaf.size();

      // Leaf hashes are asked for, as dsarctl audit verify does (it checks
      // each request's chain against them).
      t = Clock::now();
      merkle::AppendLeaves(chunk, 1, one_thread, &leaf_hashes);
      one += Seconds(t);

      t = Clock::now();
      used = merkle::AppendLeaves(chunk, threads, parallel, &leaf_hashes);
      hashed += Seconds(t);

      t = Clock::now();
      for (const std::string& leaf : chunk) stream.Update(leaf);
      streamed += Seconds(t);

      t = Clock::now();
      for (const std::string& leaf : chunk) {
        Sha256 digest;
        digest.Update(leaf);
        per_leaf_sink = digest.FinishRaw();
      }
      per_leaf += Seconds(t);
    }
    CheckRoot(bench, leaves, one_thread.RootHash(), "one thread");
    CheckRoot(bench, leaves, parallel.RootHash(), "parallel");
    std::string digest = stream.FinishRaw();
    read_s.push_back(read);
    one_s.push_back(one);
    parallel_s.push_back(hashed);
    stream_s.push_back(streamed);
    per_leaf_s.push_back(per_leaf);
    std::printf(
        "  run %d: read %.2f s, tree on 1 thread %.2f s, on %d threads %.2f "
        "s, stream SHA-256 %.2f s, per-leaf SHA-256 %.2f s\n",
        run + 1, read, one, used, hashed, streamed, per_leaf);
    std::fflush(stdout);
  }
  double mb = bytes / 1e6;
  double one = Median(one_s), tree = Median(parallel_s),
         stream = Median(stream_s), per_leaf = Median(per_leaf_s),
         read = Median(read_s);
  std::printf(
      "leaf bytes: %.1f MB, %.1f bytes/leaf on average%s\n", mb,
      static_cast<double>(bytes) / leaves,
      leaves == bench.size ? "; both roots match the signed checkpoint" : "");
  std::printf("%-40s %14s %10s\n", "", "leaves/s", "MB/s");
  std::printf("%-40s %14.0f %10.1f\n", "read back (StateStore iterator)",
              leaves / read, mb / read);
  std::printf("%-40s %14.0f %10.1f\n", "root recomputed, 1 thread",
              leaves / one, mb / one);
  std::string parallel_label =
      absl::StrCat("root recomputed, ", used, " threads (of ",
                   std::thread::hardware_concurrency(), " hw)");
  std::printf("%-40s %14.0f %10.1f\n", parallel_label.c_str(), leaves / tree,
              mb / tree);
  std::printf("%-40s %14.0f %10.1f\n", "raw SHA-256, one stream, 1 thread",
              leaves / stream, mb / stream);
  std::printf("%-40s %14.0f %10.1f\n", "raw SHA-256, one digest per leaf",
              leaves / per_leaf, mb / per_leaf);
  std::printf(
      "root recomputation on %d threads takes %.2fx the time of streaming "
      "SHA-256 over the same bytes on 1 thread (on 1 thread: %.2fx; %.2fx of "
      "one digest per leaf); with the read-back %.2fx\n",
      used, tree / stream, one / stream, one / per_leaf,
      (tree + read) / stream);
}

int Main() {
  const uint64_t max_leaves = absl::GetFlag(FLAGS_max_leaves);
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));
  std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp",
                                       "/dsar-audit-bench-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = pattern;
  } else if (std::filesystem::exists(dir)) {
    std::fprintf(stderr, "dsar-audit-bench: --dir=%s exists\n", dir.c_str());
    return 2;
  }
  std::printf("dsar-audit-bench: scratch directory %s\n", dir.c_str());

  Bench bench;
  absl::StatusOr<std::unique_ptr<FileKeyRing>> ring =
      FileKeyRing::Open(dir + "/kek");
  Check(ring.status(), "FileKeyRing::Open");
  {
    absl::StatusOr<std::unique_ptr<StateStore>> store =
        StateStore::Open(dir + "/state", ring->get());
    Check(store.status(), "StateStore::Open");
    bench.store = std::move(*store);
  }
  AuditLog::Options options;
  options.origin = "bench.dsar.local/audit";
  {
    std::filesystem::create_directories(dir + "/keys");
    absl::StatusOr<std::unique_ptr<audit::CheckpointSigner>> signer =
        audit::CheckpointSigner::LoadOrCreate(dir + "/keys/checkpoint.key",
                                              options.origin);
    Check(signer.status(), "CheckpointSigner::LoadOrCreate");
    options.signer = std::move(*signer);
  }
  options.hmac_key = std::string(32, '\x42');
  {
    absl::StatusOr<std::unique_ptr<AuditLog>> log =
        AuditLog::Open(bench.store.get(), std::move(options));
    Check(log.status(), "AuditLog::Open");
    bench.log = std::move(*log);
  }
  {
    EventSource source;
    source.Next();
    v1::Event sample = source.Next();  // One that chains to a previous one.
    sample.set_log_index(1234567);
    std::printf("typical event: %zu bytes serialized\n",
                sample.SerializeAsString().size());
  }
  std::unique_ptr<StateStore> raw_store;
  {
    absl::StatusOr<std::unique_ptr<StateStore>> store =
        StateStore::Open(dir + "/raw", ring->get());
    Check(store.status(), "StateStore::Open");
    raw_store = std::move(*store);
  }

  Clock::time_point all = Clock::now();
  BenchAppends(bench, *raw_store, runs);
  raw_store.reset();

  std::printf("\n== Inclusion proofs ==\n");
  std::vector<uint64_t> sizes;
  if (max_leaves > 1000000) sizes.push_back(1000000);
  sizes.push_back(max_leaves);
  for (uint64_t size : sizes) {
    Grow(bench, size, absl::GetFlag(FLAGS_build_batch));
    BenchProofs(bench, runs, absl::GetFlag(FLAGS_proofs));
  }

  // The parallel verifier needs the cores RocksDB is still compacting the
  // build on; the proofs above were timed during those compactions.
  {
    Clock::time_point start = Clock::now();
    bool settled = bench.store->WaitForBackgroundWork(absl::Minutes(5));
    std::printf("\nwaited %.1f s for RocksDB flushes and compactions%s\n",
                Seconds(start), settled ? "" : " (gave up; still running)");
  }
  uint64_t verify = absl::GetFlag(FLAGS_verify_leaves);
  if (verify == 0 || verify > bench.size) verify = bench.size;
  BenchVerify(bench, verify, runs, absl::GetFlag(FLAGS_verify_threads));

  std::printf(
      "\ntargets: >= 100000 leaves/s appended in batches; proof < 100 us at "
      "10M leaves; verification within 2x of raw SHA-256\n");
  std::printf("total %.0f s\n", Seconds(all));

  bench.log.reset();
  bench.store.reset();
  if (!absl::GetFlag(FLAGS_keep)) {
    std::error_code error;
    std::filesystem::remove_all(dir, error);
  }
  return 0;
}

}  // namespace
}  // namespace dsar

int main(int argc, char** argv) {
  dsar::SetProgramUsage(
      "Benchmarks the audit log: append, prove and verify.\n"
      "  dsar-audit-bench [--max_leaves=N] [--dir=DIR] [--runs=3]",
      __FILE__);
  absl::ParseCommandLine(argc, argv);
  return dsar::Main();
}
