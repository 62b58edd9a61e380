#include "workers/worker.h"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "audit_scan/report.h"
#include "audit_scan/store_scan.h"
#include "audit_scan/subject_reference.h"
#include "common/admin_server.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "model/connector_errors.h"
#include "model/identity.h"
#include "model/task_operation.h"
#include "model/worker_protocol.h"
#include "workers/connectors/masking.h"

namespace dsar {
namespace {

constexpr size_t kUploadChunkBytes = 64 * 1024;

// Streams export bytes to the coordinator in bounded chunks.
class UploadSink : public ByteSink {
 public:
  UploadSink(grpc::ClientWriter<v1::UploadArtifactRequest>* writer,
             prometheus::Counter* bytes_sent)
      : writer_(writer), bytes_sent_(bytes_sent) {}

  absl::Status Write(std::string_view bytes) override {
    buffer_.append(bytes.data(), bytes.size());
    if (buffer_.size() >= kUploadChunkBytes) return Flush();
    return absl::OkStatus();
  }

  absl::Status Flush() {
    if (buffer_.empty()) return absl::OkStatus();
    v1::UploadArtifactRequest message;
    message.set_chunk(std::move(buffer_));
    buffer_.clear();
    if (!writer_->Write(message)) {
      broken_ = true;
      return absl::UnavailableError("upload stream closed by the coordinator");
    }
    bytes_sent_->Increment(static_cast<double>(message.chunk().size()));
    return absl::OkStatus();
  }

  // True once a write failed: the stream is gone (coordinator restarted,
  // or the call was cancelled).
  bool broken() const { return broken_; }

 private:
  grpc::ClientWriter<v1::UploadArtifactRequest>* writer_;
  prometheus::Counter* bytes_sent_;
  std::string buffer_;
  bool broken_ = false;
};

bool Retryable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
         status.error_code() == grpc::StatusCode::CANCELLED;
}

}  // namespace

absl::StatusOr<TaskOperation> TaskOperationToRun(const v1::Task& task) {
  std::optional<TaskOperation> operation = ParseTaskOperation(task.operation());
  if (!operation.has_value()) {
    return WithErrorName(
        absl::InvalidArgumentError(absl::StrCat(
            "task operation \"", task.operation(),
            "\" is unknown to this worker (it knows ",
            KnownTaskOperationNames(), "); is dsar-worker older than dsard?")),
        kErrorInvalidValue);
  }
  return *operation;
}

Worker::Worker(Options options, std::shared_ptr<const Inventory> inventory)
    : options_(std::move(options)),
      inventory_(std::move(inventory)),
      registry_(std::make_shared<prometheus::Registry>()),
      tasks_(prometheus::BuildCounter()
                 .Name("dsar_worker_tasks_total")
                 .Help("Tasks run, by operation and outcome (completed, "
                       "failed, lease_lost, report_refused, abandoned).")
                 .Register(*registry_)),
      task_seconds_(prometheus::BuildHistogram()
                        .Name("dsar_worker_task_duration_seconds")
                        .Help("Time from lease to report, by store and "
                              "operation.")
                        .Register(*registry_)),
      polls_(prometheus::BuildCounter()
                 .Name("dsar_worker_polls_total")
                 .Help("Long polls for tasks, by result (task, empty, "
                       "error).")
                 .Register(*registry_)),
      upload_bytes_(prometheus::BuildCounter()
                        .Name("dsar_worker_upload_bytes_total")
                        .Help("Export bytes streamed to the coordinator.")
                        .Register(*registry_)
                        .Add({})),
      in_flight_tasks_(prometheus::BuildGauge()
                           .Name("dsar_worker_tasks_in_flight")
                           .Help("Tasks being run now.")
                           .Register(*registry_)
                           .Add({})),
      batch_tasks_(prometheus::BuildHistogram()
                       .Name("dsar_worker_batch_tasks")
                       .Help("Tasks leased together to one thread, per "
                             "batch (docs/worker.md, \"Batches\").")
                       .Register(*registry_)
                       .Add({}, prometheus::Histogram::BucketBoundaries{
                                    1, 2, 4, 8, 16})) {}

absl::Status Worker::Liveness() const {
  if (stopping()) return absl::UnavailableError("dsar-worker is stopping");
  return absl::OkStatus();
}

absl::Status Worker::Readiness() const {
  RETURN_IF_ERROR(Liveness());
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/false);
  if (state == GRPC_CHANNEL_READY) return absl::OkStatus();
  const char* name = state == GRPC_CHANNEL_IDLE         ? "idle"
                     : state == GRPC_CHANNEL_CONNECTING ? "connecting"
                     : state == GRPC_CHANNEL_TRANSIENT_FAILURE
                         ? "transient failure"
                         : "shut down";
  return absl::UnavailableError(absl::StrCat("not connected to dsard at ",
                                             options_.coordinator_address,
                                             " (channel ", name, ")"));
}

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(
    Options options, std::shared_ptr<const Inventory> inventory) {
  if (options.stores.empty()) {
    return absl::InvalidArgumentError(
        "stores: name at least one store to serve");
  }
  if (options.concurrency < 1) {
    return absl::InvalidArgumentError("concurrency: must be at least 1");
  }
  if (options.max_tasks_per_poll < 1 ||
      options.max_tasks_per_poll > kMaxTasksPerPoll) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tasks_per_poll: must be 1 to ", kMaxTasksPerPoll,
                     ", not ", options.max_tasks_per_poll));
  }
  std::unique_ptr<Worker> worker(
      new Worker(std::move(options), std::move(inventory)));
  for (const std::string& name : worker->options_.stores) {
    const StoreSpec* spec = worker->inventory_->Find(name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stores: unknown store \"", name, "\" (not in the data inventory)"));
    }
    ASSIGN_OR_RETURN(worker->connectors_[name],
                     CreateConnector(*spec, &worker->stopping_));
  }
  grpc::ChannelArguments arguments;
  // Find a restarted coordinator quickly.
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  arguments.SetMaxSendMessageSize(16 << 20);
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      worker->options_.credentials != nullptr
          ? worker->options_.credentials
          : grpc::InsecureChannelCredentials();
  worker->channel_ = grpc::CreateCustomChannel(
      worker->options_.coordinator_address, credentials, arguments);
  worker->stub_ = v1::WorkerService::NewStub(worker->channel_);
  return worker;
}

void Worker::Track(grpc::ClientContext* context, CallKind kind) {
  std::lock_guard<std::mutex> lock(calls_mu_);
  calls_[context] = kind;
  // TryCancel before the call starts cancels it as it starts.
  if (kind == CallKind::kWait ? cancel_waits_ : cancel_reports_) {
    context->TryCancel();
  }
}

void Worker::Untrack(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(calls_mu_);
  calls_.erase(context);
}

class Worker::TrackedCall {
 public:
  TrackedCall(Worker& worker, grpc::ClientContext& context, CallKind kind)
      : worker_(worker), context_(context) {
    worker_.Track(&context_, kind);
  }
  ~TrackedCall() { worker_.Untrack(&context_); }
  TrackedCall(const TrackedCall&) = delete;
  TrackedCall& operator=(const TrackedCall&) = delete;

 private:
  Worker& worker_;
  grpc::ClientContext& context_;
};

// A ReportTasks stream, opened on the first report and again after it
// broke or aged. One report is in flight at a time (the thread waits for
// its answer). The stream is a kReport call for the stop: cancelled only
// after kReportGrace. Its deadline bounds how long a report can wait for a
// dsard that does not answer; it is replaced before that deadline is near,
// so that a report never starts on a stream about to expire.
class Worker::ReportStream {
 public:
  explicit ReportStream(Worker& worker) : worker_(worker) {}
  ~ReportStream() { Close(); }
  ReportStream(const ReportStream&) = delete;
  ReportStream& operator=(const ReportStream&) = delete;

  // The stream's lifetime, and how much of it must be left for a report
  // to start on it (a completion waits up to kNextTaskWaitMs for the next
  // task, then its commit).
  static constexpr std::chrono::seconds kLifetime{60};
  static constexpr std::chrono::seconds kLeftToReuse{15};

  // Sends `report` and reads its answer. A broken stream is closed (the
  // next Send opens another) and its status returned: UNAVAILABLE while
  // dsard restarts, CANCELLED after a stop, UNIMPLEMENTED from a dsard
  // without ReportTasks.
  // Ends the stream, if open: politely when it may still be used, at once
  // when the worker is stopping (dsard may not answer any more).
  void Close() {
    if (stream_ == nullptr) return;
    if (worker_.stopping()) {
      context_->TryCancel();
    } else {
      stream_->WritesDone();
    }
    stream_->Finish().IgnoreError();
    Forget();
  }

  grpc::Status Send(const v1::TaskReport& report,
                    v1::TaskReportAnswer* answer) {
    if (stream_ != nullptr &&
        deadline_ - std::chrono::system_clock::now() < kLeftToReuse) {
      Close();
    }
    if (stream_ == nullptr) Open();
    if (stream_->Write(report) && stream_->Read(answer)) {
      return grpc::Status::OK;
    }
    // The call has ended: Finish returns how.
    grpc::Status status = stream_->Finish();
    Forget();
    return status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                      "report stream closed by dsard")
                       : status;
  }

 private:
  void Open() {
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_wait_for_ready(true);
    deadline_ = std::chrono::system_clock::now() + kLifetime;
    context_->set_deadline(deadline_);
    worker_.Track(context_.get(), CallKind::kReport);
    stream_ = worker_.stub_->ReportTasks(context_.get());
  }

  void Forget() {
    stream_.reset();
    worker_.Untrack(context_.get());
    context_.reset();
  }

  Worker& worker_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::TaskReport, v1::TaskReportAnswer>>
      stream_;
  std::chrono::system_clock::time_point deadline_;
};

Worker::~Worker() { Stop(); }

void Worker::Stop() {
  {
    // Under mu_, so that a waiter cannot check the flag and then miss the
    // notification.
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
}

void Worker::CancelCalls(CallKind kind) {
  std::lock_guard<std::mutex> lock(calls_mu_);
  cancel_waits_ = true;
  if (kind == CallKind::kReport) cancel_reports_ = true;
  for (const auto& [context, call_kind] : calls_) {
    if (call_kind == CallKind::kWait || kind == CallKind::kReport) {
      context->TryCancel();
    }
  }
}

bool Worker::SleepFor(std::chrono::milliseconds duration) {
  std::unique_lock<std::mutex> lock(mu_);
  stop_cv_.wait_for(lock, duration, [this] { return stopping(); });
  return !stopping();
}

void Worker::Run() {
  std::vector<std::thread> threads;
  for (int i = 0; i < options_.concurrency; ++i)
    threads.emplace_back([this] { PollLoop(); });
  threads.emplace_back([this] { HeartbeatLoop(); });
  {
    std::unique_lock<std::mutex> lock(mu_);
    stop_cv_.wait(lock, [this] { return stopping(); });
  }
  // Polls, heartbeats and uploads end now; connector work sees stopping_.
  CancelCalls(CallKind::kWait);
  {
    // Tasks whose work is done report it meanwhile; the others give up.
    std::unique_lock<std::mutex> lock(mu_);
    stop_cv_.wait_for(lock, kReportGrace,
                      [this] { return in_flight_.empty(); });
  }
  CancelCalls(CallKind::kReport);
  for (std::thread& thread : threads) thread.join();
}

void Worker::PollLoop() {
  ReportStream reports(*this);
  int backoff_ms = 100;
  while (!stopping()) {
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(options_.poll_wait_ms + 5000));
    TrackedCall tracked(*this, context, CallKind::kWait);
    v1::PollTaskRequest request = PollRequest(options_.poll_wait_ms);
    v1::PollTaskResponse response;
    grpc::Status status = stub_->PollTask(&context, request, &response);
    polls_
        .Add({{"result", !status.ok()          ? "error"
                         : response.has_task() ? "task"
                                               : "empty"}})
        .Increment();
    if (!status.ok()) {
      if (!Retryable(status)) {
        LogError(absl::StrCat("poll refused: ", status.error_message()));
      }
      if (!SleepFor(std::chrono::milliseconds(backoff_ms))) return;
      backoff_ms = std::min(backoff_ms * 2, 2000);
      continue;
    }
    backoff_ms = 100;
    if (!response.has_task()) continue;
    std::vector<v1::Task> tasks = TakeLeasedTasks(
        *response.mutable_task(), *response.mutable_more_tasks());
    // Each report brings the next tasks while there is work.
    while (!tasks.empty()) tasks = ExecuteBatch(std::move(tasks), reports);
    // Idle now: the stream would hold a dsard thread while this one
    // long-polls.
    reports.Close();
  }
}

v1::PollTaskRequest Worker::PollRequest(int wait_ms) const {
  v1::PollTaskRequest request;
  request.set_worker_id(options_.worker_id);
  for (const std::string& store : options_.stores) request.add_stores(store);
  request.set_wait_ms(wait_ms);
  request.set_max_tasks(options_.max_tasks_per_poll);
  return request;
}

void Worker::HeartbeatLoop() {
  while (true) {
    std::vector<std::shared_ptr<InFlight>> flights;
    {
      // Every third of a lease, and at once when a lease shorter than
      // the one waited for comes in (Hold).
      std::unique_lock<std::mutex> lock(mu_);
      stop_cv_.wait_for(lock,
                        std::chrono::milliseconds(
                            std::max<int64_t>(lease_duration_ms_ / 3, 50)),
                        [this] { return stopping() || lease_shortened_; });
      if (stopping()) return;
      lease_shortened_ = false;
      for (auto& [id, flight] : in_flight_) flights.push_back(flight);
    }
    for (const auto& flight : flights) {
      if (stopping()) return;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(5));
      TrackedCall tracked(*this, context, CallKind::kWait);
      v1::HeartbeatRequest request;
      request.set_worker_id(options_.worker_id);
      request.set_task_id(flight->task_id);
      request.set_attempt(flight->attempt);
      v1::HeartbeatResponse response;
      grpc::Status status = stub_->Heartbeat(&context, request, &response);
      if (status.ok() && response.processor_status_changed()) {
        flight->processor_status_changed = true;
      }
      if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
          status.error_code() == grpc::StatusCode::NOT_FOUND) {
        // The request has ended (as against another attempt holding the
        // lease): only then is work at a processor withdrawn.
        if (context.GetServerTrailingMetadata().count(
                kRequestEndedMetadataKey) > 0) {
          flight->request_ended = true;
        }
        flight->lease_lost = true;
      }
    }
  }
}

grpc::Status Worker::Retrying(const std::vector<InFlight*>& flights,
                              const std::function<grpc::Status()>& send) {
  int backoff_ms = 100;
  while (true) {
    grpc::Status status = send();
    bool all_lost =
        std::all_of(flights.begin(), flights.end(),
                    [](InFlight* flight) { return flight->lease_lost.load(); });
    if (!Retryable(status) || all_lost || stopping()) return status;
    if (!SleepFor(std::chrono::milliseconds(backoff_ms))) return status;
    backoff_ms = std::min(backoff_ms * 2, 2000);
  }
}

void Worker::Report(ReportStream& reports, const v1::TaskReport& message,
                    const std::vector<InFlight*>& flights,
                    std::vector<grpc::Status>* statuses,
                    std::vector<v1::Task>* next) {
  if (!unary_reports_) {
    grpc::Status sent = Retrying(flights, [&] {
      return SendOnStream(reports, message, statuses, next);
    });
    if (sent.error_code() != grpc::StatusCode::UNIMPLEMENTED) {
      if (!sent.ok()) statuses->assign(flights.size(), sent);
      return;
    }
    unary_reports_ = true;  // An older dsard: no retry needed.
  }
  statuses->clear();
  next->clear();
  for (size_t i = 0; i < flights.size(); ++i) {
    v1::TaskReport one = i == 0 ? message : message.more(i - 1);
    one.clear_more();
    statuses->push_back(Retrying({flights[i]}, [&] {
      return ReportUnary(one, i == 0 ? next : nullptr);
    }));
  }
}

grpc::Status Worker::SendOnStream(ReportStream& reports,
                                  const v1::TaskReport& message,
                                  std::vector<grpc::Status>* statuses,
                                  std::vector<v1::Task>* next) {
  statuses->clear();
  next->clear();
  v1::TaskReportAnswer answer;
  grpc::Status sent = reports.Send(message, &answer);
  if (!sent.ok()) return sent;
  auto status_of = [](const v1::TaskReportAnswer& one) {
    return grpc::Status(static_cast<grpc::StatusCode>(one.code()),
                        one.message());
  };
  statuses->push_back(status_of(answer));
  for (int i = 0; i < message.more_size(); ++i) {
    statuses->push_back(
        i < answer.more_size()
            ? status_of(answer.more(i))
            : grpc::Status(grpc::StatusCode::INTERNAL,
                           "dsard did not answer this report (is dsard "
                           "older than the worker?)"));
  }
  if (std::all_of(
          statuses->begin(), statuses->end(),
          [](const grpc::Status& status) { return Retryable(status); })) {
    return statuses->front();
  }
  if (answer.has_next_task()) {
    *next = TakeLeasedTasks(*answer.mutable_next_task(),
                            *answer.mutable_more_next_tasks());
  }
  return grpc::Status::OK;
}

grpc::Status Worker::ReportUnary(const v1::TaskReport& report,
                                 std::vector<v1::Task>* next) {
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  // Room for a completion's wait for the next task (kNextTaskWaitMs).
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10) +
                       std::chrono::milliseconds(kNextTaskWaitMs));
  TrackedCall tracked(*this, context, CallKind::kReport);
  if (report.has_fail()) {
    v1::FailTaskResponse response;
    return stub_->FailTask(&context, report.fail(), &response);
  }
  v1::CompleteTaskRequest complete = report.complete();
  if (next == nullptr) complete.clear_next();
  v1::CompleteTaskResponse response;
  grpc::Status status = stub_->CompleteTask(&context, complete, &response);
  if (status.ok() && next != nullptr && response.has_next_task()) {
    *next = TakeLeasedTasks(*response.mutable_next_task(),
                            *response.mutable_more_next_tasks());
  }
  return status;
}

struct Worker::Held {
  v1::Task task;
  std::shared_ptr<InFlight> flight;
  std::chrono::steady_clock::time_point leased;
  // What to report; unset: nothing (stopping, or the lease is gone).
  std::optional<v1::TaskReport> report;
  bool work_done = false;
  // Unset: nothing was reported.
  std::optional<grpc::Status> reported;
};

std::unique_ptr<Worker::Held> Worker::Hold(v1::Task task) {
  auto held = std::make_unique<Held>();
  held->leased = std::chrono::steady_clock::now();
  held->flight = std::make_shared<InFlight>();
  held->flight->task_id = task.task_id();
  held->flight->attempt = task.attempt();
  held->task = std::move(task);
  in_flight_tasks_.Increment();
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_[held->task.task_id()] = held->flight;
  const int64_t lease_ms = held->task.lease_duration_ms();
  if (lease_ms > 0 && lease_ms != lease_duration_ms_) {
    // A shorter lease than the heartbeats wait for (the first task after
    // a start, or dsard's --lease_seconds lowered) wakes them now.
    if (lease_ms < lease_duration_ms_) {
      lease_shortened_ = true;
      stop_cv_.notify_all();
    }
    lease_duration_ms_ = lease_ms;
  }
  return held;
}

void Worker::RunHeld(Held& held) {
  const v1::Task& task = held.task;
  v1::TaskReport report;
  absl::Status outcome =
      RunOperation(task, *held.flight, report.mutable_complete());
  held.work_done = outcome.ok();
  if (outcome.ok()) {
    // The work is done: reported, even while stopping (kReportGrace).
    held.report = std::move(report);
    return;
  }
  // While stopping, a failure may be the stop's doing (a cancelled upload
  // or connector): never reported, the lease expires instead.
  if (stopping() || held.flight->lease_lost) return;
  v1::FailTaskRequest& fail = *report.mutable_fail();
  fail.set_worker_id(options_.worker_id);
  fail.set_task_id(task.task_id());
  fail.set_attempt(task.attempt());
  // Matched by the workflow's Retry/Catch (model/connector_errors.h).
  fail.set_error(ConnectorErrorName(outcome));
  fail.set_cause(std::string(outcome.message()));
  held.report = std::move(report);
}

void Worker::SendReports(const std::vector<Held*>& held,
                         std::vector<v1::Task>* next, ReportStream& reports) {
  // A completion goes first: only the first report asks for next tasks.
  std::vector<Held*> order = held;
  auto completion = std::find_if(order.begin(), order.end(), [](Held* one) {
    return one->report->has_complete();
  });
  if (completion != order.end())
    std::rotate(order.begin(), completion, completion + 1);
  v1::TaskReport message = *order[0]->report;
  std::vector<InFlight*> flights = {order[0]->flight.get()};
  for (size_t i = 1; i < order.size(); ++i) {
    *message.add_more() = *order[i]->report;
    flights.push_back(order[i]->flight.get());
  }
  const bool asks = next != nullptr && message.has_complete();
  if (asks)
    *message.mutable_complete()->mutable_next() = PollRequest(kNextTaskWaitMs);
  std::vector<grpc::Status> statuses;
  std::vector<v1::Task> leased;
  Report(reports, message, flights, &statuses, &leased);
  for (size_t i = 0; i < order.size(); ++i) order[i]->reported = statuses[i];
  if (asks) {
    polls_.Add({{"result", leased.empty() ? "empty" : "task"}}).Increment();
    *next = std::move(leased);
  }
}

void Worker::Release(Held& held) {
  const v1::Task& task = held.task;
  const InFlight& flight = *held.flight;
  bool answered = held.reported.has_value() && held.reported->ok();
  const LogIds ids = ForTask(task.request_id(), task.task_id());
  if (stopping() && !answered && !flight.lease_lost) {
    LogInfo(absl::StrCat("stopping: abandoned task ", task.task_id(),
                         " attempt ", task.attempt(), " (lease will expire)"),
            ids);
  } else if (held.reported.has_value() && !held.reported->ok()) {
    LogWarning(
        absl::StrCat("task ", task.task_id(), " attempt ", task.attempt(),
                     ": report refused: ", held.reported->error_message()),
        ids);
  }
  // An accepted report stands, even if a heartbeat sent while the report
  // waited for the next task found the lease already released.
  const char* outcome_label = answered
                                  ? (held.work_done ? "completed" : "failed")
                              : flight.lease_lost          ? "lease_lost"
                              : !held.reported.has_value() ? "abandoned"
                                                           : "report_refused";
  // A known operation's wire name, or "unknown": labels are never free text.
  const std::string operation =
      TaskOperationToRun(task).ok() ? task.operation() : "unknown";
  tasks_.Add({{"operation", operation}, {"outcome", outcome_label}})
      .Increment();
  task_seconds_
      .Add({{"store", task.store()}, {"operation", operation}},
           LatencyBuckets())
      .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                             held.leased)
                   .count());
  in_flight_tasks_.Decrement();
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.erase(task.task_id());
  }
  stop_cv_.notify_all();  // Run() may be waiting for the last task.
}

std::vector<v1::Task> Worker::ExecuteBatch(std::vector<v1::Task> tasks,
                                           ReportStream& reports) {
  // Every lease is heartbeated from now on, started or not.
  batch_tasks_.Observe(static_cast<double>(tasks.size()));
  std::vector<std::unique_ptr<Held>> held;
  for (v1::Task& task : tasks) held.push_back(Hold(std::move(task)));
  const auto started = std::chrono::steady_clock::now();
  std::vector<Held*> unreported;
  // Tasks not started before a stop are abandoned: their leases expire.
  for (size_t i = 0; i < held.size() && !stopping(); ++i) {
    // A heartbeat may have found a waiting task's lease gone.
    if (held[i]->flight->lease_lost) continue;
    RunHeld(*held[i]);
    if (held[i]->report.has_value()) unreported.push_back(held[i].get());
    if (i + 1 < held.size() && !unreported.empty() &&
        std::chrono::steady_clock::now() - started > kBatchReportAfter) {
      SendReports(unreported, nullptr, reports);
      unreported.clear();
    }
  }
  std::vector<v1::Task> next;
  if (!unreported.empty()) {
    SendReports(unreported, stopping() ? nullptr : &next, reports);
  }
  for (const std::unique_ptr<Held>& one : held) Release(*one);
  // Tasks leased while stopping are abandoned: their leases expire.
  if (stopping()) next.clear();
  return next;
}

namespace {

// OK when `connector` no longer finds the subject; Erasure.Residue naming
// the store and the count otherwise.
absl::Status CheckNoResidue(const std::string& store, Connector& connector,
                            const std::vector<Identity>& identities) {
  ASSIGN_OR_RETURN(ConnectorResult left, connector.Discover(identities));
  if (left.record_count == 0) return absl::OkStatus();
  return WithErrorName(
      absl::FailedPreconditionError(absl::StrCat(
          "ERASURE_RESIDUE: store ", store, " still holds ", left.record_count,
          " record(s) of the subject after its erasure committed (a trigger "
          "or another writer may put them back)")),
      kErrorResidue);
}

// The referencer of audit findings: keyed by the inventory's
// masking_key_file through HMAC-SHA256 with a label of its own, so that a
// subject reference is neither the hash a mask writes nor computable
// without that key. FAILED_PRECONDITION without the key.
absl::StatusOr<std::unique_ptr<SubjectReferencer>> AuditReferencer(
    const StoreSpec& store) {
  ASSIGN_OR_RETURN(std::string masking_key, ReadMaskingKey(store));
  static constexpr char kLabel[] = "dsar audit subject reference v1";
  unsigned char derived[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), masking_key.data(), static_cast<int>(masking_key.size()),
       reinterpret_cast<const unsigned char*>(kLabel), sizeof(kLabel) - 1,
       derived, &size);
  OPENSSL_cleanse(masking_key.data(), masking_key.size());
  std::string key(reinterpret_cast<const char*>(derived), size);
  OPENSSL_cleanse(derived, sizeof(derived));
  return SubjectReferencer::Create(std::move(key));
}

}  // namespace

absl::Status Worker::RunOperation(const v1::Task& task, InFlight& flight,
                                  v1::CompleteTaskRequest* complete) {
  if (options_.debug_task_delay_ms > 0 &&
      !SleepFor(std::chrono::milliseconds(options_.debug_task_delay_ms))) {
    return absl::CancelledError("worker stopping");
  }
  ASSIGN_OR_RETURN(TaskOperation operation, TaskOperationToRun(task));
  auto connector = connectors_.find(task.store());
  if (connector == connectors_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("this worker has no connector for store ", task.store()));
  }
  std::vector<Identity> identities;
  for (const v1::SubjectIdentity& identity : task.identities()) {
    identities.push_back({IdentityKey(identity), identity.value()});
  }
  complete->set_worker_id(options_.worker_id);
  complete->set_task_id(task.task_id());
  complete->set_attempt(task.attempt());
  ConnectorResult result;
  if (auto* service = dynamic_cast<OpenDsrConnector*>(connector->second.get());
      service != nullptr) {
    // An OpenDSR processor request is named after the task, which the
    // Connector interface does not carry.
    RETURN_IF_ERROR(RunAtOpenDsrService(task, operation, flight, *service,
                                        std::move(identities), &result,
                                        complete));
    // A processor reports a count and no identities.
    complete->set_record_count(result.record_count);
    return absl::OkStatus();
  }
  switch (operation) {
    case TaskOperation::kExport: {
      Connector& store = *connector->second;
      ASSIGN_OR_RETURN(
          v1::UploadArtifactResponse uploaded,
          ExportAndUpload(
              task,
              [&](ByteSink& sink) { return store.Export(identities, sink); },
              &result));
      complete->set_artifact_sha256(uploaded.sha256());
      break;
    }
    case TaskOperation::kDiscover: {
      ASSIGN_OR_RETURN(result, connector->second->Discover(identities));
      break;
    }
    case TaskOperation::kErase: {
      ASSIGN_OR_RETURN(EraseResult erased,
                       connector->second->Erase(identities));
      // An erasure is done when the subject can no longer be found, not
      // when the connector says so: a trigger or another writer may have
      // put records back (docs/errors.md, Erasure.Residue).
      RETURN_IF_ERROR(
          CheckNoResidue(task.store(), *connector->second, identities));
      result.record_count = erased.record_count();
      for (const CollectionErasure& collection : erased.collections) {
        v1::CollectionErasure* out = complete->add_erasures();
        out->set_collection(collection.collection);
        out->set_rows_deleted(collection.rows_deleted);
        out->set_rows_masked(collection.rows_masked);
        out->set_fields_masked(collection.fields_masked);
      }
      break;
    }
    case TaskOperation::kRectify: {
      std::vector<FieldCorrection> corrections;
      for (const v1::FieldCorrection& correction : task.corrections()) {
        corrections.push_back(
            {correction.collection(), correction.field(), correction.value()});
      }
      ASSIGN_OR_RETURN(result.record_count,
                       connector->second->Rectify(identities, corrections));
      break;
    }
    case TaskOperation::kRestrict: {
      ASSIGN_OR_RETURN(
          result.record_count,
          connector->second->SetProcessingFlag(identities, "restriction"));
      break;
    }
    case TaskOperation::kObject: {
      ASSIGN_OR_RETURN(
          result.record_count,
          connector->second->SetProcessingFlag(identities, "objection"));
      break;
    }
    case TaskOperation::kScan: {
      // The store's audit scan (docs/audit-scan-runs.md): its findings,
      // as a one-store report, are the task's artifact.
      const StoreSpec* spec = inventory_->Find(task.store());
      if (spec == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("store ", task.store(), " is not in the inventory"));
      }
      ASSIGN_OR_RETURN(std::unique_ptr<SubjectReferencer> referencer,
                       AuditReferencer(*spec));
      ScanOptions options;
      options.referencer = referencer.get();
      options.cancel = &stopping_;
      ASSIGN_OR_RETURN(StoreScanResult scanned, ScanStore(*spec, options));
      const std::string findings =
          AuditReportToJson(BuildAuditReport(absl::Now(), {scanned}, {}))
              .dump();
      ASSIGN_OR_RETURN(
          v1::UploadArtifactResponse uploaded,
          ExportAndUpload(
              task,
              [&](ByteSink& sink) -> absl::StatusOr<ConnectorResult> {
                RETURN_IF_ERROR(sink.Write(findings));
                ConnectorResult scan;
                scan.record_count = scanned.records_scanned();
                return scan;
              },
              &result));
      complete->set_artifact_sha256(uploaded.sha256());
      break;
    }
  }
  complete->set_record_count(result.record_count);
  for (const Identity& identity : result.discovered) {
    *complete->add_discovered_identities() =
        IdentityFromKey(identity.key, identity.value);
  }
  return absl::OkStatus();
}

absl::Status Worker::RunAtOpenDsrService(
    const v1::Task& task, TaskOperation operation, InFlight& flight,
    OpenDsrConnector& service, std::vector<Identity> identities,
    ConnectorResult* result, v1::CompleteTaskRequest* complete) {
  OpenDsrTask request;
  request.request_id = task.request_id();
  request.operation = operation;
  request.portability = task.request_type() == v1::PORTABILITY;
  switch (task.request_type()) {
    case v1::ACCESS:
      request.request_right = "access";
      break;
    case v1::PORTABILITY:
      request.request_right = "portability";
      break;
    case v1::ERASURE:
      request.request_right = "erasure";
      break;
    case v1::RECTIFICATION:
      request.request_right = "rectification";
      break;
    case v1::RESTRICTION:
      request.request_right = "restriction";
      break;
    case v1::OBJECTION:
      request.request_right = "objection";
      break;
    default:
      request.request_right = "access";
      break;
  }
  if (!task.regulation().empty()) request.regulation = task.regulation();
  request.submitted = absl::FromUnixMillis(task.submitted_unix_ms());
  request.identities = std::move(identities);
  for (const v1::FieldCorrection& correction : task.corrections()) {
    request.corrections.push_back(
        {correction.collection(), correction.field(), correction.value()});
  }
  if (operation != TaskOperation::kExport) {
    ASSIGN_OR_RETURN(*result,
                     service.Run(request, &flight.request_ended, nullptr,
                                 &flight.processor_status_changed));
    return absl::OkStatus();
  }
  // An OpenDSR service's results are fetched in full before the upload
  // stream opens, so the stream is not held open while the processor works.
  StringSink buffered;
  ASSIGN_OR_RETURN(ConnectorResult produced,
                   service.Run(request, &flight.request_ended, &buffered,
                               &flight.processor_status_changed));
  ASSIGN_OR_RETURN(v1::UploadArtifactResponse uploaded,
                   ExportAndUpload(
                       task,
                       [&](ByteSink& sink) -> absl::StatusOr<ConnectorResult> {
                         RETURN_IF_ERROR(sink.Write(buffered.text()));
                         return produced;
                       },
                       result));
  complete->set_artifact_sha256(uploaded.sha256());
  return absl::OkStatus();
}

absl::StatusOr<v1::UploadArtifactResponse> Worker::ExportAndUpload(
    const v1::Task& task,
    const std::function<absl::StatusOr<ConnectorResult>(ByteSink&)>& produce,
    ConnectorResult* result) {
  // A coordinator restart breaks the stream; the export is read-only, so it
  // is simply produced again.
  int backoff_ms = 100;
  while (true) {
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::minutes(30));
    TrackedCall tracked(*this, context, CallKind::kWait);
    v1::UploadArtifactResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::UploadArtifactRequest>> writer(
        stub_->UploadArtifact(&context, &response));
    v1::UploadArtifactRequest header;
    header.mutable_header()->set_worker_id(options_.worker_id);
    header.mutable_header()->set_task_id(task.task_id());
    header.mutable_header()->set_attempt(task.attempt());
    absl::Status exported;
    bool stream_broken = true;
    if (writer->Write(header)) {
      UploadSink sink(writer.get(), &upload_bytes_);
      absl::StatusOr<ConnectorResult> produced = produce(sink);
      if (produced.ok()) {
        *result = std::move(*produced);
        exported = sink.Flush();
      } else {
        exported = produced.status();
      }
      stream_broken = sink.broken();
    }
    if (!exported.ok() && !stream_broken) {
      // The export itself failed (the store, or a stop cancelled it):
      // cancel the stream so the coordinator keeps no partial export.
      context.TryCancel();
      writer->Finish();
      return exported;
    }
    if (!stream_broken) writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (status.ok() && exported.ok()) return response;
    if (!status.ok() && !Retryable(status)) return FromGrpcStatus(status);
    if (!SleepFor(std::chrono::milliseconds(backoff_ms))) {
      return absl::CancelledError("worker stopping");
    }
    backoff_ms = std::min(backoff_ms * 2, 2000);
  }
}

}  // namespace dsar
