// A request message dsard cannot parse is the caller's fault: truncated
// protobuf bytes or a string field that is not UTF-8 are answered
// INVALID_ARGUMENT naming the method, not INTERNAL with an empty message
// (common/grpc_malformed_request.h). Real dsard on loopback, raw bytes sent
// through a generic stub.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::testing {
namespace {

using ::testing::HasSubstr;

grpc::Status CallWithBytes(grpc::GenericStub& stub, const std::string& method,
                           const std::string& bytes) {
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::Status status;
  bool done = false;
  std::mutex mu;
  std::condition_variable cv;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status result) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = std::move(result);
                   done = true;
                   cv.notify_all();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return status;
}

TEST(MalformedRequestTest, UnparsableRequestsAreInvalidArgument) {
  TempDir dir("dsar-malformed");
  absl::StatusOr<std::string> inventory =
      GenerateSampleStores(dir.Join("stores"), 5);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  DsardOptions options;
  options.data_dir = dir.Join("data");
  options.inventory = *inventory;
  absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir.path());
  ASSERT_TRUE(dsard.ok()) << dsard.status();
  grpc::GenericStub stub(LoopbackChannel(dsard->port));
  const std::string method = "/dsar.v1.DsarService/GetRequest";

  // Field 1 (id), a string of two bytes that are not UTF-8.
  grpc::Status bad_utf8 = CallWithBytes(stub, method, "\x0a\x02\xff\xfe");
  EXPECT_EQ(bad_utf8.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << bad_utf8.error_message();
  EXPECT_THAT(bad_utf8.error_message(), HasSubstr(method));
  // Field 1 announcing 16 bytes, with one.
  grpc::Status truncated = CallWithBytes(stub, method, "\x0a\x10x");
  EXPECT_EQ(truncated.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << truncated.error_message();
  // A well-formed request still gets its real answer.
  grpc::Status unknown = CallWithBytes(stub, method,
                                       "\x0a\x08"
                                       "dsr_nope");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND)
      << unknown.error_message();
}

}  // namespace
}  // namespace dsar::testing
