// dsar-test-echo-server: serves dsar.test.EchoService (testdata/echo.proto)
// for the gateway's integration test.

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "gateway/testdata/echo.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on.");
ABSL_FLAG(std::string, port_file, "", "Where to write the bound port.");

namespace {

class EchoServiceImpl final : public dsar::test::EchoService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext* context,
                    const dsar::test::EchoRequest* request,
                    dsar::test::EchoResponse* response) override {
    return Answer(context, *request, response);
  }
  grpc::Status EchoBody(grpc::ServerContext* context,
                        const dsar::test::EchoRequest* request,
                        dsar::test::EchoResponse* response) override {
    return Answer(context, *request, response);
  }

 private:
  static grpc::Status Answer(grpc::ServerContext* context,
                             const dsar::test::EchoRequest& request,
                             dsar::test::EchoResponse* response) {
    if (request.message() == "invalid") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "inner.note: must not be empty");
    }
    if (request.message() == "missing") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such echo");
    }
    std::string message;
    for (int i = 0; i < std::max(1, request.repeat()); ++i) {
      absl::StrAppend(&message, request.message());
    }
    if (request.shout()) absl::AsciiStrToUpper(&message);
    response->set_message(message);
    *response->mutable_tags() = request.tags();
    response->set_note(request.inner().note());
    *response->mutable_at() = request.at();
    auto actor = context->client_metadata().find("x-dsar-actor");
    if (actor != context->client_metadata().end()) {
      response->set_actor(
          std::string(actor->second.data(), actor->second.size()));
    }
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  EchoServiceImpl service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen),
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "echo server: cannot listen\n");
    return 1;
  }
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    absl::Status status = dsar::WriteFileAtomically(
        absl::GetFlag(FLAGS_port_file), absl::StrCat(port, "\n"));
    if (!status.ok()) return 1;
  }
  server->Wait();
  return 0;
}
