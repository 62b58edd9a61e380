// The seed designs' routes (gateway/compat/seed_routes.h) as dsar-gateway
// serves them: the request meets the gateway's bounds first
// (CheckRequestBounds, as GatewayServer::Handle does), then SeedRoutes finds
// the route and serves it, calling a coordinator. The coordinator is an
// in-process gRPC server on loopback whose answers the input chooses: the
// request as asked for (with the identity the input names), or an error of
// any code, so the routes' handling of every backend answer is fuzzed too.
//
// Input: one control byte, then "<METHOD> <path>\n<body>".
//   bit 0: the caller is a data subject (an `email` and `user_id` claim and
//          dsar.read/dsar.submit) instead of a service with every scope;
//   bits 1-5: the google.rpc code every backend call answers (0: success);
//   bits 6-7: the request type the backend reports (ACCESS, ERASURE,
//          PORTABILITY, RECTIFICATION).
//
// Properties: no crash; never a 500 unless the backend answered INTERNAL,
// UNKNOWN or DATA_LOSS; every JSON reply parses; a 302 has a Location.

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "fuzz/fuzz_check.h"
#include "gateway/backend_client.h"
#include "gateway/compat/seed_routes.h"
#include "gateway/request_bounds.h"
#include "nlohmann/json.hpp"

namespace {

using dsar::v1::DsarService;

// What the fake coordinator answers; set per input (one thread runs the
// fuzzer, the gRPC server thread reads them while a call is in flight).
std::atomic<int> backend_code{0};
std::atomic<int> backend_type{dsar::v1::ACCESS};

class FakeCoordinator final : public DsarService::Service {
 public:
  grpc::Status CreateRequest(grpc::ServerContext*,
                             const dsar::v1::CreateRequestRequest* request,
                             dsar::v1::Request* created) override {
    if (grpc::Status error = Answer(); !error.ok()) return error;
    created->set_id("dsr_fuzz");
    created->set_type(request->type());
    *created->mutable_identities() = request->identities();
    created->set_status(dsar::v1::RECEIVED);
    created->mutable_deadline()->set_seconds(1893456000);
    return grpc::Status::OK;
  }
  grpc::Status GetRequest(grpc::ServerContext*,
                          const dsar::v1::GetRequestRequest* request,
                          dsar::v1::Request* found) override {
    if (grpc::Status error = Answer(); !error.ok()) return error;
    found->set_id(request->id());
    found->set_type(static_cast<dsar::v1::RequestType>(backend_type.load()));
    dsar::v1::SubjectIdentity* identity = found->add_identities();
    identity->set_type(dsar::v1::USER_ID);
    identity->set_value("7");
    found->set_status(dsar::v1::COMPLETED);
    found->mutable_bundle()->set_sha256(std::string(64, 'a'));
    found->mutable_created_at()->set_seconds(1700000000);
    found->mutable_completed_at()->set_seconds(1700000100);
    return grpc::Status::OK;
  }
  grpc::Status ListEvents(grpc::ServerContext*,
                          const dsar::v1::ListEventsRequest* request,
                          dsar::v1::ListEventsResponse* events) override {
    if (grpc::Status error = Answer(); !error.ok()) return error;
    dsar::v1::Event* event = events->add_events();
    event->set_sequence(1);
    event->set_request_id(request->request_id());
    event->set_kind("received");
    return grpc::Status::OK;
  }
  grpc::Status CreateDownloadUrl(
      grpc::ServerContext*, const dsar::v1::CreateDownloadUrlRequest* request,
      dsar::v1::CreateDownloadUrlResponse* url) override {
    if (grpc::Status error = Answer(); !error.ok()) return error;
    url->set_url(absl::StrCat("/v1/downloads/", request->id(),
                              "?expires=1&generation=0&nonce=n&sig=s"));
    return grpc::Status::OK;
  }

 private:
  static grpc::Status Answer() {
    int code = backend_code.load();
    if (code == 0) return grpc::Status::OK;
    return grpc::Status(static_cast<grpc::StatusCode>(code),
                        "fuzzed backend error");
  }
};

struct Fixture {
  FakeCoordinator service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<dsar::gateway::compat::SeedRoutes> routes;
};

Fixture& TheFixture() {
  static Fixture* fixture = [] {
    auto* f = new Fixture;
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&f->service);
    f->server = builder.BuildAndStart();
    FUZZ_CHECK(f->server != nullptr && port > 0, "fake coordinator");
    auto backend = std::make_shared<const dsar::gateway::BackendClient>(
        absl::StrCat("127.0.0.1:", port), absl::Seconds(5));
    f->routes = std::make_unique<dsar::gateway::compat::SeedRoutes>(backend);
    return f;
  }();
  return *fixture;
}

dsar::gateway::Caller MakeCaller(bool subject) {
  dsar::gateway::Caller caller;
  if (subject) {
    caller.subject = "subject-7";
    caller.scopes = {"dsar.read", "dsar.submit"};
    caller.claims = {{"email", "person7@example.com"},
                     {"email_verified", true},
                     {"user_id", "7"}};
  } else {
    caller.subject = "service";
    caller.scopes = {"dsar.read", "dsar.submit", "dsar.admin", "dsar.service",
                     "dsar.pii.read"};
    caller.claims = nlohmann::json::object();
  }
  return caller;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Fixture& fixture = TheFixture();
  const uint8_t control = data[0];
  const int code = (control >> 1) & 0x1f;
  backend_code = code <= 16 ? code : 0;
  static constexpr dsar::v1::RequestType kTypes[] = {
      dsar::v1::ACCESS, dsar::v1::ERASURE, dsar::v1::PORTABILITY,
      dsar::v1::RECTIFICATION};
  backend_type = kTypes[control >> 6];

  std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t newline = input.find('\n');
  std::string line = input.substr(0, newline);
  std::string body =
      newline == std::string::npos ? "" : input.substr(newline + 1);
  size_t space = line.find(' ');
  if (space == std::string::npos) return 0;
  dsar::gateway::HttpRequest request;
  request.method = line.substr(0, space);
  request.path = line.substr(space + 1);
  request.body = body;

  if (!dsar::CheckRequestBounds(request.path, request.query, request.body)
           .ok()) {
    return 0;  // The gateway answers 400 before any route sees it.
  }
  std::optional<dsar::gateway::RouteProvider::Match> match =
      fixture.routes->Find(request.method, request.path);
  if (!match) return 0;
  dsar::gateway::HttpReply reply =
      fixture.routes->Serve(*match, request, MakeCaller(control & 1));

  const bool backend_broke = backend_code == grpc::StatusCode::INTERNAL ||
                             backend_code == grpc::StatusCode::UNKNOWN ||
                             backend_code == grpc::StatusCode::DATA_LOSS;
  FUZZ_CHECK(reply.status != 500 || backend_broke,
             absl::StrCat(request.method, " ", request.path, ": ", reply.body));
  FUZZ_CHECK(reply.status >= 200 && reply.status < 600,
             absl::StrCat("status ", reply.status));
  if (reply.content_type == "application/json" && !reply.streamed_body) {
    FUZZ_CHECK(
        !nlohmann::json::parse(reply.body, nullptr, false).is_discarded(),
        reply.body);
  }
  if (reply.status == 302) {
    bool located = false;
    for (const auto& [name, value] : reply.headers) {
      located = located || name == "Location";
    }
    FUZZ_CHECK(located, "302 without Location");
  }
  return 0;
}
