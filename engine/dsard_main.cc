// dsard: the coordinator. Keeps every request's state machine in RocksDB and
// serves the public API and the worker protocol over gRPC.

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/admin_server.h"
#include "common/files.h"
#include "common/grpc_malformed_request.h"
#include "common/grpc_server_metrics.h"
#include "common/listen_address.h"
#include "common/log.h"
#include "common/mutex_mode.h"
#include "common/program_usage.h"
#include "common/stop_signals.h"
#include "engine/caller_authorization.h"
#include "engine/coordinator.h"
#include "engine/grpc_services.h"
#include "engine/identity_reach.h"
#include "inventory/inventory.h"

// Threads of the gRPC server kept waiting for calls (see main).
constexpr int kIdleGrpcThreads = 64;

ABSL_FLAG(
    std::string, listen, "127.0.0.1:50051",
    "Address to serve gRPC on; port 0 picks a free port (see --port_file).");
ABSL_FLAG(std::string, listen_unix, "",
          "Also serve gRPC on a Unix socket at this path, with the same "
          "credentials as --listen, for a gateway or workers on this machine: "
          "they reach dsard without the TCP stack (--coordinator=unix:PATH). "
          "Created owner-only (mode 0700): only processes of dsard's user "
          "can connect.");
ABSL_FLAG(std::string, data_dir, "./dsar-data",
          "Directory for the state database, "
          "uploaded exports and bundles.");
ABSL_FLAG(std::string, files_dir, "",
          "Directory for uploaded exports and bundles (default: --data_dir); "
          "on its own volume exports cannot fill the state's disk.");
ABSL_FLAG(int64_t, disk_reserve_mb, 512,
          "Refuse new requests and export uploads (RESOURCE_EXHAUSTED) while "
          "the data or files directory has less free space than this; work "
          "in flight goes on and intake resumes when space returns.");
ABSL_FLAG(std::string, inventory, "", "Data inventory YAML (required).");
ABSL_FLAG(std::string, workflow, "",
          "Workflow definition JSON; empty: the built-in DSAR workflow.");
ABSL_FLAG(double, lease_seconds, 30,
          "How long a task lease lasts without a heartbeat.");
ABSL_FLAG(std::string, audit_origin, "",
          "Origin line of the audit log's signed checkpoints (and the key "
          "name). Empty: the stored log's origin, or for a new log "
          "dsar.local/audit/<hash of the signing key>, unique per deployment.");
ABSL_FLAG(
    std::string, time_zone, "UTC",
    "IANA time zone in which statutory deadlines end (e.g. Europe/Berlin).");
ABSL_FLAG(
    bool, verify_unattested, true,
    "Requests created without `verified` wait for the subject's one-time code. "
    "false: they are recorded as verified by configuration (every caller "
    "verifies).");
ABSL_FLAG(absl::Duration, verification_ttl, absl::Hours(72),
          "How long a one-time verification code is valid; then the request is "
          "closed.");
ABSL_FLAG(int, verification_attempts, 5,
          "Wrong codes allowed before the request is closed.");
ABSL_FLAG(absl::Duration, deadline_notice, absl::Hours(7 * 24),
          "Notify operators this long before a request's deadline.");
ABSL_FLAG(absl::Duration, unserved_alert_after, absl::Minutes(5),
          "Alert the operator when a task waited this long with no live "
          "worker serving its store.");
ABSL_FLAG(absl::Duration, worker_silence_after, absl::Seconds(90),
          "A worker not heard from for this long no longer counts as "
          "serving its stores.");
ABSL_FLAG(absl::Duration, download_url_ttl, absl::Hours(1),
          "How long a signed bundle download URL works (docs/delivery.md).");
ABSL_FLAG(absl::Duration, bundle_retention, absl::Hours(30 * 24),
          "Delete an access bundle this long after its request completed "
          "(docs/retention.md).");
ABSL_FLAG(absl::Duration, record_retention, absl::Hours(3 * 365 * 24),
          "Destroy a closed request's personal data (its data key) this long "
          "after it closed; the other facts and the audit log stay.");
ABSL_FLAG(std::string, audit_scan_schedule, "",
          "When dsard scans the stores for privacy signals: a cron "
          "expression in UTC, e.g. \"0 1 * * *\" (seed 002's daily 01:00); "
          "empty: only when asked (dsarctl audit-scan run). A run missed "
          "while dsard was down runs once at start.");
ABSL_FLAG(absl::Duration, audit_report_retention, absl::Hours(90 * 24),
          "How long an audit scan's report is kept after the run ended "
          "(seed 002: 90 days); the purge then destroys it.");
ABSL_FLAG(absl::Duration, purge_interval, absl::Hours(24),
          "Run the retention purge this often; 0: only when asked "
          "(dsarctl purge).");
ABSL_FLAG(std::string, templates_dir, DSAR_DEFAULT_TEMPLATES_DIR,
          "Directory with the Art. 15 answer templates (response.md.mustache, "
          "response.html.mustache) an organisation edits.");
ABSL_FLAG(std::string, notify_file, "",
          "Append notifications as JSON lines to this file (the demo's sink).");
ABSL_FLAG(std::string, webhook_url, "", "POST notifications to this URL.");
ABSL_FLAG(std::string, webhook_secret_file, "",
          "File with the secret that signs webhook bodies (HMAC-SHA256).");
ABSL_FLAG(std::string, opendsr_processor_key, "",
          "dsar as an OpenDSR processor (docs/opendsr.md): PEM private key of "
          "the processor's signing certificate; it signs status callbacks to "
          "controllers. Empty: controllers must poll.");
ABSL_FLAG(std::string, opendsr_processor_domain, "",
          "The processor's OpenDSR domain, sent as X-OpenDSR-Processor-Domain "
          "with every callback (the signing certificate's SAN).");
ABSL_FLAG(std::string, opendsr_callback_ca, "",
          "PEM CA file controllers' HTTPS certificates are checked against "
          "when dsard calls them back; empty: the system's CAs.");
ABSL_FLAG(
    std::string, keys_dir, "",
    "Where the checkpoint signing key and the audit HMAC key live (created on "
    "first start); default DATA_DIR/keys.");
ABSL_FLAG(std::string, checkpoint_witness, "",
          "File OUTSIDE the data directory where the last audit checkpoint "
          "handed out is kept; dsard refuses to start on a log shorter than "
          "or inconsistent with it (a restored older data directory). "
          "Default: KEYS_DIR/checkpoint.witness when --keys_dir is outside "
          "--data_dir; otherwise none, with a warning.");
ABSL_FLAG(
    std::string, port_file, "",
    "If set, the bound port is written here once the server accepts calls.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate dsard serves with; with --tls_key and "
          "--tls_client_ca turns on mutual TLS and per-role authorization "
          "(docs/transport-security.md).");
ABSL_FLAG(std::string, tls_key, "", "Private key of --tls_cert (PEM).");
ABSL_FLAG(std::string, tls_client_ca, "",
          "CA (PEM) whose certificates clients must present; the subject's OU "
          "names the role: worker, gateway, operator or service.");
// docs/operations.md, "Metrics and health".
constexpr char kDefaultAdminListen[] = "127.0.0.1:9470";
ABSL_FLAG(std::string, admin_listen, kDefaultAdminListen,
          "HOST:PORT of the admin HTTP listener: /metrics (Prometheus), "
          "/healthz, /readyz; port 0 picks one (see --admin_port_file); "
          "empty: off. The default is skipped with a warning when taken.");
ABSL_FLAG(std::string, admin_port_file, "",
          "If set, the admin listener's port is written here.");
ABSL_FLAG(std::string, log_format, "text",
          "text, or json: one JSON object per line with time, level, "
          "program, message and request_id/task_id.");
ABSL_FLAG(absl::Duration, loop_stall_limit, absl::Seconds(60),
          "/healthz fails once one turn of the commit loop has run this long.");
ABSL_FLAG(bool, allow_plaintext_non_loopback, false,
          "Serve plaintext (no TLS, no authentication) on an address other "
          "machines can reach; refused unless set.");

namespace {

std::unique_ptr<grpc::Server> g_server;
// Set once StopOnSignal's Shutdown has returned: Wait() may return before
// that, and the server must outlive the call. A std::mutex and condition
// variable, which ThreadSanitizer sees (Debian's absl::Notification is not
// instrumented, so the hand-off looked like a race on g_server). Never
// destroyed: the signal thread may still be leaving notify_all when main
// returns.
struct ShutdownReturned {
  std::mutex mu;
  std::condition_variable cv;
  bool returned = false;  // Guarded by mu.
};
ShutdownReturned& g_shutdown = *new ShutdownReturned;

// The first stop signal shuts the server down: calls in flight get two
// seconds (a long poll or a download to a stalled client is cancelled),
// then main stops the coordinator, which abandons a bundle being written.
// A second signal exits at once.
void StopOnSignal() {
  const int first = dsar::WaitForStopSignal();
  dsar::LogInfo(absl::StrCat(strsignal(first), ", stopping"));
  g_server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::seconds(2));
  {
    std::lock_guard<std::mutex> lock(g_shutdown.mu);
    g_shutdown.returned = true;
  }
  g_shutdown.cv.notify_all();
  std::_Exit(128 + dsar::WaitForStopSignal());
}

int Fail(const absl::Status& status) {
  dsar::LogError(status.ToString());
  return 1;
}

// --listen_unix's path: what sockaddr_un can hold (107 bytes), not written
// as a gRPC target, and no other process serving on it. gRPC removes a
// socket file before binding, so a second dsard given the same path would
// otherwise take the socket from the first one silently; a file nobody
// answers on (left by a dsard that was killed) is replaced.
absl::Status ValidateUnixSocketPath(const std::string& path) {
  if (absl::StartsWith(path, "unix:")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen_unix=", path, ": give the socket's path, without unix:"));
  }
  constexpr size_t kMaxPath = sizeof(sockaddr_un::sun_path) - 1;
  if (path.size() > kMaxPath) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen_unix=", path, ": the path is ", path.size(),
                     " bytes; a Unix socket's is at most ", kMaxPath));
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::OkStatus();  // Binding will say what is wrong.
  sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  const bool answered =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address),
                sizeof(address)) == 0;
  ::close(fd);
  if (answered) {
    return absl::FailedPreconditionError(
        absl::StrCat("--listen_unix=", path,
                     ": another process is serving on this socket (another "
                     "dsard?); give each dsard its own path"));
  }
  return absl::OkStatus();
}

// Where dsard serves, for its start-up line: "port N" (or --listen's Unix
// socket, for which gRPC reports port 1), and "unix:PATH" of --listen_unix.
std::string ListenDescription(int port, const std::string& listen_unix) {
  const std::string listen = absl::GetFlag(FLAGS_listen);
  std::string where =
      absl::StartsWith(listen, "unix:") ? listen : absl::StrCat("port ", port);
  if (!listen_unix.empty()) absl::StrAppend(&where, " and unix:", listen_unix);
  return where;
}

// The listener's credentials from the --tls_* flags: mutual TLS when all three
// are set, plaintext when none is (refused off loopback unless
// --allow_plaintext_non_loopback).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListenerCredentials() {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (cert.empty() && key.empty() && client_ca.empty()) {
    if (!dsar::IsLoopbackAddress(listen) &&
        !absl::GetFlag(FLAGS_allow_plaintext_non_loopback)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--listen=", listen,
          ": refusing plaintext gRPC (no TLS, no authentication) on an "
          "address other machines can reach; pass --tls_cert, --tls_key and "
          "--tls_client_ca, or --allow_plaintext_non_loopback"));
    }
    return grpc::InsecureServerCredentials();
  }
  if (cert.empty() || key.empty() || client_ca.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert, --tls_key and --tls_client_ca go together: dsard speaks "
        "mutual TLS only");
  }
  return dsar::MutualTlsServerCredentials(cert, key, client_ca);
}

}  // namespace

int main(int argc, char** argv) {
  dsar::UseReleaseMutexMode();
  dsar::SetProgramUsage(
      "Keeps every DSAR request's state machine in RocksDB and serves the gRPC "
      "API.\n"
      "  dsard --inventory=inventory.yaml [--data_dir=DIR] "
      "[--listen=HOST:PORT]",
      __FILE__);
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<dsar::LogFormat> log_format =
      dsar::ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.ok()) {
    std::fprintf(stderr, "dsard: %s\n", log_format.status().ToString().c_str());
    return 2;
  }
  dsar::InitLogging("dsard", *log_format);
  // SIGTERM and SIGINT are taken by StopOnSignal alone (common/
  // stop_signals.h): blocked before the first thread starts.
  dsar::BlockStopSignals();
  if (absl::GetFlag(FLAGS_inventory).empty()) {
    return Fail(absl::InvalidArgumentError("--inventory: required"));
  }
  absl::StatusOr<dsar::Inventory> inventory =
      dsar::Inventory::LoadFile(absl::GetFlag(FLAGS_inventory));
  if (!inventory.ok()) return Fail(inventory.status());

  std::string workflow_json(dsar::WorkflowDefinition::DefaultJson());
  if (!absl::GetFlag(FLAGS_workflow).empty()) {
    absl::StatusOr<std::string> text =
        dsar::ReadFile(absl::GetFlag(FLAGS_workflow));
    if (!text.ok()) return Fail(text.status());
    workflow_json = *text;
  }
  auto definition = dsar::WorkflowDefinition::Parse(workflow_json);
  if (!definition.ok()) return Fail(definition.status());

  dsar::Coordinator::Options options;
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.files_dir = absl::GetFlag(FLAGS_files_dir);
  if (absl::GetFlag(FLAGS_disk_reserve_mb) < 0) {
    dsar::LogError("--disk_reserve_mb must not be negative");
    return 2;
  }
  options.disk_reserve_bytes =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_disk_reserve_mb)) << 20;
  options.definition = *definition;
  options.inventory =
      std::make_shared<const dsar::Inventory>(std::move(*inventory));
  options.lease_duration = absl::Seconds(absl::GetFlag(FLAGS_lease_seconds));
  options.audit_origin = absl::GetFlag(FLAGS_audit_origin);
  options.keys_dir = absl::GetFlag(FLAGS_keys_dir);
  options.checkpoint_witness = absl::GetFlag(FLAGS_checkpoint_witness);
  if (options.checkpoint_witness.empty()) {
    options.checkpoint_witness =
        dsar::AuditLog::DefaultWitnessPath(options.data_dir, options.keys_dir);
  }
  if (options.checkpoint_witness.empty()) {
    dsar::LogWarning(absl::StrCat(
        "no --checkpoint_witness and the keys are in the data directory: "
        "restoring an older copy of ",
        options.data_dir,
        " would go unnoticed at start-up (pass --checkpoint_witness=PATH "
        "outside it, or --keys_dir outside it)"));
  }
  options.time_zone = absl::GetFlag(FLAGS_time_zone);
  options.verify_unattested = absl::GetFlag(FLAGS_verify_unattested);
  options.verification_ttl = absl::GetFlag(FLAGS_verification_ttl);
  options.verification_attempts = absl::GetFlag(FLAGS_verification_attempts);
  options.deadline_notice = absl::GetFlag(FLAGS_deadline_notice);
  options.unserved_alert_after = absl::GetFlag(FLAGS_unserved_alert_after);
  options.worker_silence_after = absl::GetFlag(FLAGS_worker_silence_after);
  options.download_url_ttl = absl::GetFlag(FLAGS_download_url_ttl);
  if (options.download_url_ttl <= absl::ZeroDuration()) {
    dsar::LogError("--download_url_ttl must be positive");
    return 2;
  }
  options.bundle_retention = absl::GetFlag(FLAGS_bundle_retention);
  options.record_retention = absl::GetFlag(FLAGS_record_retention);
  options.purge_interval = absl::GetFlag(FLAGS_purge_interval);
  options.audit_scan_schedule = absl::GetFlag(FLAGS_audit_scan_schedule);
  options.audit_report_retention = absl::GetFlag(FLAGS_audit_report_retention);
  for (const auto& [name, value] :
       {std::pair<const char*, absl::Duration>{"bundle_retention",
                                               options.bundle_retention},
        {"record_retention", options.record_retention},
        {"purge_interval", options.purge_interval}}) {
    if (value < absl::ZeroDuration()) {
      dsar::LogError(absl::StrCat("--", name, " must not be negative"));
      return 2;
    }
  }
  options.loop_stall_limit = absl::GetFlag(FLAGS_loop_stall_limit);
  options.notify_file = absl::GetFlag(FLAGS_notify_file);
  options.templates_dir = absl::GetFlag(FLAGS_templates_dir);
  options.webhook_url = absl::GetFlag(FLAGS_webhook_url);
  if (!absl::GetFlag(FLAGS_webhook_secret_file).empty()) {
    absl::StatusOr<std::string> secret =
        dsar::ReadFile(absl::GetFlag(FLAGS_webhook_secret_file));
    if (!secret.ok()) return Fail(secret.status());
    options.webhook_secret = std::string(absl::StripAsciiWhitespace(*secret));
  }
  if (const std::string key_file = absl::GetFlag(FLAGS_opendsr_processor_key);
      !key_file.empty()) {
    absl::StatusOr<std::string> key = dsar::ReadFile(key_file);
    if (!key.ok()) return Fail(key.status());
    options.opendsr_processor_key_pem = *std::move(key);
    options.opendsr_processor_domain =
        absl::GetFlag(FLAGS_opendsr_processor_domain);
    if (options.opendsr_processor_domain.empty()) {
      return Fail(absl::InvalidArgumentError(
          "--opendsr_processor_domain: required with --opendsr_processor_key"));
    }
    options.opendsr_callback_ca_file = absl::GetFlag(FLAGS_opendsr_callback_ca);
  }
  for (const std::string& warning :
       dsar::UnreachableStoreWarnings(*options.inventory)) {
    dsar::LogWarning(warning);
  }
  for (const dsar::StoreSpec& store : options.inventory->stores()) {
    if (!dsar::IsNullStore(store)) continue;
    dsar::LogWarning(absl::StrCat(
        "store ", store.name,
        " is a null store: it holds nothing, so every request finds and "
        "changes nothing in it (docs/inventory.md, \"Null stores\")"));
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ListenerCredentials();
  if (!credentials.ok()) return Fail(credentials.status());
  auto coordinator = dsar::Coordinator::Create(options);
  if (!coordinator.ok()) return Fail(coordinator.status());

  dsar::DsarServiceImpl dsar_service(coordinator->get());
  dsar::WorkerServiceImpl worker_service(coordinator->get());
  dsar::AuditServiceImpl audit_service(&(*coordinator)->audit_log());
  dsar::AdminServiceImpl admin_service(coordinator->get());
  dsar::OpenDsrCallbackServiceImpl opendsr_callbacks(coordinator->get());
  dsar::OpenDsrProcessorServiceImpl opendsr_processor(coordinator->get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), *credentials, &port);
  const std::string listen_unix = absl::GetFlag(FLAGS_listen_unix);
  int unix_bound = 0;  // gRPC says 1 once a Unix socket is bound.
  if (!listen_unix.empty()) {
    if (absl::Status valid = ValidateUnixSocketPath(listen_unix); !valid.ok()) {
      return Fail(valid);
    }
    builder.AddListeningPort(absl::StrCat("unix:", listen_unix), *credentials,
                             &unix_bound);
  }
  builder.RegisterService(&dsar_service);
  builder.RegisterService(&worker_service);
  builder.RegisterService(&audit_service);
  builder.RegisterService(&admin_service);
  builder.RegisterService(&opendsr_callbacks);
  builder.RegisterService(&opendsr_processor);
  builder.SetMaxReceiveMessageSize(16 << 20);
  // gRPC's synchronous server keeps 2 idle threads by default and ends any
  // other thread once its call is answered, so concurrent callers that wait
  // in dsard (a create for its commit, before creates moved to the callback
  // API; a cancel or retry; a worker's long poll) made it start and end a
  // thread for nearly every call: ~860 a second at ~1,000 creates/s, 2-12%
  // of dsard's CPU per request (docs/BENCHMARKS.md, "Null stores: the
  // engine alone").
  // Threads kept idle cost a stack each and a wake-up every 10 s.
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, kIdleGrpcThreads);
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      dsar::MakeGrpcServerMetrics((*coordinator)->metrics_registry()));
  interceptors.push_back(dsar::MakeMalformedRequestInterceptor());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  g_server = builder.BuildAndStart();
  if (!g_server || port == 0 || (!listen_unix.empty() && unix_bound == 0)) {
    return Fail(absl::UnavailableError(absl::StrCat(
        "cannot listen on ", absl::GetFlag(FLAGS_listen),
        listen_unix.empty() ? "" : absl::StrCat(" and unix:", listen_unix))));
  }
  // Its own threads: /healthz and /readyz answer while every gRPC thread
  // is busy or the commit loop is stuck.
  dsar::AdminServer::Options admin;
  admin.listen = absl::GetFlag(FLAGS_admin_listen);
  admin.collectables = (*coordinator)->MetricsCollectables();
  dsar::Coordinator* engine = coordinator->get();
  admin.liveness = [engine] { return engine->Liveness(); };
  admin.readiness = [engine] { return engine->Readiness(); };
  absl::StatusOr<std::unique_ptr<dsar::AdminServer>> admin_server =
      dsar::StartAdminListener(std::move(admin), kDefaultAdminListen,
                               absl::GetFlag(FLAGS_admin_port_file));
  if (!admin_server.ok()) return Fail(admin_server.status());
  // Before the port file announces the server. A stop signal that came
  // earlier is pending (blocked since the start) and is taken now.
  std::thread(StopOnSignal).detach();
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    absl::Status written = dsar::WriteFileAtomically(
        absl::GetFlag(FLAGS_port_file), absl::StrCat(port, "\n"));
    if (!written.ok()) return Fail(written);
  }
  dsar::LogInfo(absl::StrCat("audit checkpoints are signed by ",
                             (*coordinator)->audit_log().signer().key_name(),
                             "; auditors keep ",
                             (*coordinator)->public_key_path()));
  dsar::LogInfo(absl::StrCat(
      "serving ",
      absl::GetFlag(FLAGS_tls_cert).empty() ? "plaintext" : "mutual TLS",
      " on ", ListenDescription(port, listen_unix), ", workflow ",
      (*definition)->version(), ", ", options.inventory->stores().size(),
      " stores, data in ", options.data_dir));
  g_server->Wait();
  {
    std::unique_lock<std::mutex> lock(g_shutdown.mu);
    g_shutdown.cv.wait(lock, [] { return g_shutdown.returned; });
  }
  g_server.reset();
  admin_server->reset();  // Its collectables refer to the coordinator.
  coordinator->reset();
  dsar::LogInfo("stopped");
  return 0;
}
