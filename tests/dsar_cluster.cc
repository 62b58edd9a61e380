#include "tests/dsar_cluster.h"

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace dsar::testing {

const char* DsardPath() { return DSAR_TEST_DSARD_PATH; }
const char* WorkerPath() { return DSAR_TEST_WORKER_PATH; }
const char* SampleStoresPath() { return DSAR_TEST_SAMPLE_STORES_PATH; }
const char* DsarctlPath() { return DSAR_TEST_DSARCTL_PATH; }
const char* TamperAuditPath() { return DSAR_TEST_TAMPER_AUDIT_PATH; }

absl::Status ToAbsl(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

bool IsTerminal(v1::RequestStatus status) {
  return status == v1::COMPLETED || status == v1::FAILED ||
         status == v1::CANCELLED;
}

absl::StatusOr<std::string> GenerateSampleStores(const std::string& dir,
                                                 int people) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat(dir, ": ", error.message()));
  }
  std::string log = absl::StrCat(dir, "/sample-stores.log");
  absl::StatusOr<int> code = RunToExit(
      SampleStoresPath(),
      {absl::StrCat("--out=", dir), absl::StrCat("--people=", people)}, log,
      absl::Seconds(60));
  if (!code.ok()) return code.status();
  if (*code != 0) {
    return absl::InternalError(absl::StrCat("dsar-sample-stores exited ", *code,
                                            ": ", ReadFileOrEmpty(log)));
  }
  return absl::StrCat(dir, "/inventory.yaml");
}

absl::StatusOr<RunningDsard> StartDsard(const DsardOptions& options,
                                        const std::string& work_dir,
                                        absl::Duration timeout) {
  std::string port_file = absl::StrCat(work_dir, "/dsard.port");
  std::error_code error;
  std::filesystem::remove(port_file, error);
  std::vector<std::string> args = {
      absl::StrCat("--listen=127.0.0.1:", options.port),
      absl::StrCat("--port_file=", port_file),
      absl::StrCat("--data_dir=", options.data_dir),
      absl::StrCat("--inventory=", options.inventory),
      absl::StrCat("--lease_seconds=", options.lease_seconds),
      // Tests submit as a trusted internal caller would; the verification
      // flow has tests of its own (extra_args may turn it back on).
      "--verify_unattested=false"};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  absl::StatusOr<std::unique_ptr<Process>> process =
      Process::Start(DsardPath(), args, absl::StrCat(work_dir, "/dsard.log"));
  if (!process.ok()) return process.status();
  absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<int> port =
      WaitForPortFile(port_file, timeout, process->get());
  if (!port.ok()) return port.status();
  std::shared_ptr<grpc::Channel> channel =
      options.client_credentials == nullptr
          ? LoopbackChannel(*port)
          : grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port),
                                options.client_credentials);
  absl::Status ready = WaitForGrpcReady(channel, deadline - absl::Now());
  if (!ready.ok()) return ready;
  return RunningDsard{std::move(*process), *port};
}

absl::StatusOr<std::unique_ptr<Process>> StartWorker(
    const WorkerOptions& options, const std::string& work_dir) {
  std::vector<std::string> args = {
      absl::StrCat("--coordinator=127.0.0.1:", options.coordinator_port),
      absl::StrCat("--inventory=", options.inventory),
      absl::StrCat("--worker_id=", options.worker_id),
      absl::StrCat("--concurrency=", options.concurrency),
      absl::StrCat("--poll_wait_ms=", options.poll_wait_ms),
      absl::StrCat("--debug_task_delay_ms=", options.debug_task_delay_ms)};
  if (!options.stores.empty()) {
    args.push_back(
        absl::StrCat("--stores=", absl::StrJoin(options.stores, ",")));
  }
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  return Process::Start(WorkerPath(), args,
                        absl::StrCat(work_dir, "/", options.worker_id, ".log"));
}

absl::StatusOr<v1::Request> WaitForRequest(
    v1::DsarService::Stub& stub, const std::string& id, const std::string& what,
    const std::function<bool(const v1::Request&)>& done,
    absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v1::GetRequestRequest get;
    get.set_id(id);
    v1::Request request;
    grpc::Status status = stub.GetRequest(&context, get, &request);
    if (!status.ok()) return ToAbsl(status);
    if (done(request)) return request;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "request ", id, ": not ", what, " after ",
          absl::FormatDuration(timeout), ": ", request.ShortDebugString()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<v1::Request> WaitUntilTerminal(v1::DsarService::Stub& stub,
                                              const std::string& id,
                                              absl::Duration timeout) {
  return WaitForRequest(
      stub, id, "terminal",
      [](const v1::Request& request) { return IsTerminal(request.status()); },
      timeout);
}

absl::StatusOr<std::vector<v1::Event>> ListAllEvents(
    v1::DsarService::Stub& stub, const std::string& id, int page_size) {
  std::vector<v1::Event> events;
  v1::ListEventsRequest request;
  request.set_request_id(id);
  request.set_page_size(page_size);
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ListEventsResponse response;
    grpc::Status status = stub.ListEvents(&context, request, &response);
    if (!status.ok()) return ToAbsl(status);
    events.insert(events.end(), response.events().begin(),
                  response.events().end());
    if (response.next_page_token().empty()) return events;
    request.set_page_token(response.next_page_token());
  }
}

std::string EventHistory(const std::vector<v1::Event>& events) {
  std::string history;
  for (const v1::Event& event : events) {
    absl::StrAppend(&history, event.sequence(), " ", event.kind(), " ",
                    event.state(), " ", event.store(), " a", event.attempt(),
                    " ", event.worker_id(), " ", event.detail(), "\n");
  }
  return history;
}

absl::StatusOr<std::vector<v1::Request>> ListAllRequests(
    v1::DsarService::Stub& stub, int page_size) {
  std::vector<v1::Request> requests;
  v1::ListRequestsRequest request;
  request.set_page_size(page_size);
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ListRequestsResponse response;
    grpc::Status status = stub.ListRequests(&context, request, &response);
    if (!status.ok()) return ToAbsl(status);
    requests.insert(requests.end(), response.requests().begin(),
                    response.requests().end());
    if (response.next_page_token().empty()) return requests;
    request.set_page_token(response.next_page_token());
  }
}

v1::CreateRequestRequest RequestForEmail(v1::RequestType type,
                                         const std::string& email,
                                         const std::string& idempotency_key) {
  v1::CreateRequestRequest request;
  request.set_type(type);
  v1::SubjectIdentity* identity = request.add_identities();
  identity->set_type(v1::EMAIL);
  identity->set_value(email);
  request.set_idempotency_key(idempotency_key);
  return request;
}

}  // namespace dsar::testing
