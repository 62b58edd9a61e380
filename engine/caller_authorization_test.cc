#include "engine/caller_authorization.h"

#include "dsar/v1/requests.pb.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

Caller As(CallerRole role, const std::string& name) {
  Caller caller;
  caller.role = role;
  caller.name = name;
  return caller;
}

TEST(AuthorizeMethodTest, EachRoleItsServices) {
  const Caller worker = As(CallerRole::kWorker, "worker-1");
  const Caller gateway = As(CallerRole::kGateway, "gateway");
  const Caller operator_ = As(CallerRole::kOperator, "alice");
  const Caller service = As(CallerRole::kService, "billing");
  const char* poll = "/dsar.v1.WorkerService/PollTask";
  const char* create = "/dsar.v1.DsarService/CreateRequest";
  const char* workers = "/dsar.v1.AdminService/ListWorkers";
  const char* future = "/dsar.v1.KeyService/Rotate";

  EXPECT_TRUE(AuthorizeMethod(worker, poll, false).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(AuthorizeMethod(worker, create, false)));
  EXPECT_TRUE(
      absl::IsPermissionDenied(AuthorizeMethod(worker, workers, false)));

  EXPECT_TRUE(AuthorizeMethod(gateway, create, true).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(AuthorizeMethod(gateway, poll, false)));
  EXPECT_TRUE(
      absl::IsPermissionDenied(AuthorizeMethod(gateway, workers, false)));
  // Audit scans are asked for over REST too (the gateway checks dsar.admin).
  EXPECT_TRUE(
      AuthorizeMethod(gateway, "/dsar.v1.AdminService/RunAuditScan", true)
          .ok());
  EXPECT_TRUE(
      AuthorizeMethod(gateway, "/dsar.v1.AdminService/GetAuditReport", true)
          .ok());
  EXPECT_TRUE(absl::IsPermissionDenied(
      AuthorizeMethod(service, "/dsar.v1.AdminService/RunAuditScan", false)));

  EXPECT_TRUE(AuthorizeMethod(operator_, create, false).ok());
  EXPECT_TRUE(AuthorizeMethod(operator_, workers, false).ok());
  EXPECT_TRUE(AuthorizeMethod(operator_, future, false).ok());
  EXPECT_TRUE(
      absl::IsPermissionDenied(AuthorizeMethod(operator_, poll, false)));
  EXPECT_TRUE(
      absl::IsPermissionDenied(AuthorizeMethod(operator_, create, true)));

  EXPECT_TRUE(AuthorizeMethod(service, create, false).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(AuthorizeMethod(service, create, true)));
  // A service nobody listed is closed to all but operators.
  EXPECT_TRUE(
      absl::IsPermissionDenied(AuthorizeMethod(service, future, false)));

  EXPECT_TRUE(
      AuthorizeMethod(worker, "/grpc.health.v1.Health/Check", false).ok());
}

TEST(AuthorizeMethodTest, DeliveryMethodsByRole) {
  const char* create_url = "/dsar.v1.DsarService/CreateDownloadUrl";
  const char* download = "/dsar.v1.DsarService/DownloadBundle";
  const char* revoke = "/dsar.v1.DsarService/RevokeDownloadUrls";
  const Caller worker = As(CallerRole::kWorker, "worker-1");
  const Caller gateway = As(CallerRole::kGateway, "gateway");
  const Caller operator_ = As(CallerRole::kOperator, "alice");
  const Caller service = As(CallerRole::kService, "billing");
  for (const char* method : {create_url, download, revoke}) {
    EXPECT_TRUE(AuthorizeMethod(gateway, method, true).ok()) << method;
    EXPECT_TRUE(AuthorizeMethod(operator_, method, false).ok()) << method;
    EXPECT_TRUE(
        absl::IsPermissionDenied(AuthorizeMethod(worker, method, false)))
        << method;
  }
  EXPECT_TRUE(AuthorizeMethod(service, create_url, false).ok());
  EXPECT_TRUE(
      absl::IsPermissionDenied(AuthorizeMethod(service, download, false)));
  EXPECT_TRUE(
      absl::IsPermissionDenied(AuthorizeMethod(service, revoke, false)));
}

TEST(AuthorizeScopedFieldsTest, VerifiedNeedsGatewayOrOperator) {
  v1::CreateRequestRequest request;
  request.set_type(v1::ACCESS);
  const std::optional<Caller> service = As(CallerRole::kService, "billing");
  EXPECT_TRUE(AuthorizeScopedFields(service, request).ok());
  request.mutable_verified()->set_method("logged_in_session");
  EXPECT_TRUE(
      absl::IsPermissionDenied(AuthorizeScopedFields(service, request)));
  EXPECT_TRUE(
      AuthorizeScopedFields(As(CallerRole::kGateway, "gateway"), request).ok());
  EXPECT_TRUE(
      AuthorizeScopedFields(As(CallerRole::kOperator, "alice"), request).ok());
  EXPECT_TRUE(AuthorizeScopedFields(std::nullopt, request).ok());
}

TEST(AuthorizeStoresTest, OnlyTheCertificatesStores) {
  Caller worker = As(CallerRole::kWorker, "worker-2");
  worker.stores = {"accounts"};
  google::protobuf::RepeatedPtrField<std::string> stores;
  *stores.Add() = "accounts";
  EXPECT_TRUE(AuthorizeStores(worker, stores).ok());
  *stores.Add() = "orders";
  EXPECT_TRUE(absl::IsPermissionDenied(AuthorizeStores(worker, stores)));
  worker.any_store = true;
  EXPECT_TRUE(AuthorizeStores(worker, stores).ok());
}

}  // namespace
}  // namespace dsar
