#ifndef DSAR_GATEWAY_TESTING_GATEWAY_PROCESS_H_
#define DSAR_GATEWAY_TESTING_GATEWAY_PROCESS_H_

// Test-only: starts dsar-gateway (or a variant built from its main) as a
// child process with tests/process_harness.h.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/process_harness.h"

namespace dsar::gateway::testing {

struct RunningGateway {
  std::unique_ptr<dsar::testing::Process> process;
  int port = 0;
};

// Runs `binary` --listen=127.0.0.1:0 --coordinator=127.0.0.1:`coordinator_port`
// --port_file=`work_dir`/`name`.port `extra_args`..., its log appended to
// `work_dir`/`name`.log, and waits until it has written its port (it then
// accepts connections).
absl::StatusOr<RunningGateway> StartGateway(
    const std::string& binary, int coordinator_port,
    const std::vector<std::string>& extra_args, const std::string& work_dir,
    const std::string& name = "gateway",
    absl::Duration timeout = absl::Seconds(30));

}  // namespace dsar::gateway::testing

#endif  // DSAR_GATEWAY_TESTING_GATEWAY_PROCESS_H_
