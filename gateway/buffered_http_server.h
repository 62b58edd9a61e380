#ifndef DSAR_GATEWAY_BUFFERED_HTTP_SERVER_H_
#define DSAR_GATEWAY_BUFFERED_HTTP_SERVER_H_

// A plain-HTTP httplib::Server that serves each connection through one
// buffered stream instead of the library's per-request SocketStream, which
// polls the socket before every read and write, sends a response's headers
// and body in separate writes (two segments, two wake-ups of the client),
// looks up both addresses of the connection on every request, and drops
// what it read ahead when a request ends (a pipelined request is lost).
//
// Here a response goes out in one write (headers and body together, once
// the handler returns), reads are plain recv calls bounded by SO_RCVTIMEO
// (the read timeout) and writes by SO_SNDTIMEO (the write timeout), and the
// connection's addresses are read once. Keep-alive limits (count, idle
// timeout) and Server::stop() behave as in httplib: an idle connection is
// closed after the keep-alive timeout, and within 10 ms of stop().
//
// After an answer, a keep-alive connection may wait for its next request
// awake for a while (next_request_spin.h) before it sleeps.
//
// TLS connections keep httplib::SSLServer (the stream here is plain TCP).

#include <httplib.h>

#include "absl/time/time.h"
#include "gateway/next_request_spin.h"
#include "prometheus/counter.h"

namespace dsar::gateway {

class BufferedHttpServer : public httplib::Server {
 public:
  struct Options {
    // How long a keep-alive connection waits awake for its next request
    // (NextRequestSpin); zero: it sleeps at once.
    absl::Duration next_request_spin = absl::ZeroDuration();
    // How many connections may wait awake at once (SpinSlots).
    int max_spinning = 1;
    // Counted at the end of each wait awake: the request came during it,
    // or not. Null: not counted. They must outlive the server.
    prometheus::Counter* spins_caught = nullptr;
    prometheus::Counter* spins_missed = nullptr;
  };

  BufferedHttpServer() : BufferedHttpServer(Options{}) {}
  explicit BufferedHttpServer(Options options)
      : options_(options), spin_slots_(options.max_spinning) {}

 private:
  bool process_and_close_socket(socket_t sock) override;

  const Options options_;
  SpinSlots spin_slots_;
};

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_BUFFERED_HTTP_SERVER_H_
