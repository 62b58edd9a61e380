#include "gateway/buffered_http_server.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gateway/spin_wait.h"

namespace dsar::gateway {
namespace {

// One recv fills this much at most; a request's line and headers are read
// from it a byte at a time by httplib.
constexpr size_t kReadBufferBytes = 16 * 1024;
// A response up to this size goes out in one write; a larger one (a bundle
// download) goes out in writes of about this size as the body is produced.
constexpr size_t kWriteBufferBytes = 64 * 1024;
// How often an idle connection's thread checks whether the server stops
// (httplib's own interval).
constexpr int kStopCheckMillis = 10;

int ToMillis(time_t sec, time_t usec) {
  return static_cast<int>(std::max<int64_t>(1, sec * 1000 + usec / 1000));
}

void SetTimeout(socket_t sock, int option, time_t sec, time_t usec) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(sec);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>(usec);
  // To the kernel 0 means no limit; to httplib's poll it meant none at all.
  if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1000;
  setsockopt(sock, SOL_SOCKET, option, &tv, sizeof(tv));
}

// The numeric host and port of `address` (as httplib reports them).
void NumericAddress(const sockaddr_storage& address, socklen_t length,
                    std::string* ip, int* port) {
  if (address.ss_family == AF_INET) {
    *port = ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  } else if (address.ss_family == AF_INET6) {
    *port = ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  } else {
    return;
  }
  std::array<char, NI_MAXHOST> host{};
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&address), length,
                  host.data(), static_cast<socklen_t>(host.size()), nullptr, 0,
                  NI_NUMERICHOST) == 0) {
    *ip = host.data();
  }
}

// One connection, for every request on it. Reads are buffered (and what is
// read ahead stays for the next request); writes are held until Flush, or
// until kWriteBufferBytes are waiting. Not thread-safe: one connection is
// served by one thread.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(socket_t sock, time_t read_timeout_sec,
                   time_t read_timeout_usec, time_t write_timeout_sec,
                   time_t write_timeout_usec)
      : sock_(sock),
        read_timeout_millis_(ToMillis(read_timeout_sec, read_timeout_usec)),
        read_buffer_(kReadBufferBytes) {
    SetTimeout(sock, SO_RCVTIMEO, read_timeout_sec, read_timeout_usec);
    SetTimeout(sock, SO_SNDTIMEO, write_timeout_sec, write_timeout_usec);
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (getpeername(sock, reinterpret_cast<sockaddr*>(&address), &length) ==
        0) {
      NumericAddress(address, length, &remote_ip_, &remote_port_);
    }
    length = sizeof(address);
    if (getsockname(sock, reinterpret_cast<sockaddr*>(&address), &length) ==
        0) {
      NumericAddress(address, length, &local_ip_, &local_port_);
    }
  }

  // Whether bytes read ahead wait (a pipelined request).
  bool HasUnreadBytes() const { return read_begin_ < read_end_; }

  // Waits for the next request: true once bytes are there to read; false
  // when the connection stays idle for `idle_timeout_sec`, fails, or the
  // server stops (`server_socket` closed).
  bool WaitForRequest(const std::atomic<socket_t>& server_socket,
                      time_t idle_timeout_sec) {
    if (HasUnreadBytes()) return true;  // A pipelined request.
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::seconds(idle_timeout_sec);
    while (server_socket != INVALID_SOCKET) {
      int ready = Poll(POLLIN, kStopCheckMillis);
      if (ready != 0) return ready > 0;
      if (std::chrono::steady_clock::now() > deadline) return false;
    }
    return false;
  }

  // Polls for the next request for up to `window`, yielding the CPU
  // between polls: true once bytes (or an error, which WaitForRequest then
  // reports) are there.
  bool PollAwake(absl::Duration window) const {
    return SpinWait(window, [this] { return Poll(POLLIN, 0) != 0; });
  }

  // Sends what write() holds. false when the connection failed (now or
  // before).
  bool Flush() {
    if (!write_failed_ && !pending_.empty()) {
      write_failed_ = !SendAll(pending_.data(), pending_.size(), nullptr, 0);
      pending_.clear();
    }
    return !write_failed_;
  }

  bool is_readable() const override {
    return read_begin_ < read_end_ || Poll(POLLIN, read_timeout_millis_) > 0;
  }

  // A failed write is the only sign of a client that went away that costs
  // nothing to check; the socket's send timeout bounds a slow one.
  bool is_writable() const override { return !write_failed_; }

  ssize_t read(char* ptr, size_t size) override {
    if (read_begin_ == read_end_) {
      // About to wait for the client: what it is owed goes first (an
      // "HTTP/1.1 100 Continue" before it sends the body).
      if (!Flush()) return -1;
      if (size >= read_buffer_.size()) return Recv(ptr, size);
      ssize_t received = Recv(read_buffer_.data(), read_buffer_.size());
      if (received <= 0) return received;
      read_begin_ = 0;
      read_end_ = static_cast<size_t>(received);
    }
    size_t n = std::min(size, read_end_ - read_begin_);
    std::memcpy(ptr, read_buffer_.data() + read_begin_, n);
    read_begin_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (write_failed_) return -1;
    if (pending_.size() + size <= kWriteBufferBytes) {
      pending_.append(ptr, size);
      return static_cast<ssize_t>(size);
    }
    write_failed_ = !SendAll(pending_.data(), pending_.size(), ptr, size);
    pending_.clear();
    return write_failed_ ? -1 : static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = remote_ip_;
    port = remote_port_;
  }

  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = local_ip_;
    port = local_port_;
  }

  socket_t socket() const override { return sock_; }

 private:
  // poll(2) on the socket, retried on EINTR.
  int Poll(short events, int timeout_millis) const {
    pollfd fd{sock_, events, 0};
    int ready;
    do {
      ready = ::poll(&fd, 1, timeout_millis);
    } while (ready < 0 && errno == EINTR);
    return ready;
  }

  // recv(2), retried on EINTR; -1 also after the read timeout.
  ssize_t Recv(char* ptr, size_t size) {
    ssize_t received;
    do {
      received = ::recv(sock_, ptr, size, 0);
    } while (received < 0 && errno == EINTR);
    return received;
  }

  // Sends `first` then `second` (either may be empty), in as few writes as
  // the socket takes. false on an error or after the write timeout.
  bool SendAll(const char* first, size_t first_size, const char* second,
               size_t second_size) {
    iovec parts[2] = {{const_cast<char*>(first), first_size},
                      {const_cast<char*>(second), second_size}};
    iovec* next = parts;
    int count = 2;
    while (count > 0) {
      if (next->iov_len == 0) {
        ++next;
        --count;
        continue;
      }
      msghdr message{};
      message.msg_iov = next;
      message.msg_iovlen = static_cast<size_t>(count);
      ssize_t sent = ::sendmsg(sock_, &message, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      size_t left = static_cast<size_t>(sent);
      while (count > 0 && left >= next->iov_len) {
        left -= next->iov_len;
        ++next;
        --count;
      }
      if (count > 0) {
        next->iov_base = static_cast<char*>(next->iov_base) + left;
        next->iov_len -= left;
      }
    }
    return true;
  }

  const socket_t sock_;
  const int read_timeout_millis_;
  std::vector<char> read_buffer_;
  size_t read_begin_ = 0;  // Unread bytes: [read_begin_, read_end_).
  size_t read_end_ = 0;
  std::string pending_;  // Written, not sent yet.
  bool write_failed_ = false;
  std::string remote_ip_;
  int remote_port_ = 0;
  std::string local_ip_;
  int local_port_ = 0;
};

// Waits for the connection's next request, awake first when `spin` says
// so and a slot is free; false as WaitForRequest. `answered`: when the
// last answer went out.
bool AwaitRequest(ConnectionStream& stream, NextRequestSpin& spin,
                  absl::Time answered, SpinSlots& slots,
                  const BufferedHttpServer::Options& options,
                  const std::atomic<socket_t>& server_socket,
                  time_t idle_timeout_sec) {
  bool ready = false;
  if (!stream.HasUnreadBytes() && spin.ShouldSpin() && slots.TryTake()) {
    ready = stream.PollAwake(spin.window());
    slots.Give();
    prometheus::Counter* count =
        ready ? options.spins_caught : options.spins_missed;
    if (count != nullptr) count->Increment();
  }
  if (!ready && !stream.WaitForRequest(server_socket, idle_timeout_sec)) {
    return false;
  }
  spin.RequestCame(absl::Now() - answered);
  return true;
}

}  // namespace

bool BufferedHttpServer::process_and_close_socket(socket_t sock) {
  bool served = false;
  {
    ConnectionStream stream(sock, read_timeout_sec_, read_timeout_usec_,
                            write_timeout_sec_, write_timeout_usec_);
    NextRequestSpin spin(options_.next_request_spin);
    absl::Time answered = absl::Now();  // Accepted, for the first request.
    for (size_t left = keep_alive_max_count_;
         left > 0 && AwaitRequest(stream, spin, answered, spin_slots_, options_,
                                  svr_sock_, keep_alive_timeout_sec_);
         --left) {
      bool connection_closed = false;
      served = process_request(stream, /*close_connection=*/left == 1,
                               connection_closed, nullptr);
      served = stream.Flush() && served;
      answered = absl::Now();
      if (!served || connection_closed) break;
    }
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return served;
}

}  // namespace dsar::gateway
