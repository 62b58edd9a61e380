#include "gateway/buffered_http_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
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

  void SetUp() override {
    server_.Get("/echo/(.*)",
                [](const httplib::Request& request, httplib::Response& reply) {
                  reply.set_content(request.matches[1].str(), "text/plain");
                });
    server_.Get("/big", [](const httplib::Request&, httplib::Response& reply) {
      reply.set_content(std::string(kBigBody, 'b'), "text/plain");
    });
    server_.Post("/upload", [](const httplib::Request& request,
                               httplib::Response& reply) {
      reply.set_content(std::to_string(request.body.size()), "text/plain");
    });
    server_.set_keep_alive_timeout(1);
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }

  void TearDown() override {
    server_.stop();
    thread_.join();
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

  BufferedHttpServer server_;
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

}  // namespace
}  // namespace dsar::gateway
