// `dsarctl purge` and `dsarctl keys rotate`: the retention purge and the
// key-encryption key rotation (docs/retention.md).

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "dsar/v1/admin.grpc.pb.h"
#include "tools/dsarctl/commands.h"
#include "tools/dsarctl/output.h"

namespace dsarctl {

int RunPurge(const Options& options) {
  if (!options.positional.empty()) return Usage("purge: takes no arguments");
  auto stub = dsar::v1::AdminService::NewStub(OpenChannel(options));
  grpc::ClientContext context;
  options.Prepare(&context);
  dsar::v1::PurgeRequest request;
  request.set_dry_run(options.Has("dry-run"));
  dsar::v1::PurgeResponse response;
  grpc::Status status = stub->Purge(&context, request, &response);
  if (!status.ok()) return ExitFor(status);
  if (options.output != "table") {
    PrintMessage(options, response);
    return kExitOk;
  }
  if (response.items().empty()) {
    std::fprintf(stderr, "nothing is due (%lld closed requests examined)\n",
                 static_cast<long long>(response.examined()));
    return kExitOk;
  }
  Table table(
      {"REQUEST", response.dry_run() ? "WOULD REMOVE" : "REMOVED", "WHY"});
  for (const dsar::v1::PurgedItem& item : response.items()) {
    table.AddRow({item.request_id(), item.what(), item.reason()});
  }
  table.Print(options);
  if (response.more()) {
    std::fprintf(stderr, "more is due than one run handles; run it again\n");
  }
  if (response.dry_run()) {
    std::fprintf(stderr, "dry run: nothing was removed\n");
  }
  return kExitOk;
}

int RunKeysRotate(const Options& options) {
  // positional[0] is the subcommand word, "rotate".
  if (options.positional.size() != 1) {
    return Usage("keys rotate: takes no arguments");
  }
  auto stub = dsar::v1::AdminService::NewStub(OpenChannel(options));
  grpc::ClientContext context;
  options.Prepare(&context);
  dsar::v1::RotateKeysRequest request;
  request.set_rewrap(options.Has("rewrap"));
  dsar::v1::RotateKeysResponse response;
  grpc::Status status = stub->RotateKeys(&context, request, &response);
  if (!status.ok()) return ExitFor(status);
  if (options.output != "table") {
    PrintMessage(options, response);
    return kExitOk;
  }
  std::printf("active key-encryption key: %s\n",
              response.active_key_id().c_str());
  if (request.rewrap()) {
    std::printf("data keys re-wrapped under it: %lld\n",
                static_cast<long long>(response.rewrapped()));
  }
  return kExitOk;
}

}  // namespace dsarctl
