#include "common/admin_server.h"

#include <httplib.h>

#include <memory>

#include "common/grpc_server_metrics.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace dsar {
namespace {

using ::testing::HasSubstr;

TEST(AdminServerTest, ServesMetricsInTheTextFormat) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("dsar_test_things_total")
      .Help("Things.")
      .Register(*registry)
      .Add({{"kind", "a"}})
      .Increment(3);
  AdminServer::Options options;
  options.listen = "127.0.0.1:0";
  options.collectables = {registry};
  auto server = AdminServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);

  httplib::Client client("127.0.0.1", (*server)->port());
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->get_header_value("Content-Type"),
              HasSubstr("version=0.0.4"));
  EXPECT_THAT(response->body,
              HasSubstr("# TYPE dsar_test_things_total counter"));
  EXPECT_THAT(response->body,
              HasSubstr("dsar_test_things_total{kind=\"a\"} 3"));
}

TEST(AdminServerTest, HealthAndReadinessAnswerFromTheirChecks) {
  AdminServer::Options options;
  options.listen = "127.0.0.1:0";
  options.liveness = [] { return absl::OkStatus(); };
  options.readiness = [] {
    return absl::UnavailableError("not connected to dsard");
  };
  auto server = AdminServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());
  auto live = client.Get("/healthz");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  EXPECT_EQ(live->body, "ok\n");
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body, "not connected to dsard\n");
  auto other = client.Get("/other");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
}

TEST(AdminServerTest, RefusesBadAddressesAndTakenPorts) {
  AdminServer::Options options;
  options.listen = "127.0.0.1";
  EXPECT_EQ(AdminServer::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.listen = "127.0.0.1:0";
  auto first = AdminServer::Start(options);
  ASSERT_TRUE(first.ok());
  options.listen = "127.0.0.1:" + std::to_string((*first)->port());
  EXPECT_EQ(AdminServer::Start(options).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(AdminServerTest, StopsRightAfterStarting) {
  AdminServer::Options options;
  options.listen = "127.0.0.1:0";
  for (int i = 0; i < 20; ++i) {
    auto server = AdminServer::Start(options);
    ASSERT_TRUE(server.ok());
  }  // Each destructor returns: the listen loop is stopped even this early.
}

TEST(GrpcMethodLabelsTest, OnlyKnownMethodsGetTheirNames) {
  // Links the service's descriptor in, as a server registering it does.
  ASSERT_NE(v1::CreateRequestRequest::descriptor(), nullptr);
  std::string service, method;
  GrpcMethodLabels("/dsar.v1.DsarService/CreateRequest", &service, &method);
  EXPECT_EQ(service, "dsar.v1.DsarService");
  EXPECT_EQ(method, "CreateRequest");
  GrpcMethodLabels("/grpc.health.v1.Health/Check", &service, &method);
  EXPECT_EQ(method, "Check");
  for (const char* path :
       {"/dsar.v1.DsarService/alice@example.com", "/made.Up/Thing", "", "/",
        "/dsar.v1.DsarService/CreateRequest/x"}) {
    GrpcMethodLabels(path, &service, &method);
    EXPECT_EQ(service, "unknown") << path;
    EXPECT_EQ(method, "unknown") << path;
  }
}

}  // namespace
}  // namespace dsar
