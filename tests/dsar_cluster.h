#ifndef DSAR_TESTS_DSAR_CLUSTER_H_
#define DSAR_TESTS_DSAR_CLUSTER_H_

// Starts this project's programs (dsard, dsar-worker, dsar-sample-stores) for
// integration tests and reads their state back over the public gRPC API.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "tests/process_harness.h"

namespace dsar::testing {

// Paths of the programs under test, set by tests/CMakeLists.txt.
const char* DsardPath();
const char* WorkerPath();
const char* SampleStoresPath();
const char* DsarctlPath();
const char* TamperAuditPath();  // Test-only; tests/tamper_audit.cc.

// Creates `dir` if needed, runs dsar-sample-stores --out=`dir`
// --people=`people` there and returns the path of the inventory it wrote.
absl::StatusOr<std::string> GenerateSampleStores(const std::string& dir,
                                                 int people);

struct DsardOptions {
  std::string data_dir;
  std::string inventory;
  double lease_seconds = 30;
  int port = 0;  // 0: let dsard pick one.
  std::vector<std::string> extra_args;
  // How StartDsard reaches dsard to see that it serves; null: plaintext.
  // Set it when extra_args turn on mutual TLS.
  std::shared_ptr<grpc::ChannelCredentials> client_credentials;
};

// A running dsard that has written its port file and accepts gRPC calls.
struct RunningDsard {
  std::unique_ptr<Process> process;
  int port = 0;
};

// Starts dsard with `options`, its log appended to `work_dir`/dsard.log and
// its port file at `work_dir`/dsard.port (removed first, so a stale file from
// an earlier run is never read), and waits up to `timeout` until it serves.
absl::StatusOr<RunningDsard> StartDsard(
    const DsardOptions& options, const std::string& work_dir,
    absl::Duration timeout = absl::Seconds(30));

struct WorkerOptions {
  int coordinator_port = 0;
  std::string inventory;
  std::string worker_id;
  std::vector<std::string> stores;  // Empty: every store.
  int concurrency = 4;
  int poll_wait_ms = 1000;
  int debug_task_delay_ms = 0;
  std::vector<std::string> extra_args;  // e.g. the --tls_* flags.
};

// Starts a dsar-worker whose log is `work_dir`/<worker_id>.log. Does not wait
// for it to connect: workers retry until the coordinator answers.
absl::StatusOr<std::unique_ptr<Process>> StartWorker(
    const WorkerOptions& options, const std::string& work_dir);

// Polls GetRequest until `done` holds for the request and returns it;
// DEADLINE_EXCEEDED naming `what` and the last state seen after `timeout`;
// the GetRequest error when one fails.
absl::StatusOr<v1::Request> WaitForRequest(
    v1::DsarService::Stub& stub, const std::string& id, const std::string& what,
    const std::function<bool(const v1::Request&)>& done,
    absl::Duration timeout);

// Polls GetRequest until the request is COMPLETED, FAILED or CANCELLED and
// returns it; DEADLINE_EXCEEDED (with the last status seen) after `timeout`.
absl::StatusOr<v1::Request> WaitUntilTerminal(v1::DsarService::Stub& stub,
                                              const std::string& id,
                                              absl::Duration timeout);

// Every event of a request, following page tokens, `page_size` at a time.
absl::StatusOr<std::vector<v1::Event>> ListAllEvents(
    v1::DsarService::Stub& stub, const std::string& id, int page_size = 1000);

// One line per event ("<seq> <kind> <state> <store> a<attempt> <worker>
// <detail>"), for failure messages.
std::string EventHistory(const std::vector<v1::Event>& events);

// Every request, following page tokens, `page_size` at a time.
absl::StatusOr<std::vector<v1::Request>> ListAllRequests(
    v1::DsarService::Stub& stub, int page_size = 1000);

// A CreateRequestRequest for one email identity.
v1::CreateRequestRequest RequestForEmail(v1::RequestType type,
                                         const std::string& email,
                                         const std::string& idempotency_key);

// True for COMPLETED, FAILED and CANCELLED.
bool IsTerminal(v1::RequestStatus status);

// Converts a gRPC status into an absl::Status with the same code and message.
absl::Status ToAbsl(const grpc::Status& status);

}  // namespace dsar::testing

#endif  // DSAR_TESTS_DSAR_CLUSTER_H_
