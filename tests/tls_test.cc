// dsard under mutual TLS: certificates from tools/dev-pki, and who may call
// what (engine/caller_authorization.h). A plaintext dsard on a non-loopback
// address needs an explicit flag.

#include <grpcpp/grpcpp.h>
#include <httplib.h>  // CPPHTTPLIB_* come from its pkg-config file.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_tls.h"
#include "dsar/v1/admin.grpc.pb.h"
#include "dsar/v1/worker.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::testing {
namespace {

using ::testing::HasSubstr;

// A clean call context with a deadline.
std::unique_ptr<grpc::ClientContext> Context(
    absl::Duration timeout = absl::Seconds(10)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

class TlsTest : public ::testing::Test {
 protected:
  // One PKI and one set of sample stores for every test.
  static void SetUpTestSuite() {
    shared_ = new TempDir("dsar-tls");
    pki_ = shared_->Join("pki");
    absl::StatusOr<int> made =
        RunToExit("/bin/bash",
                  {DSAR_TEST_DEV_PKI_PATH, pki_, "--worker", "worker-1=*",
                   "--worker", "worker-2=accounts", "--gateway", "gateway",
                   "--operator", "operator", "--service", "billing"},
                  shared_->Join("dev-pki.log"), absl::Seconds(60));
    ASSERT_TRUE(made.ok() && *made == 0)
        << ReadFileOrEmpty(shared_->Join("dev-pki.log"));
    absl::StatusOr<std::string> inventory =
        GenerateSampleStores(shared_->Join("stores"), 20);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = *inventory;
  }
  static void TearDownTestSuite() {
    delete shared_;
    shared_ = nullptr;
  }

  void SetUp() override {
    dir_ = std::make_unique<TempDir>("dsar-tls-case");
    DsardOptions options;
    options.data_dir = dir_->Join("data");
    options.inventory = inventory_;
    options.extra_args = {"--tls_cert=" + Pem("dsard"),
                          "--tls_key=" + Key("dsard"),
                          "--tls_client_ca=" + Pem("ca")};
    options.client_credentials = Credentials("operator");
    absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir_->path());
    ASSERT_TRUE(dsard.ok()) << dsard.status() << "\n"
                            << ReadFileOrEmpty(dir_->Join("dsard.log"));
    dsard_ = std::move(*dsard);
  }

  static std::string Pem(const std::string& name) {
    return absl::StrCat(pki_, "/", name, ".pem");
  }
  static std::string Key(const std::string& name) {
    return absl::StrCat(pki_, "/", name, ".key");
  }
  // Mutual-TLS credentials of the client certificate `name`.
  static std::shared_ptr<grpc::ChannelCredentials> Credentials(
      const std::string& name) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        ChannelCredentialsFor({Pem("ca"), Pem(name), Key(name)}, "tls_");
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return credentials.ok() ? *credentials : nullptr;
  }
  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& name) const {
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", dsard_.port),
                               Credentials(name));
  }
  // The --tls_* flags of a worker process with certificate `name`.
  static std::vector<std::string> WorkerTlsFlags(const std::string& name) {
    return {"--tls_ca=" + Pem("ca"), "--tls_cert=" + Pem(name),
            "--tls_key=" + Key(name)};
  }

  // Creates a request through `stub`; fails the test on error.
  static v1::Request Create(v1::DsarService::Stub& stub,
                            const v1::CreateRequestRequest& request) {
    auto context = Context();
    v1::Request created;
    grpc::Status status = stub.CreateRequest(context.get(), request, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return created;
  }

  static TempDir* shared_;
  static std::string pki_;
  static std::string inventory_;
  std::unique_ptr<TempDir> dir_;
  RunningDsard dsard_;
};

TempDir* TlsTest::shared_ = nullptr;
std::string TlsTest::pki_;
std::string TlsTest::inventory_;

TEST_F(TlsTest, PlaintextClientIsRefused) {
  auto stub = v1::DsarService::NewStub(LoopbackChannel(dsard_.port));
  auto context = Context(absl::Seconds(5));
  v1::ListRequestsRequest request;
  v1::ListRequestsResponse response;
  grpc::Status status = stub->ListRequests(context.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

TEST_F(TlsTest, WorkerCertificateMayCallOnlyTheWorkerService) {
  std::shared_ptr<grpc::Channel> channel = ChannelAs("worker-1");
  auto dsar = v1::DsarService::NewStub(channel);
  auto admin = v1::AdminService::NewStub(channel);

  auto list_context = Context();
  v1::ListRequestsResponse list;
  grpc::Status listed =
      dsar->ListRequests(list_context.get(), v1::ListRequestsRequest(), &list);
  EXPECT_EQ(listed.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << listed.error_message();
  EXPECT_THAT(listed.error_message(), HasSubstr("worker:worker-1"));

  auto create_context = Context();
  v1::Request created;
  grpc::Status create = dsar->CreateRequest(
      create_context.get(),
      RequestForEmail(v1::ERASURE, "person3@example.com", "tls-worker-create"),
      &created);
  EXPECT_EQ(create.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  auto workers_context = Context();
  v1::ListWorkersResponse workers;
  grpc::Status admin_status = admin->ListWorkers(
      workers_context.get(), v1::ListWorkersRequest(), &workers);
  EXPECT_EQ(admin_status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The operator may do both, and may not poll tasks.
  auto operator_admin = v1::AdminService::NewStub(ChannelAs("operator"));
  auto operator_context = Context();
  EXPECT_TRUE(operator_admin
                  ->ListWorkers(operator_context.get(),
                                v1::ListWorkersRequest(), &workers)
                  .ok());
  auto operator_worker = v1::WorkerService::NewStub(ChannelAs("operator"));
  auto poll_context = Context();
  v1::PollTaskRequest poll;
  poll.add_stores("accounts");
  poll.set_wait_ms(10);
  v1::PollTaskResponse polled;
  EXPECT_EQ(
      operator_worker->PollTask(poll_context.get(), poll, &polled).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(TlsTest, WorkerIsItsCertificate) {
  auto worker = v1::WorkerService::NewStub(ChannelAs("worker-2"));
  v1::PollTaskResponse polled;

  // Only the stores its certificate names.
  v1::PollTaskRequest orders;
  orders.add_stores("orders");
  orders.set_wait_ms(10);
  auto orders_context = Context();
  grpc::Status denied = worker->PollTask(orders_context.get(), orders, &polled);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(), HasSubstr("orders"));

  // Under its own name only.
  v1::PollTaskRequest impostor;
  impostor.set_worker_id("worker-1");
  impostor.add_stores("accounts");
  impostor.set_wait_ms(10);
  auto impostor_context = Context();
  EXPECT_EQ(
      worker->PollTask(impostor_context.get(), impostor, &polled).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);

  v1::PollTaskRequest accounts;
  accounts.add_stores("accounts");
  accounts.set_wait_ms(10);
  auto accounts_context = Context();
  grpc::Status allowed =
      worker->PollTask(accounts_context.get(), accounts, &polled);
  EXPECT_TRUE(allowed.ok()) << allowed.error_message();
}

TEST_F(TlsTest, WorkerCannotCompleteAnotherWorkersLease) {
  auto dsar = v1::DsarService::NewStub(ChannelAs("operator"));
  v1::Request created = Create(
      *dsar,
      RequestForEmail(v1::ERASURE, "person5@example.com", "tls-lease-5"));
  ASSERT_FALSE(created.id().empty());

  // worker-1 leases a task without naming itself: dsard knows it by its CN.
  auto worker1 = v1::WorkerService::NewStub(ChannelAs("worker-1"));
  v1::PollTaskRequest poll;
  for (const char* store : {"accounts", "orders", "marketing", "activity"}) {
    poll.add_stores(store);
  }
  poll.set_wait_ms(5000);
  v1::PollTaskResponse polled;
  auto poll_context = Context();
  grpc::Status poll_status =
      worker1->PollTask(poll_context.get(), poll, &polled);
  ASSERT_TRUE(poll_status.ok()) << poll_status.error_message();
  ASSERT_TRUE(polled.has_task());
  const v1::Task& task = polled.task();

  auto worker2 = v1::WorkerService::NewStub(ChannelAs("worker-2"));
  v1::CompleteTaskResponse completed;
  // As itself: the lease is not its own.
  v1::CompleteTaskRequest complete;
  complete.set_task_id(task.task_id());
  complete.set_attempt(task.attempt());
  auto own_context = Context();
  grpc::Status own =
      worker2->CompleteTask(own_context.get(), complete, &completed);
  EXPECT_EQ(own.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << own.error_message();
  EXPECT_THAT(own.error_message(), HasSubstr("\"worker-2\""));
  // Naming the holder: its certificate says otherwise.
  complete.set_worker_id("worker-1");
  auto forged_context = Context();
  EXPECT_EQ(worker2->CompleteTask(forged_context.get(), complete, &completed)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // The holder still holds it.
  v1::HeartbeatRequest heartbeat;
  heartbeat.set_task_id(task.task_id());
  heartbeat.set_attempt(task.attempt());
  v1::HeartbeatResponse beat;
  auto beat_context = Context();
  grpc::Status held = worker1->Heartbeat(beat_context.get(), heartbeat, &beat);
  EXPECT_TRUE(held.ok()) << held.error_message();
  auto get_context = Context();
  v1::GetRequestRequest get;
  get.set_id(created.id());
  v1::Request request;
  ASSERT_TRUE(dsar->GetRequest(get_context.get(), get, &request).ok());
  for (const v1::StoreStep& step : request.steps()) {
    EXPECT_NE(step.status(), v1::SUCCEEDED) << step.ShortDebugString();
  }
}

TEST_F(TlsTest, ErasureWithTlsWorkerCompletesAndOperatorSeesIt) {
  WorkerOptions worker;
  worker.coordinator_port = dsard_.port;
  worker.inventory = inventory_;
  worker.worker_id = "worker-1";
  worker.extra_args = WorkerTlsFlags("worker-1");
  absl::StatusOr<std::unique_ptr<Process>> process =
      StartWorker(worker, dir_->path());
  ASSERT_TRUE(process.ok()) << process.status();

  // Through the gateway's certificate, on behalf of its caller.
  auto gateway = v1::DsarService::NewStub(ChannelAs("gateway"));
  auto context = Context();
  context->AddMetadata("x-dsar-actor", "subject-9");
  v1::Request created;
  grpc::Status status = gateway->CreateRequest(
      context.get(),
      RequestForEmail(v1::ERASURE, "person9@example.com", "tls-erasure-9"),
      &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  absl::StatusOr<v1::Request> done =
      WaitUntilTerminal(*gateway, created.id(), absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status() << "\n"
                         << ReadFileOrEmpty(dir_->Join("worker-1.log"));
  EXPECT_EQ(done->status(), v1::COMPLETED) << done->ShortDebugString();
  for (const v1::StoreStep& step : done->steps()) {
    EXPECT_EQ(step.worker_id(), "worker-1") << step.ShortDebugString();
  }

  // dsarctl --tls with the operator's certificate lists the worker.
  absl::StatusOr<int> code =
      RunToExit(DsarctlPath(),
                {absl::StrCat("--addr=127.0.0.1:", dsard_.port), "--tls",
                 "--ca_cert=" + Pem("ca"), "--client_cert=" + Pem("operator"),
                 "--client_key=" + Key("operator"), "workers"},
                dir_->Join("dsarctl.log"), absl::Seconds(30));
  std::string output = ReadFileOrEmpty(dir_->Join("dsarctl.log"));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << output;
  EXPECT_THAT(output, HasSubstr("worker-1"));
}

TEST_F(TlsTest, OnlyTheGatewaySetsTheActorAndScopedFields) {
  // An operator naming another actor is refused; without it, the operator's
  // certificate is the actor.
  auto operator_dsar = v1::DsarService::NewStub(ChannelAs("operator"));
  v1::Request created;
  auto forged = Context();
  forged->AddMetadata("x-dsar-actor", "someone-else");
  grpc::Status refused = operator_dsar->CreateRequest(
      forged.get(),
      RequestForEmail(v1::ACCESS, "person11@example.com", "tls-actor-11"),
      &created);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("x-dsar-actor"));

  created = Create(
      *operator_dsar,
      RequestForEmail(v1::ACCESS, "person11@example.com", "tls-actor-11"));
  absl::StatusOr<std::vector<v1::Event>> events =
      ListAllEvents(*operator_dsar, created.id());
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_FALSE(events->empty());
  EXPECT_EQ(events->front().actor(), "operator:operator");

  // An internal service may create requests, but neither name an actor nor
  // attest verification (a field scoped to dsar.admin).
  auto service = v1::DsarService::NewStub(ChannelAs("billing"));
  auto service_actor = Context();
  service_actor->AddMetadata("x-dsar-actor", "someone-else");
  EXPECT_EQ(
      service
          ->CreateRequest(service_actor.get(),
                          RequestForEmail(v1::ACCESS, "person12@example.com",
                                          "tls-actor-12"),
                          &created)
          .error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  v1::CreateRequestRequest attested =
      RequestForEmail(v1::ACCESS, "person12@example.com", "tls-verified-12");
  attested.mutable_verified()->set_method("logged_in_session");
  auto service_verified = Context();
  grpc::Status scoped =
      service->CreateRequest(service_verified.get(), attested, &created);
  EXPECT_EQ(scoped.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(scoped.error_message(), HasSubstr("verified"));

  // The gateway may do both.
  auto gateway = v1::DsarService::NewStub(ChannelAs("gateway"));
  auto gateway_context = Context();
  gateway_context->AddMetadata("x-dsar-actor", "subject-12");
  grpc::Status allowed =
      gateway->CreateRequest(gateway_context.get(), attested, &created);
  ASSERT_TRUE(allowed.ok()) << allowed.error_message();
  events = ListAllEvents(*gateway, created.id());
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_FALSE(events->empty());
  EXPECT_EQ(events->front().actor(), "subject-12");
}

TEST_F(TlsTest, GatewayReachesDsardWithItsCertificate) {
  std::vector<std::string> args = {
      "--insecure_dev",
      "--listen=127.0.0.1:0",
      "--port_file=" + dir_->Join("gateway.port"),
      absl::StrCat("--coordinator=127.0.0.1:", dsard_.port),
      "--coordinator_tls_ca=" + Pem("ca"),
      "--coordinator_tls_cert=" + Pem("gateway"),
      "--coordinator_tls_key=" + Key("gateway")};
  absl::StatusOr<std::unique_ptr<Process>> gateway =
      Process::Start(DSAR_TEST_GATEWAY_PATH, args, dir_->Join("gateway.log"));
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  absl::StatusOr<int> port = WaitForPortFile(dir_->Join("gateway.port"),
                                             absl::Seconds(30), gateway->get());
  ASSERT_TRUE(port.ok()) << port.status() << "\n"
                         << ReadFileOrEmpty(dir_->Join("gateway.log"));

  httplib::Client http("127.0.0.1", *port);
  http.set_read_timeout(10, 0);
  httplib::Result created = http.Post(
      "/v1/requests",
      R"({"type":"ACCESS","identities":[{"type":"EMAIL",)"
      R"("value":"person13@example.com"}],"idempotencyKey":"tls-gw-13"})",
      "application/json");
  ASSERT_TRUE(created) << httplib::to_string(created.error());
  EXPECT_EQ(created->status, 200) << created->body;

  // dsard recorded the gateway's caller, which only the gateway may name.
  auto dsar = v1::DsarService::NewStub(ChannelAs("operator"));
  absl::StatusOr<std::vector<v1::Request>> requests = ListAllRequests(*dsar);
  ASSERT_TRUE(requests.ok()) << requests.status();
  ASSERT_EQ(requests->size(), 1u);
  absl::StatusOr<std::vector<v1::Event>> events =
      ListAllEvents(*dsar, requests->front().id());
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_FALSE(events->empty());
  EXPECT_EQ(events->front().actor(), "insecure-dev");
}

// Not a TlsTest: the refusal happens before any certificate is read.
TEST(PlaintextListenerTest, NonLoopbackNeedsExplicitFlag) {
  TempDir dir("dsar-plaintext-listen");
  absl::StatusOr<std::string> inventory =
      GenerateSampleStores(dir.Join("stores"), 2);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  const std::vector<std::string> args = {"--listen=0.0.0.0:0",
                                         "--data_dir=" + dir.Join("data"),
                                         "--inventory=" + *inventory};
  absl::StatusOr<int> code =
      RunToExit(DsardPath(), args, dir.Join("refused.log"), absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_THAT(ReadFileOrEmpty(dir.Join("refused.log")),
              HasSubstr("--allow_plaintext_non_loopback"));

  DsardOptions options;
  options.data_dir = dir.Join("data");
  options.inventory = *inventory;
  options.extra_args = {"--listen=0.0.0.0:0", "--allow_plaintext_non_loopback"};
  absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir.path());
  ASSERT_TRUE(dsard.ok()) << dsard.status() << "\n"
                          << ReadFileOrEmpty(dir.Join("dsard.log"));
}

}  // namespace
}  // namespace dsar::testing
