// dsard: the coordinator. Keeps every request's state machine in RocksDB and
// serves the public API and the worker protocol over gRPC.

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "engine/coordinator.h"
#include "engine/grpc_services.h"

ABSL_FLAG(
    std::string, listen, "127.0.0.1:50051",
    "Address to serve gRPC on; port 0 picks a free port (see --port_file).");
ABSL_FLAG(std::string, data_dir, "./dsar-data",
          "Directory for the state database, "
          "uploaded exports and bundles.");
ABSL_FLAG(std::string, inventory, "", "Data inventory YAML (required).");
ABSL_FLAG(std::string, workflow, "",
          "Workflow definition JSON; empty: the built-in DSAR workflow.");
ABSL_FLAG(double, lease_seconds, 30,
          "How long a task lease lasts without a heartbeat.");
ABSL_FLAG(
    std::string, port_file, "",
    "If set, the bound port is written here once the server accepts calls.");

namespace {

std::unique_ptr<grpc::Server> g_server;

void HandleSignal(int) {
  // Shutdown from a signal handler is not async-signal-safe; a detached
  // thread does it instead, which is fine for a process that is ending.
  std::thread([] {
    if (g_server)
      g_server->Shutdown(std::chrono::system_clock::now() +
                         std::chrono::seconds(2));
  }).detach();
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "dsard: %s\n", status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "dsard --inventory=inventory.yaml [--data_dir=DIR] [--listen=HOST:PORT]");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_inventory).empty()) {
    return Fail(absl::InvalidArgumentError("--inventory: required"));
  }
  absl::StatusOr<dsar::Inventory> inventory =
      dsar::Inventory::LoadFile(absl::GetFlag(FLAGS_inventory));
  if (!inventory.ok()) return Fail(inventory.status());

  std::string workflow_json(dsar::WorkflowDefinition::DefaultJson());
  if (!absl::GetFlag(FLAGS_workflow).empty()) {
    absl::StatusOr<std::string> text =
        dsar::ReadFile(absl::GetFlag(FLAGS_workflow));
    if (!text.ok()) return Fail(text.status());
    workflow_json = *text;
  }
  auto definition = dsar::WorkflowDefinition::Parse(workflow_json);
  if (!definition.ok()) return Fail(definition.status());

  dsar::Coordinator::Options options;
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.definition = *definition;
  options.inventory =
      std::make_shared<const dsar::Inventory>(std::move(*inventory));
  options.lease_duration = absl::Seconds(absl::GetFlag(FLAGS_lease_seconds));
  auto coordinator = dsar::Coordinator::Create(options);
  if (!coordinator.ok()) return Fail(coordinator.status());

  dsar::DsarServiceImpl dsar_service(coordinator->get());
  dsar::WorkerServiceImpl worker_service(coordinator->get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen),
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&dsar_service);
  builder.RegisterService(&worker_service);
  builder.SetMaxReceiveMessageSize(16 << 20);
  g_server = builder.BuildAndStart();
  if (!g_server || port == 0) {
    return Fail(absl::UnavailableError(
        absl::StrCat("cannot listen on ", absl::GetFlag(FLAGS_listen))));
  }
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    absl::Status written = dsar::WriteFileAtomically(
        absl::GetFlag(FLAGS_port_file), absl::StrCat(port, "\n"));
    if (!written.ok()) return Fail(written);
  }
  std::fprintf(
      stderr,
      "dsard: serving on port %d, workflow %s, %zu stores, data in %s\n", port,
      (*definition)->version().c_str(), options.inventory->stores().size(),
      options.data_dir.c_str());
  signal(SIGTERM, HandleSignal);
  signal(SIGINT, HandleSignal);
  g_server->Wait();
  g_server.reset();
  coordinator->reset();
  std::fprintf(stderr, "dsard: stopped\n");
  return 0;
}
