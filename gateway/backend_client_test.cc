#include "gateway/backend_client.h"

#include <grpcpp/grpcpp.h>

#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gateway/testdata/echo.grpc.pb.h"
#include "gtest/gtest.h"

namespace dsar::gateway {
namespace {

constexpr char kEchoMethod[] = "/dsar.test.EchoService/Echo";

// Echoes the message; the message "held" is answered only once Release()
// was called.
class HoldingEchoService final : public dsar::test::EchoService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext*,
                    const dsar::test::EchoRequest* request,
                    dsar::test::EchoResponse* response) override {
    if (request->message() == "held") released_.wait();
    response->set_message(request->message());
    return grpc::Status::OK;
  }
  void Release() {
    std::call_once(released_once_, [this] { release_.set_value(); });
  }

 private:
  std::once_flag released_once_;
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
};

class BackendClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    service_.Release();  // For a test that failed before it did.
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(1));
  }

  BackendClient ClientSpinning(absl::Duration spin) {
    return BackendClient(absl::StrCat("127.0.0.1:", port_), absl::Seconds(30),
                         nullptr, nullptr, spin);
  }

  // The message of Echo(`message`) through `client`, or the error.
  static std::string Echo(const BackendClient& client,
                          const std::string& message) {
    dsar::test::EchoRequest request;
    request.set_message(message);
    absl::StatusOr<std::string> answer =
        client.Call(kEchoMethod, request.SerializeAsString(), "");
    if (!answer.ok()) return answer.status().ToString();
    dsar::test::EchoResponse response;
    if (!response.ParseFromString(*answer)) return "unparsable answer";
    return response.message();
  }

  HoldingEchoService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(BackendClientTest, AnswerWithinTheSpinIsTaken) {
  // Far longer than any answer takes: the call never sleeps.
  BackendClient client = ClientSpinning(absl::Seconds(30));
  EXPECT_EQ(Echo(client, "hello"), "hello");
  EXPECT_EQ(Echo(client, "again"), "again");
}

TEST_F(BackendClientTest, AnswerAfterTheSpinIsWaitedFor) {
  BackendClient client = ClientSpinning(absl::Microseconds(1));
  std::future<std::string> held =
      std::async(std::launch::async, [&] { return Echo(client, "held"); });
  // The answer comes after the spin, whenever this thread gets here.
  service_.Release();
  EXPECT_EQ(held.get(), "held");
}

TEST_F(BackendClientTest, ConcurrentCallsEachGetTheirAnswer) {
  // Calls made while another is in flight sleep at once; each gets its own
  // answer, and the held one its own once released.
  BackendClient client = ClientSpinning(absl::Seconds(30));
  std::future<std::string> held =
      std::async(std::launch::async, [&] { return Echo(client, "held"); });
  std::vector<std::future<std::string>> others;
  for (int i = 0; i < 8; ++i) {
    others.push_back(std::async(std::launch::async, [&client, i] {
      return Echo(client, absl::StrCat("call-", i));
    }));
  }
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(others[i].get(), absl::StrCat("call-", i));
  service_.Release();
  EXPECT_EQ(held.get(), "held");
}

}  // namespace
}  // namespace dsar::gateway
