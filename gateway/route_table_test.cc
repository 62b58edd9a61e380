#include "gateway/route_table.h"

#include "dsar/v1/admin.pb.h"
#include "dsar/v1/audit.pb.h"
#include "dsar/v1/requests.pb.h"
#include "dsar/v1/worker.pb.h"
#include "gateway/testdata/echo.pb.h"
#include "gtest/gtest.h"

namespace dsar::gateway {
namespace {

const google::protobuf::DescriptorPool& Pool() {
  (void)v1::CreateRequestRequest::descriptor();
  (void)v1::GetCheckpointRequest::descriptor();
  (void)v1::ListWorkersRequest::descriptor();
  (void)v1::PollTaskRequest::descriptor();
  (void)test::EchoRequest::descriptor();
  return *google::protobuf::DescriptorPool::generated_pool();
}

TEST(RouteTableTest, EveryPublicRpcGetsItsAnnotatedRouteAndScope) {
  absl::StatusOr<RouteTable> table = RouteTable::Build(
      {"dsar.v1.DsarService", "dsar.v1.AuditService", "dsar.v1.AdminService"},
      Pool());
  ASSERT_TRUE(table.ok()) << table.status();
  int methods = 0;
  for (const char* service : {"dsar.v1.DsarService", "dsar.v1.AuditService",
                              "dsar.v1.AdminService"}) {
    const google::protobuf::ServiceDescriptor* descriptor =
        Pool().FindServiceByName(service);
    for (int i = 0; i < descriptor->method_count(); ++i) {
      // Streams are served by route providers (DownloadBundle).
      if (!descriptor->method(i)->server_streaming()) ++methods;
    }
  }
  EXPECT_EQ(table->Find("GET", "/v1/downloads/r-1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(table->routes().size(), static_cast<size_t>(methods));

  absl::StatusOr<RouteMatch> get = table->Find("GET", "/v1/requests/r-1");
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->route->grpc_path, "/dsar.v1.DsarService/GetRequest");
  EXPECT_EQ(get->route->required_scope, "dsar.read");
  EXPECT_EQ(get->bindings[0].value, "r-1");

  absl::StatusOr<RouteMatch> cancel =
      table->Find("POST", "/v1/requests/r-1:cancel");
  ASSERT_TRUE(cancel.ok()) << cancel.status();
  EXPECT_EQ(cancel->route->grpc_path, "/dsar.v1.DsarService/CancelRequest");
  EXPECT_EQ(cancel->route->required_scope, "dsar.admin");
  EXPECT_EQ(cancel->route->body, "*");

  absl::StatusOr<RouteMatch> create = table->Find("POST", "/v1/requests");
  ASSERT_TRUE(create.ok());
  EXPECT_EQ(create->route->required_scope, "dsar.submit");

  absl::StatusOr<RouteMatch> workers = table->Find("GET", "/v1/workers");
  ASSERT_TRUE(workers.ok());
  EXPECT_EQ(workers->route->required_scope, "dsar.admin");
}

TEST(RouteTableTest, UnknownPathIsNotFoundWrongMethodIsUnimplemented) {
  absl::StatusOr<RouteTable> table =
      RouteTable::Build({"dsar.v1.DsarService"}, Pool());
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->Find("GET", "/v2/requests").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(table->Find("DELETE", "/v1/requests/r-1").status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(RouteTableTest, AdditionalBindingsAndTestServices) {
  absl::StatusOr<RouteTable> table =
      RouteTable::Build({"dsar.test.EchoService"}, Pool());
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->routes().size(), 3u);
  absl::StatusOr<RouteMatch> note = table->Find("POST", "/v1/echo/hi:note");
  ASSERT_TRUE(note.ok());
  EXPECT_EQ(note->route->body, "inner");
  EXPECT_EQ(note->route->grpc_path, "/dsar.test.EchoService/EchoBody");
}

TEST(RouteTableTest, RefusesUnknownServicesAndUnannotatedMethods) {
  EXPECT_EQ(RouteTable::Build({"dsar.v1.Nope"}, Pool()).status().code(),
            absl::StatusCode::kNotFound);
  // WorkerService is internal: no routes, no scopes.
  EXPECT_EQ(
      RouteTable::Build({"dsar.v1.WorkerService"}, Pool()).status().code(),
      absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dsar::gateway
