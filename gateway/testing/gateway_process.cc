#include "gateway/testing/gateway_process.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace dsar::gateway::testing {

absl::StatusOr<RunningGateway> StartGateway(
    const std::string& binary, int coordinator_port,
    const std::vector<std::string>& extra_args, const std::string& work_dir,
    const std::string& name, absl::Duration timeout) {
  std::string port_file = absl::StrCat(work_dir, "/", name, ".port");
  std::remove(port_file.c_str());
  std::vector<std::string> args = {
      "--listen=127.0.0.1:0",
      absl::StrCat("--coordinator=127.0.0.1:", coordinator_port),
      absl::StrCat("--port_file=", port_file)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<std::unique_ptr<dsar::testing::Process>> process =
      dsar::testing::Process::Start(binary, args,
                                    absl::StrCat(work_dir, "/", name, ".log"));
  if (!process.ok()) return process.status();
  absl::StatusOr<int> port =
      dsar::testing::WaitForPortFile(port_file, timeout, process->get());
  if (!port.ok()) return port.status();
  return RunningGateway{*std::move(process), *port};
}

}  // namespace dsar::gateway::testing
