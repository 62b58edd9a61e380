#include "common/admin_server.h"

#include <httplib.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace dsar {

absl::Status ParseHostPort(const std::string& listen, const std::string& flag,
                           std::string* host, int* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), port) || *port < 0 ||
      *port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "=", listen, ": expected HOST:PORT"));
  }
  *host = listen.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  if (host->empty()) *host = "0.0.0.0";
  return absl::OkStatus();
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
}

AdminServer::AdminServer(Options options) : options_(std::move(options)) {}

std::string AdminServer::RenderMetrics(
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& collectable : collectables) {
    std::vector<prometheus::MetricFamily> collected = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(collected.begin()),
                    std::make_move_iterator(collected.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

void BindExclusively(httplib::Server& http) {
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
}

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(
    Options options) {
  std::string host;
  int port = 0;
  if (absl::Status parsed =
          ParseHostPort(options.listen, "--admin_listen", &host, &port);
      !parsed.ok()) {
    return parsed;
  }
  std::unique_ptr<AdminServer> server(new AdminServer(std::move(options)));
  server->http_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *server->http_;
  const int threads = std::max(1, server->options_.threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // One request per connection and short timeouts: a scraper's kept-alive
  // connection or a slow client cannot hold an admin thread.
  http.set_keep_alive_max_count(1);
  BindExclusively(http);
  http.set_read_timeout(2, 0);
  http.set_write_timeout(5, 0);
  const Options& opts = server->options_;
  http.Get("/metrics",
           [&opts](const httplib::Request&, httplib::Response& response) {
             response.set_content(RenderMetrics(opts.collectables),
                                  "text/plain; version=0.0.4; charset=utf-8");
           });
  auto health = [](const std::function<absl::Status()>& check) {
    return [&check](const httplib::Request&, httplib::Response& response) {
      absl::Status status = check ? check() : absl::OkStatus();
      response.status = status.ok() ? 200 : 503;
      response.set_content(status.ok() ? std::string("ok\n")
                                       : absl::StrCat(status.message(), "\n"),
                           "text/plain; charset=utf-8");
    };
  };
  http.Get("/healthz", health(opts.liveness));
  http.Get("/readyz", health(opts.readiness));
  int bound = port == 0 ? http.bind_to_any_port(host)
                        : (http.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(
        absl::StrCat("--admin_listen=", opts.listen, ": cannot listen there"));
  }
  server->port_ = bound;
  server->thread_ = std::thread([s = server.get()] {
    s->http_->listen_after_bind();
    s->listen_returned_ = true;
  });
  return server;
}

absl::StatusOr<std::unique_ptr<AdminServer>> StartAdminListener(
    AdminServer::Options options, const std::string& default_listen,
    const std::string& port_file) {
  if (options.listen.empty()) return nullptr;
  const std::string listen = options.listen;
  absl::StatusOr<std::unique_ptr<AdminServer>> server =
      AdminServer::Start(std::move(options));
  if (!server.ok()) {
    if (listen == default_listen &&
        server.status().code() == absl::StatusCode::kUnavailable) {
      LogWarning(absl::StrCat(
          "admin listener off: ", listen,
          " is taken (another dsar program on this machine?); no /metrics, "
          "/healthz or /readyz. Pass --admin_listen=HOST:PORT (port 0 picks "
          "one, see --admin_port_file), or --admin_listen= to turn it off"));
      return nullptr;
    }
    return server.status();
  }
  if (!port_file.empty()) {
    absl::Status written =
        WriteFileAtomically(port_file, absl::StrCat((*server)->port(), "\n"));
    if (!written.ok()) return written;
  }
  LogInfo(absl::StrCat("admin listener (/metrics, /healthz, /readyz) on port ",
                       (*server)->port()));
  return server;
}

AdminServer::~AdminServer() {
  // httplib's stop() does nothing before the listen loop has started.
  while (thread_.joinable() && !listen_returned_ && !http_->is_running()) {
    std::this_thread::yield();
  }
  if (http_ != nullptr) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace dsar
