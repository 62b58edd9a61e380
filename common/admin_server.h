#ifndef DSAR_COMMON_ADMIN_SERVER_H_
#define DSAR_COMMON_ADMIN_SERVER_H_

// The admin HTTP listener of dsard, dsar-worker and dsar-gateway
// (docs/operations.md, "Metrics and health"): GET /metrics (Prometheus text
// format 0.0.4), /healthz (liveness) and /readyz (readiness). It has its own
// socket and its own few threads, so it answers while every request thread
// of the program is busy or its commit loop is stuck; the checks it runs
// must therefore never wait for those (read atomics or a published
// snapshot, never call into the loop without a short deadline).

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "prometheus/collectable.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace dsar {

class AdminServer {
 public:
  struct Options {
    // HOST:PORT ([v6]:PORT); port 0 picks a free one (see port()).
    std::string listen;
    // What /metrics serves, collected in order on each scrape. Names must
    // not repeat across them.
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables;
    // OK: 200 "ok"; an error: 503 with its message. Called on an admin
    // thread per request; must return promptly. Empty: always OK.
    std::function<absl::Status()> liveness;
    std::function<absl::Status()> readiness;
    int threads = 4;
  };

  // Binds and starts serving on a thread of its own. INVALID_ARGUMENT for a
  // malformed address; UNAVAILABLE naming it when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(Options options);
  // Stops listening and joins the threads.
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  int port() const { return port_; }

  // The /metrics body: every collectable's families in the text format.
  static std::string RenderMetrics(
      const std::vector<std::shared_ptr<prometheus::Collectable>>&
          collectables);

 private:
  explicit AdminServer(Options options);

  Options options_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  int port_ = 0;
};

// Makes `http` bind its listening socket with SO_REUSEADDR only. httplib's
// default adds SO_REUSEPORT, under which a second program bound to the same
// port silently shares it (and takes half its connections); a taken port
// must be an error instead. Call before binding.
void BindExclusively(httplib::Server& http);

// A program's admin listener from its --admin_listen and --admin_port_file
// flags: nullptr when options.listen is empty (turned off). When the
// listen address is the program's `default_listen` and cannot be bound
// (another dsar program on this machine has it), a warning is logged and
// nullptr returned: the program runs without it. An address the operator
// chose must work: its errors are returned. The bound port is written to
// `port_file` (when set) once the listener accepts connections.
absl::StatusOr<std::unique_ptr<AdminServer>> StartAdminListener(
    AdminServer::Options options, const std::string& default_listen,
    const std::string& port_file);

// Splits "host:port" / "[v6]:port" into its parts. INVALID_ARGUMENT naming
// `flag` when there is no port or it is not 0..65535.
absl::Status ParseHostPort(const std::string& listen, const std::string& flag,
                           std::string* host, int* port);

// Histogram buckets in seconds for latencies from 0.5 ms to 60 s.
std::vector<double> LatencyBuckets();

}  // namespace dsar

#endif  // DSAR_COMMON_ADMIN_SERVER_H_
