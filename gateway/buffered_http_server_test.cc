#include "gateway/buffered_http_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace dsar::gateway {
namespace {

// A BufferedHttpServer on a loopback port, answering GET /echo/<text> with
// <text>, GET /big with kBigBody, and POST /upload with the body's size.
class BufferedHttpServerTest : public ::testing::Test {
 protected:
  static constexpr size_t kBigBody = 300 * 1024;

  // The server's options; a fixture that tests one sets it.
  virtual BufferedHttpServer::Options ServerOptions() { return {}; }

  void SetUp() override {
    server_ = std::make_unique<BufferedHttpServer>(ServerOptions());
    BufferedHttpServer& server = *server_;
    server.Get("/echo/(.*)",
               [](const httplib::Request& request, httplib::Response& reply) {
                 reply.set_content(request.matches[1].str(), "text/plain");
               });
    server.Get("/big", [](const httplib::Request&, httplib::Response& reply) {
      reply.set_content(std::string(kBigBody, 'b'), "text/plain");
    });
    server.Post("/upload", [](const httplib::Request& request,
                              httplib::Response& reply) {
      reply.set_content(std::to_string(request.body.size()), "text/plain");
    });
    server.set_keep_alive_timeout(1);
    server.set_keep_alive_max_count(100);
    port_ = server.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }

  void TearDown() override {
    server_->stop();
    thread_.join();
  }

  // GET /echo/<text> on `sock`, then its answer read whole.
  void Echo(int sock, const std::string& text) {
    Send(sock,
         absl::StrCat("GET /echo/", text, " HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string received = ReadUntil(sock, absl::StrCat("\r\n\r\n", text));
    EXPECT_NE(received.find(absl::StrCat("\r\n\r\n", text)), std::string::npos)
        << received;
  }

  // A connected socket with a 5 s receive timeout.
  int Connect() {
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port_));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(
        connect(sock, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
        0);
    timeval timeout{5, 0};
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    return sock;
  }

  static void Send(int sock, const std::string& text) {
    ASSERT_EQ(send(sock, text.data(), text.size(), 0),
              static_cast<ssize_t>(text.size()));
  }

  // Reads until `text` has been received `times` times, the connection
  // closes, or 5 s pass without data; returns what was read.
  static std::string ReadUntil(int sock, const std::string& text,
                               int times = 1) {
    std::string received;
    char buffer[65536];
    auto count = [&] {
      int found = 0;
      for (size_t at = received.find(text); at != std::string::npos;
           at = received.find(text, at + 1)) {
        ++found;
      }
      return found;
    };
    while (count() < times) {
      ssize_t n = recv(sock, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      received.append(buffer, static_cast<size_t>(n));
    }
    return received;
  }

  std::unique_ptr<BufferedHttpServer> server_;
  int port_ = 0;
  std::thread thread_;
};

// Two requests sent in one write are both answered, in order: what was read
// ahead of the first is the second (httplib's own stream dropped it).
TEST_F(BufferedHttpServerTest, AnswersPipelinedRequests) {
  int sock = Connect();
  Send(sock,
       "GET /echo/first HTTP/1.1\r\nHost: x\r\n\r\n"
       "GET /echo/second HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string received = ReadUntil(sock, "\r\n\r\nsecond");
  size_t first = received.find("\r\n\r\nfirst");
  size_t second = received.find("\r\n\r\nsecond");
  EXPECT_NE(first, std::string::npos) << received;
  EXPECT_NE(second, std::string::npos) << received;
  EXPECT_LT(first, second);
  close(sock);
}

// Headers and body of a small response come together; a body larger than
// the write buffer arrives whole.
TEST_F(BufferedHttpServerTest, SendsWholeResponses) {
  int sock = Connect();
  Send(sock, "GET /echo/hello HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string received = ReadUntil(sock, "\r\n\r\nhello");
  EXPECT_NE(received.find("Content-Length: 5\r\n"), std::string::npos)
      << received;
  EXPECT_NE(received.find("Keep-Alive: timeout=1, max="), std::string::npos);

  Send(sock, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string big;
  std::string header_end = "\r\n\r\n";
  big = ReadUntil(sock, header_end);
  size_t body_start = big.find(header_end);
  ASSERT_NE(body_start, std::string::npos);
  body_start += header_end.size();
  char buffer[65536];
  while (big.size() - body_start < kBigBody) {
    ssize_t n = recv(sock, buffer, sizeof(buffer), 0);
    ASSERT_GT(n, 0);
    big.append(buffer, static_cast<size_t>(n));
  }
  EXPECT_EQ(big.substr(body_start), std::string(kBigBody, 'b'));
  close(sock);
}

// "Expect: 100-continue": the interim answer goes out before the server
// waits for the body (it is not held back in the write buffer).
TEST_F(BufferedHttpServerTest, SendsContinueBeforeReadingTheBody) {
  int sock = Connect();
  Send(sock,
       "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
       "Content-Type: text/plain\r\nExpect: 100-continue\r\n\r\n");
  std::string interim = ReadUntil(sock, "100 Continue");
  EXPECT_NE(interim.find("HTTP/1.1 100 Continue"), std::string::npos)
      << interim;
  Send(sock, "abcd");
  std::string received = ReadUntil(sock, "\r\n\r\n4");
  EXPECT_NE(received.find("HTTP/1.1 200 OK"), std::string::npos) << received;
  close(sock);
}

// An idle keep-alive connection is closed after the keep-alive timeout.
TEST_F(BufferedHttpServerTest, ClosesIdleConnections) {
  int sock = Connect();
  Send(sock, "GET /echo/x HTTP/1.1\r\nHost: x\r\n\r\n");
  ReadUntil(sock, "\r\n\r\nx");
  auto start = std::chrono::steady_clock::now();
  char byte;
  EXPECT_EQ(recv(sock, &byte, 1, 0), 0);  // Closed, not timed out (5 s).
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  close(sock);
}

// The same server waiting up to 1 ms awake for a connection's next request
// (next_request_spin.h), its waits counted.
class BufferedHttpServerSpinTest : public BufferedHttpServerTest {
 protected:
  BufferedHttpServer::Options ServerOptions() override {
    BufferedHttpServer::Options options;
    options.next_request_spin = absl::Milliseconds(1);
    options.spins_caught = &caught_;
    options.spins_missed = &missed_;
    return options;
  }

  prometheus::Counter caught_;
  prometheus::Counter missed_;
};

// A client that sends its requests one after another finds the thread
// awake: its requests come during the waits.
TEST_F(BufferedHttpServerSpinTest, WaitsAwakeForAClientsNextRequest) {
  int sock = Connect();
  for (int i = 0; i < 50; ++i) Echo(sock, absl::StrCat("quick", i));
  close(sock);
  EXPECT_GT(caught_.Value(), 0);
}

// A client that pauses between its requests costs one wait, not one per
// request: after a request that came late, the thread sleeps at once.
TEST_F(BufferedHttpServerSpinTest, AClientThatPausesIsAwaitedAsleep) {
  int sock = Connect();
  for (int i = 0; i < 5; ++i) {
    Echo(sock, absl::StrCat("slow", i));
    // The client's pause, far longer than the wait (not a synchronisation).
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // The connection is idle from here: the server closes it after the
  // keep-alive timeout, the waits awake notwithstanding.
  char byte;
  EXPECT_EQ(recv(sock, &byte, 1, 0), 0);
  close(sock);
  EXPECT_GE(missed_.Value(), 1);
  // The first request (sent at once after connecting) may be caught; each
  // pause after a late request is slept through.
  EXPECT_LE(caught_.Value() + missed_.Value(), 2);
}

}  // namespace
}  // namespace dsar::gateway
