// `dsarctl work list|complete|fail`: the work items of manual stores
// (docs/manual-stores.md), answered by the store's owner.

#include <cstdio>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "tools/dsarctl/commands.h"
#include "tools/dsarctl/output.h"

namespace dsarctl {
namespace {

using dsar::v1::DsarService;

// "<ID> <STORE>" from the command line (after the subcommand word, which
// is positional[0]), or a usage error (non-zero).
int RequestAndStore(const Options& options, const std::string& command,
                    std::string* id, std::string* store) {
  if (options.positional.size() != 3) {
    return Usage(absl::StrCat(command, ": takes a request id and a store"));
  }
  *id = options.positional[1];
  *store = options.positional[2];
  return kExitOk;
}

// Prints what answering the item left the request as.
int PrintAnswered(const Options& options, const std::string& store,
                  const dsar::v1::Request& request) {
  if (options.output != "table") {
    PrintMessage(options, request);
    return kExitOk;
  }
  std::printf("work item of %s answered; request %s is %s\n", store.c_str(),
              request.id().c_str(),
              dsar::v1::RequestStatus_Name(request.status()).c_str());
  return kExitOk;
}

}  // namespace

int RunWorkList(const Options& options) {
  if (options.positional.size() != 1)
    return Usage("work list: takes no arguments");
  auto stub = DsarService::NewStub(OpenChannel(options));
  grpc::ClientContext context;
  options.Prepare(&context);
  dsar::v1::ListWorkItemsRequest request;
  request.set_store(options.Flag("store"));
  request.set_owner(options.Flag("owner"));
  dsar::v1::ListWorkItemsResponse response;
  grpc::Status status = stub->ListWorkItems(&context, request, &response);
  if (!status.ok()) return ExitFor(status);
  if (options.output != "table") {
    PrintMessage(options, response);
    return kExitOk;
  }
  if (response.items().empty()) {
    std::fprintf(stderr, "no open work items\n");
    return kExitOk;
  }
  Table table({"REQUEST", "STORE", "DO", "OWNER", "DUE", "ALERT"});
  for (const dsar::v1::WorkItem& item : response.items()) {
    table.AddRow({item.request_id(), item.store(), item.operation(),
                  item.owner(), FormatTimestamp(item.due()),
                  item.alert().empty()
                      ? Table::Cell("")
                      : Table::Cell(item.alert(), Color::kRed)});
  }
  table.Print(options);
  return kExitOk;
}

int RunWorkComplete(const Options& options) {
  std::string id;
  std::string store;
  if (int usage = RequestAndStore(options, "work complete", &id, &store)) {
    return usage;
  }
  if (options.Flag("evidence").empty()) {
    return Usage("work complete: --evidence is required");
  }
  dsar::v1::CompleteWorkItemRequest request;
  request.set_request_id(id);
  request.set_store(store);
  request.set_evidence(options.Flag("evidence"));
  if (options.Has("records")) {
    int64_t count = 0;
    if (!absl::SimpleAtoi(options.Flag("records"), &count) || count < 0) {
      return Usage("work complete: --records takes a count (0 or more)");
    }
    request.set_record_count(count);
  }
  if (options.Has("export")) {
    absl::StatusOr<std::string> document =
        dsar::ReadFile(options.Flag("export"));
    if (!document.ok()) {
      std::fprintf(stderr, "dsarctl: --export: %s\n",
                   std::string(document.status().message()).c_str());
      return kExitUsage;
    }
    request.set_export_(*std::move(document));
  }
  auto stub = DsarService::NewStub(OpenChannel(options));
  grpc::ClientContext context;
  options.Prepare(&context);
  dsar::v1::Request response;
  grpc::Status status = stub->CompleteWorkItem(&context, request, &response);
  if (!status.ok()) return ExitFor(status);
  return PrintAnswered(options, store, response);
}

int RunWorkFail(const Options& options) {
  std::string id;
  std::string store;
  if (int usage = RequestAndStore(options, "work fail", &id, &store)) {
    return usage;
  }
  if (options.Flag("reason").empty()) {
    return Usage("work fail: --reason is required");
  }
  dsar::v1::FailWorkItemRequest request;
  request.set_request_id(id);
  request.set_store(store);
  request.set_reason(options.Flag("reason"));
  auto stub = DsarService::NewStub(OpenChannel(options));
  grpc::ClientContext context;
  options.Prepare(&context);
  dsar::v1::Request response;
  grpc::Status status = stub->FailWorkItem(&context, request, &response);
  if (!status.ok()) return ExitFor(status);
  return PrintAnswered(options, store, response);
}

}  // namespace dsarctl
