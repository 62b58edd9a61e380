// dsar-gateway: the REST/JSON face of dsard. Routes come from the
// google.api.http annotations of the linked services (docs/gateway.md).

#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/admin_server.h"
#include "common/files.h"
#include "common/grpc_tls.h"
#include "common/listen_address.h"
#include "common/log.h"
#include "common/mutex_mode.h"
#include "common/program_usage.h"
#include "dsar/v1/admin.pb.h"
#include "dsar/v1/audit.pb.h"
#include "dsar/v1/opendsr.pb.h"
#include "dsar/v1/requests.pb.h"
#include "gateway/bundle_download.h"
#include "gateway/compat/seed_routes.h"
#include "gateway/gateway_server.h"
#include "gateway/opendsr/callback_route.h"
#include "gateway/opendsr/processor_routes.h"
#include "inventory/inventory.h"
#include "opendsr/signature.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8080",
          "HOST:PORT to serve HTTP (HTTPS with --tls_cert) on; port 0 picks a "
          "free port (see --port_file).");
ABSL_FLAG(std::string, tls_cert, "",
          "Certificate chain (PEM) of the HTTPS listener; with --tls_key: "
          "serve HTTPS (TLS 1.2 or later) instead of plain HTTP.");
ABSL_FLAG(std::string, tls_key, "", "Private key (PEM) of --tls_cert.");
ABSL_FLAG(bool, allow_plaintext_non_loopback, false,
          "Serve plain HTTP (bearer tokens and signed download URLs in the "
          "clear) on an address other machines can reach; refused unless "
          "set.");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written here once the socket listens.");
ABSL_FLAG(std::string, coordinator, "127.0.0.1:50051", "dsard's gRPC address.");
// Named for the connection they secure (--tls_* are the HTTP listener's).
ABSL_FLAG(std::string, coordinator_tls_ca, "",
          "CA (PEM) that issued dsard's certificate; with "
          "--coordinator_tls_cert and --coordinator_tls_key: reach dsard over "
          "mutual TLS.");
ABSL_FLAG(std::string, coordinator_tls_cert, "",
          "The gateway's client certificate for dsard (PEM, OU=gateway).");
ABSL_FLAG(std::string, coordinator_tls_key, "",
          "Private key of --coordinator_tls_cert (PEM).");
ABSL_FLAG(std::vector<std::string>, services,
          std::vector<std::string>({"dsar.v1.DsarService",
                                    "dsar.v1.AuditService",
                                    "dsar.v1.AdminService"}),
          "gRPC services to expose; their routes come from their "
          "google.api.http annotations.");
ABSL_FLAG(bool, compat_routes, true,
          "Serve the seed designs' routes (POST /dsar, /api/dsar/submit, ...); "
          "needs dsar.v1.DsarService on the coordinator.");
ABSL_FLAG(std::string, opendsr_processor_cert, "",
          "dsar as an OpenDSR processor (docs/opendsr.md): PEM signing "
          "certificate served at /opendsr/v1/processor-certificate.pem; with "
          "it the gateway serves /opendsr/v1/discovery and /requests to "
          "controllers holding scope opendsr.controller. Empty: not served.");
ABSL_FLAG(std::string, opendsr_processor_key, "",
          "PEM private key of --opendsr_processor_cert; signs every answer.");
ABSL_FLAG(std::string, opendsr_processor_domain, "",
          "The processor's OpenDSR domain (X-OpenDSR-Processor-Domain; the "
          "certificate's SAN).");
ABSL_FLAG(std::string, opendsr_public_url, "",
          "The gateway's public base URL (https://host[:port]) for the "
          "certificate link in discovery and for results_url.");
ABSL_FLAG(std::vector<std::string>, opendsr_callback_hosts, {},
          "Hosts a controller's status_callback_urls may name (comma-"
          "separated); empty: any https host.");
ABSL_FLAG(std::string, opendsr_inventory, "",
          "Data inventory (YAML) whose opendsr stores may send OpenDSR status "
          "callbacks to POST /opendsr/v1/callbacks (docs/opendsr.md); empty: "
          "the route is not served.");
ABSL_FLAG(std::string, jwt_hs256_secret_file, "",
          "File holding the HS256 secret (at least 32 bytes; a trailing "
          "newline is ignored).");
ABSL_FLAG(std::string, jwks_file, "",
          "JWKS file with the RS256/ES256 public keys tokens are signed with.");
ABSL_FLAG(std::string, issuer, "", "Required \"iss\" of tokens (empty: any).");
ABSL_FLAG(std::string, audience, "",
          "Required \"aud\" of tokens (empty: any).");
ABSL_FLAG(int, jwt_leeway_seconds, 30, "Clock skew allowed for exp and nbf.");
ABSL_FLAG(bool, insecure_dev, false,
          "NO AUTHENTICATION: every caller gets every scope. For a demo on "
          "loopback only.");
ABSL_FLAG(int64_t, max_body_bytes, 1 << 20,
          "Largest request body accepted; larger ones get 413.");
ABSL_FLAG(int, read_timeout_ms, 10000,
          "Time allowed to receive a request's headers and body.");
ABSL_FLAG(int, write_timeout_ms, 10000, "Time allowed to send a response.");
ABSL_FLAG(int, keep_alive_timeout_ms, 5000,
          "How long an idle keep-alive connection is kept.");
ABSL_FLAG(int, keep_alive_max_requests, 1000,
          "Requests served on one connection before it is closed.");
ABSL_FLAG(int, backend_timeout_ms, 10000, "Deadline of each call to dsard.");
ABSL_FLAG(int, backend_spin_us, 300,
          "How long a call waits for dsard's answer awake (polling, yielding "
          "the CPU) before it sleeps, when no other call is in flight. 0: "
          "calls sleep at once (docs/gateway.md).");
ABSL_FLAG(int, next_request_spin_us, 100,
          "How long a keep-alive connection waits for its next request awake "
          "(polling, yielding the CPU) before it sleeps, while its client "
          "sends requests one after another; plain HTTP only. 0: "
          "connections sleep at once (docs/gateway.md).");
ABSL_FLAG(int, threads, 16, "HTTP worker threads.");
ABSL_FLAG(absl::Duration, download_timeout, absl::Hours(1),
          "Longest a bundle download (GET /v1/downloads/...) may take.");
ABSL_FLAG(bool, access_log, true, "Log one line per request on stderr.");
// docs/operations.md, "Metrics and health".
constexpr char kDefaultAdminListen[] = "127.0.0.1:9472";
ABSL_FLAG(std::string, admin_listen, kDefaultAdminListen,
          "HOST:PORT of the admin HTTP listener: /metrics (Prometheus), "
          "/healthz, /readyz, on threads of its own; port 0 picks one (see "
          "--admin_port_file); empty: off. The default is skipped with a "
          "warning when taken.");
ABSL_FLAG(std::string, admin_port_file, "",
          "If set, the admin listener's port is written here.");
ABSL_FLAG(std::string, log_format, "text",
          "text, or json: one JSON object per line with time, level, "
          "program and message.");

namespace {

int Fail(const absl::Status& status) {
  dsar::LogError(status.ToString());
  return 1;
}

// The generated descriptors of a static library are only linked when
// something refers to them; these references keep the public API's files
// in the generated pool, where the route table looks for them.
void LinkPublicApiDescriptors() {
  (void)dsar::v1::CreateRequestRequest::descriptor();
  (void)dsar::v1::GetCheckpointRequest::descriptor();
  (void)dsar::v1::ListWorkersRequest::descriptor();
}

// A --*_spin_us flag's window. Past a millisecond a wait awake would be a
// sleeping wait spent polling, so 0 to 1000 microseconds.
absl::StatusOr<absl::Duration> SpinWindow(const char* flag, int microseconds) {
  if (microseconds < 0 || microseconds > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", microseconds,
                     " is out of range (0 to 1000 microseconds)"));
  }
  return absl::Microseconds(microseconds);
}

absl::StatusOr<std::string> ReadSecret(const std::string& path) {
  absl::StatusOr<std::string> text = dsar::ReadFile(path);
  if (!text.ok()) return text.status();
  std::string secret = *std::move(text);
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) {
    secret.pop_back();
  }
  return secret;
}

}  // namespace

int main(int argc, char** argv) {
  dsar::UseReleaseMutexMode();
  dsar::SetProgramUsage(
      "The REST/JSON face of dsard (routes from the proto annotations).\n"
      "  dsar-gateway --coordinator=HOST:PORT (--jwt_hs256_secret_file=F | "
      "--jwks_file=F | --insecure_dev) [--listen=HOST:PORT] "
      "[--tls_cert=PEM --tls_key=PEM]",
      __FILE__);
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<dsar::LogFormat> log_format =
      dsar::ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.ok()) {
    std::fprintf(stderr, "dsar-gateway: %s\n",
                 log_format.status().ToString().c_str());
    return 2;
  }
  dsar::InitLogging("dsar-gateway", *log_format);
  LinkPublicApiDescriptors();
  auto metrics = std::make_shared<prometheus::Registry>();

  dsar::gateway::GatewayOptions options;
  std::string listen = absl::GetFlag(FLAGS_listen);
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &options.port) ||
      options.port < 0 || options.port > 65535) {
    return Fail(absl::InvalidArgumentError("--listen: expected HOST:PORT"));
  }
  options.host = listen.substr(0, colon);
  if (options.host.size() > 2 && options.host.front() == '[') {
    options.host = options.host.substr(1, options.host.size() - 2);
  }
  options.services = absl::GetFlag(FLAGS_services);
  options.max_body_bytes = static_cast<size_t>(
      std::max<int64_t>(0, absl::GetFlag(FLAGS_max_body_bytes)));
  options.read_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_read_timeout_ms));
  options.write_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_write_timeout_ms));
  options.keep_alive_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_keep_alive_timeout_ms));
  options.keep_alive_max_requests =
      absl::GetFlag(FLAGS_keep_alive_max_requests);
  options.threads = absl::GetFlag(FLAGS_threads);
  absl::StatusOr<absl::Duration> backend_spin =
      SpinWindow("backend_spin_us", absl::GetFlag(FLAGS_backend_spin_us));
  if (!backend_spin.ok()) return Fail(backend_spin.status());
  absl::StatusOr<absl::Duration> next_request_spin = SpinWindow(
      "next_request_spin_us", absl::GetFlag(FLAGS_next_request_spin_us));
  if (!next_request_spin.ok()) return Fail(next_request_spin.status());
  options.next_request_spin = *next_request_spin;
  options.metrics = metrics;
  options.access_log = absl::GetFlag(FLAGS_access_log);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return Fail(
        absl::InvalidArgumentError("--tls_cert and --tls_key go together"));
  }
  if (absl::GetFlag(FLAGS_insecure_dev) && !dsar::IsLoopbackAddress(listen)) {
    return Fail(absl::InvalidArgumentError(
        "--insecure_dev is refused on a non-loopback --listen address"));
  }
  // The same rule as dsard's (docs/transport-security.md).
  const bool plaintext = options.tls_cert_file.empty();
  if (plaintext && !dsar::IsLoopbackAddress(listen) &&
      !absl::GetFlag(FLAGS_allow_plaintext_non_loopback)) {
    return Fail(absl::FailedPreconditionError(absl::StrCat(
        "--listen=", listen,
        ": refusing plain HTTP (no TLS: bearer tokens and signed download "
        "URLs in the clear) on an address other machines can reach; pass "
        "--tls_cert and --tls_key, or --allow_plaintext_non_loopback")));
  }

  std::unique_ptr<dsar::gateway::RequestAuthenticator> authenticator;
  if (absl::GetFlag(FLAGS_insecure_dev)) {
    dsar::LogWarning(
        "--insecure_dev: NO AUTHENTICATION. Every caller has every scope and "
        "acts as \"insecure-dev\". Demo only.");
    authenticator = dsar::gateway::RequestAuthenticator::InsecureDev();
  } else {
    dsar::gateway::JwtVerifierOptions jwt;
    if (!absl::GetFlag(FLAGS_jwt_hs256_secret_file).empty()) {
      absl::StatusOr<std::string> secret =
          ReadSecret(absl::GetFlag(FLAGS_jwt_hs256_secret_file));
      if (!secret.ok()) return Fail(secret.status());
      jwt.hs256_secret = *std::move(secret);
    }
    if (!absl::GetFlag(FLAGS_jwks_file).empty()) {
      absl::StatusOr<std::string> jwks =
          dsar::ReadFile(absl::GetFlag(FLAGS_jwks_file));
      if (!jwks.ok()) return Fail(jwks.status());
      jwt.jwks_json = *std::move(jwks);
    }
    if (jwt.hs256_secret.empty() && jwt.jwks_json.empty()) {
      return Fail(absl::InvalidArgumentError(
          "give --jwt_hs256_secret_file and/or --jwks_file (or --insecure_dev "
          "for a local demo)"));
    }
    jwt.issuer = absl::GetFlag(FLAGS_issuer);
    jwt.audience = absl::GetFlag(FLAGS_audience);
    jwt.leeway = absl::Seconds(absl::GetFlag(FLAGS_jwt_leeway_seconds));
    absl::StatusOr<std::unique_ptr<dsar::gateway::JwtVerifier>> verifier =
        dsar::gateway::JwtVerifier::Create(jwt);
    if (!verifier.ok()) return Fail(verifier.status());
    authenticator = std::make_unique<dsar::gateway::RequestAuthenticator>(
        *std::move(verifier));
  }

  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      dsar::ChannelCredentialsFor({absl::GetFlag(FLAGS_coordinator_tls_ca),
                                   absl::GetFlag(FLAGS_coordinator_tls_cert),
                                   absl::GetFlag(FLAGS_coordinator_tls_key)},
                                  "coordinator_tls_");
  if (!credentials.ok()) return Fail(credentials.status());
  auto backend = std::make_shared<const dsar::gateway::BackendClient>(
      absl::GetFlag(FLAGS_coordinator),
      absl::Milliseconds(absl::GetFlag(FLAGS_backend_timeout_ms)), *credentials,
      metrics.get(), *backend_spin);
  // Routes with code of their own, asked before the annotated ones.
  std::vector<std::unique_ptr<dsar::gateway::RouteProvider>> providers;
  absl::StatusOr<std::unique_ptr<dsar::gateway::BundleDownloadRoutes>>
      downloads = dsar::gateway::BundleDownloadRoutes::Create(
          backend, absl::GetFlag(FLAGS_download_timeout));
  if (!downloads.ok()) return Fail(downloads.status());
  providers.push_back(*std::move(downloads));
  if (absl::GetFlag(FLAGS_compat_routes)) {
    providers.push_back(
        std::make_unique<dsar::gateway::compat::SeedRoutes>(backend));
  }
  if (const std::string path = absl::GetFlag(FLAGS_opendsr_inventory);
      !path.empty()) {
    absl::StatusOr<dsar::Inventory> inventory = dsar::Inventory::LoadFile(path);
    if (!inventory.ok()) return Fail(inventory.status());
    providers.push_back(std::make_unique<dsar::gateway::opendsr::CallbackRoute>(
        std::make_shared<const dsar::Inventory>(*std::move(inventory)),
        [backend](const dsar::v1::RecordProcessorStatusRequest& record) {
          return backend
              ->Call("/dsar.v1.OpenDsrCallbackService/RecordProcessorStatus",
                     record.SerializeAsString(), /*actor=*/"")
              .status();
        }));
  }
  if (const std::string cert = absl::GetFlag(FLAGS_opendsr_processor_cert);
      !cert.empty()) {
    dsar::gateway::opendsr::ProcessorOptions processor;
    absl::StatusOr<std::string> cert_pem = dsar::ReadFile(cert);
    if (!cert_pem.ok()) return Fail(cert_pem.status());
    absl::StatusOr<std::string> key_pem =
        dsar::ReadFile(absl::GetFlag(FLAGS_opendsr_processor_key));
    if (!key_pem.ok()) return Fail(key_pem.status());
    processor.cert_pem = *std::move(cert_pem);
    processor.key_pem = *std::move(key_pem);
    processor.domain = absl::GetFlag(FLAGS_opendsr_processor_domain);
    processor.public_url = absl::GetFlag(FLAGS_opendsr_public_url);
    processor.callback_hosts = absl::GetFlag(FLAGS_opendsr_callback_hosts);
    if (processor.domain.empty() ||
        !absl::StartsWith(processor.public_url, "https://")) {
      return Fail(absl::InvalidArgumentError(
          "--opendsr_processor_cert needs --opendsr_processor_domain and an "
          "https --opendsr_public_url"));
    }
    // A key that cannot sign would fail every answer: refuse to start.
    if (absl::StatusOr<std::string> probe =
            dsar::opendsr::SignBody("{}", processor.key_pem);
        !probe.ok()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--opendsr_processor_key: ", probe.status().message())));
    }
    providers.push_back(
        std::make_unique<dsar::gateway::opendsr::ProcessorRoutes>(
            std::move(processor),
            [backend](const std::string& method, const std::string& request,
                      const std::string& actor) {
              return backend->Call(method, request, actor);
            }));
  }
  absl::StatusOr<std::unique_ptr<dsar::gateway::GatewayServer>> server =
      dsar::gateway::GatewayServer::Create(options, std::move(authenticator),
                                           backend, std::move(providers));
  if (!server.ok()) return Fail(server.status());

  // SIGINT/SIGTERM are taken by a thread with sigwait, so stopping the
  // server never runs inside a signal handler. Blocked before any thread
  // starts, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<int> port = (*server)->Bind();
  if (!port.ok()) return Fail(port.status());
  // Its own threads: /healthz answers while all --threads are busy (a
  // frozen coordinator holding every request thread).
  dsar::AdminServer::Options admin;
  admin.listen = absl::GetFlag(FLAGS_admin_listen);
  admin.collectables = {metrics};
  admin.readiness = [backend]() -> absl::Status {
    grpc_connectivity_state state =
        backend->channel()->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(
        "not connected to dsard at ", absl::GetFlag(FLAGS_coordinator),
        " (channel state ", static_cast<int>(state), ")"));
  };
  absl::StatusOr<std::unique_ptr<dsar::AdminServer>> admin_server =
      dsar::StartAdminListener(std::move(admin), kDefaultAdminListen,
                               absl::GetFlag(FLAGS_admin_port_file));
  if (!admin_server.ok()) return Fail(admin_server.status());
  for (const dsar::gateway::Route& route : (*server)->routes().routes()) {
    dsar::LogInfo(absl::StrCat("route ", route.http_method, " ",
                               route.path.text(), " -> ", route.grpc_path,
                               " (scope ", route.required_scope, ")"));
  }
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    absl::Status written = dsar::WriteFileAtomically(
        absl::GetFlag(FLAGS_port_file), absl::StrCat(*port, "\n"));
    if (!written.ok()) return Fail(written);
  }
  dsar::LogInfo(absl::StrCat(
      "listening (", plaintext ? "plain HTTP" : "HTTPS", ") on ", options.host,
      ":", *port, ", coordinator ", absl::GetFlag(FLAGS_coordinator)));

  dsar::gateway::GatewayServer* raw = server->get();
  std::thread signal_thread([raw, signals] {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    dsar::LogInfo(absl::StrCat("signal ", signal_number, ", stopping"));
    raw->Stop();
  });
  signal_thread.detach();
  (*server)->Serve();
  return 0;
}
