// `dsarctl workers`: the workers the coordinator has seen.

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "dsar/v1/admin.grpc.pb.h"
#include "tools/dsarctl/commands.h"
#include "tools/dsarctl/output.h"

namespace dsarctl {

int RunWorkers(const Options& options) {
  if (!options.positional.empty()) return Usage("workers: takes no arguments");
  auto stub = dsar::v1::AdminService::NewStub(OpenChannel(options));
  grpc::ClientContext context;
  options.Prepare(&context);
  dsar::v1::ListWorkersResponse response;
  grpc::Status status =
      stub->ListWorkers(&context, dsar::v1::ListWorkersRequest(), &response);
  if (!status.ok()) return ExitFor(status);
  if (options.output != "table") {
    PrintMessage(options, response);
    return kExitOk;
  }
  if (!response.unserved_stores().empty()) {
    // On stderr like the other warnings; tasks of these stores wait.
    std::fprintf(
        stderr, "%s\n",
        Paint(options,
              absl::StrCat("no live worker serves: ",
                           absl::StrJoin(response.unserved_stores(), ", ")),
              Color::kRed)
            .c_str());
  }
  if (response.workers().empty()) {
    std::fprintf(stderr, "no workers have connected since dsard started\n");
    return kExitOk;
  }
  const absl::Time now = absl::Now();
  Table table({"WORKER", "STORES", "IN-FLIGHT", "LAST HEARTBEAT"});
  for (const dsar::v1::WorkerInfo& worker : response.workers()) {
    const absl::Duration age = now - ToAbslTime(worker.last_seen());
    // A worker silent for longer than a typical lease is probably gone.
    const Color color = age > absl::Seconds(30) ? Color::kYellow : Color::kNone;
    table.AddRow({worker.worker_id(),
                  worker.stores().empty() ? "(all)"
                                          : absl::StrJoin(worker.stores(), ","),
                  absl::StrCat(worker.leased_tasks_size()),
                  {worker.last_seen().seconds() == 0
                       ? "-"
                       : absl::StrCat(FormatAge(age), " ago"),
                   color}});
  }
  table.Print(options);
  return kExitOk;
}

}  // namespace dsarctl
