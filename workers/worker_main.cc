// dsar-worker: runs leased DSAR tasks against the stores it serves.
//
// SIGTERM or SIGINT stops it within a few seconds (Worker::Stop: tasks in
// flight are abandoned and their leases expire) with exit code 0; a second
// one ends it at once with 128 + the signal number.

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/admin_server.h"
#include "common/grpc_tls.h"
#include "common/log.h"
#include "common/mutex_mode.h"
#include "common/program_usage.h"
#include "common/stop_signals.h"
#include "workers/worker.h"

ABSL_FLAG(std::string, coordinator, "127.0.0.1:50051", "Address of dsard.");
ABSL_FLAG(std::string, inventory, "", "Data inventory YAML (required).");
ABSL_FLAG(std::string, stores, "",
          "Comma-separated stores this worker serves; empty: every store in "
          "the inventory.");
ABSL_FLAG(std::string, worker_id, "",
          "Name reported to the coordinator; default host-pid, or under TLS "
          "the CN of --tls_cert (which must then match).");
ABSL_FLAG(std::string, tls_ca, "",
          "CA (PEM) that issued dsard's certificate; with --tls_cert and "
          "--tls_key: connect with mutual TLS.");
ABSL_FLAG(std::string, tls_cert, "",
          "This worker's certificate (PEM, OU=worker, CN=its id, SAN URIs "
          "dsar:store:NAME for the stores it may serve).");
ABSL_FLAG(std::string, tls_key, "", "Private key of --tls_cert (PEM).");
ABSL_FLAG(int, concurrency, 4, "Tasks run at once.");
ABSL_FLAG(int, max_tasks_per_poll, 8,
          "Tasks one thread takes at once when more are ready than polls "
          "wait (1 to 16; 1: one at a time). It runs them one after another "
          "and reports them in one message.");
ABSL_FLAG(int, poll_wait_ms, 5000, "Long-poll budget per call.");
// docs/operations.md, "Metrics and health".
constexpr char kDefaultAdminListen[] = "127.0.0.1:9471";
ABSL_FLAG(std::string, admin_listen, kDefaultAdminListen,
          "HOST:PORT of the admin HTTP listener: /metrics (Prometheus), "
          "/healthz, /readyz; port 0 picks one (see --admin_port_file); "
          "empty: off. The default is skipped with a warning when taken "
          "(give each worker on a machine its own).");
ABSL_FLAG(std::string, admin_port_file, "",
          "If set, the admin listener's port is written here.");
ABSL_FLAG(std::string, log_format, "text",
          "text, or json: one JSON object per line with time, level, "
          "program, message and request_id/task_id.");
ABSL_FLAG(int, debug_task_delay_ms, 0,
          "Testing only: wait this long at the start of every task.");

int main(int argc, char** argv) {
  dsar::UseReleaseMutexMode();
  dsar::SetProgramUsage(
      "Runs leased DSAR tasks against the stores it serves.\n"
      "  dsar-worker --inventory=inventory.yaml [--coordinator=HOST:PORT] "
      "[--stores=a,b]",
      __FILE__);
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<dsar::LogFormat> log_format =
      dsar::ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.ok()) {
    std::fprintf(stderr, "dsar-worker: %s\n",
                 log_format.status().ToString().c_str());
    return 2;
  }
  dsar::InitLogging("dsar-worker", *log_format);
  // The signals that stop the worker are taken with sigwait below, never by
  // a handler (common/stop_signals.h).
  dsar::BlockStopSignals();
  if (absl::GetFlag(FLAGS_inventory).empty()) {
    dsar::LogError("--inventory: required");
    return 2;
  }
  absl::StatusOr<dsar::Inventory> inventory =
      dsar::Inventory::LoadFile(absl::GetFlag(FLAGS_inventory));
  if (!inventory.ok()) {
    dsar::LogError(inventory.status().ToString());
    return 2;
  }
  dsar::Worker::Options options;
  options.coordinator_address = absl::GetFlag(FLAGS_coordinator);
  dsar::TlsFiles tls{absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert),
                     absl::GetFlag(FLAGS_tls_key)};
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      dsar::ChannelCredentialsFor(tls, "tls_");
  if (!credentials.ok()) {
    dsar::LogError(credentials.status().ToString());
    return 2;
  }
  options.credentials = *credentials;
  options.worker_id = absl::GetFlag(FLAGS_worker_id);
  if (options.worker_id.empty() && !tls.empty()) {
    // dsard knows this worker by its certificate; report the same name.
    absl::StatusOr<std::string> name = dsar::CertificateCommonName(tls.cert);
    if (!name.ok()) {
      dsar::LogError(absl::StrCat("--tls_cert: ", name.status().ToString()));
      return 2;
    }
    options.worker_id = *name;
  }
  if (options.worker_id.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    options.worker_id = absl::StrCat(host, "-", getpid());
  }
  if (absl::GetFlag(FLAGS_stores).empty()) {
    // Manual stores are worked by people (dsarctl work), not by workers.
    for (const dsar::StoreSpec& store : inventory->stores()) {
      if (!dsar::IsManualStore(store)) options.stores.push_back(store.name);
    }
  } else {
    options.stores =
        absl::StrSplit(absl::GetFlag(FLAGS_stores), ',', absl::SkipEmpty());
  }
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.max_tasks_per_poll = absl::GetFlag(FLAGS_max_tasks_per_poll);
  options.poll_wait_ms = absl::GetFlag(FLAGS_poll_wait_ms);
  options.debug_task_delay_ms = absl::GetFlag(FLAGS_debug_task_delay_ms);
  auto worker = dsar::Worker::Create(
      options, std::make_shared<const dsar::Inventory>(std::move(*inventory)));
  if (!worker.ok()) {
    dsar::LogError(worker.status().ToString());
    return 2;
  }
  dsar::AdminServer::Options admin;
  admin.listen = absl::GetFlag(FLAGS_admin_listen);
  admin.collectables = {(*worker)->metrics_registry()};
  dsar::Worker* runtime = worker->get();
  admin.liveness = [runtime] { return runtime->Liveness(); };
  admin.readiness = [runtime] { return runtime->Readiness(); };
  absl::StatusOr<std::unique_ptr<dsar::AdminServer>> admin_server =
      dsar::StartAdminListener(std::move(admin), kDefaultAdminListen,
                               absl::GetFlag(FLAGS_admin_port_file));
  if (!admin_server.ok()) {
    dsar::LogError(admin_server.status().ToString());
    return 2;
  }
  dsar::LogInfo(absl::StrCat("worker ", options.worker_id, ": serving ",
                             absl::StrJoin(options.stores, ","), " via ",
                             options.coordinator_address));
  std::thread runner([&worker] { (*worker)->Run(); });
  int first = dsar::WaitForStopSignal();
  dsar::LogInfo(absl::StrCat("worker ", options.worker_id, ": ",
                             strsignal(first), ": stopping"));
  // A second signal does not wait for the stop.
  std::thread([] {
    int second = dsar::WaitForStopSignal();
    dsar::LogInfo(absl::StrCat(strsignal(second), " again: exiting now"));
    std::fflush(stderr);
    _exit(128 + second);
  }).detach();
  (*worker)->Stop();
  runner.join();
  admin_server->reset();
  dsar::LogInfo(absl::StrCat("worker ", options.worker_id, ": stopped"));
  return 0;
}
