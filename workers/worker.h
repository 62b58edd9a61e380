#ifndef DSAR_WORKERS_WORKER_H_
#define DSAR_WORKERS_WORKER_H_

// The worker runtime: long-polls the coordinator for tasks of the stores it
// serves, runs them through connectors, heartbeats their leases, streams
// exports back and reports the outcome. Survives coordinator restarts: calls
// wait for the channel to come back, and completions are retried while the
// lease is still ours.
//
// Stopping (Stop()): every wait ends at once, whatever it waits for: polls,
// heartbeats and uploads in flight are cancelled, back-off sleeps wake, and
// connector work is cancelled (Connector, "Cancellation"). A task whose
// work finished may still report it for up to kReportGrace; every other task
// in flight is abandoned without a report, logged as "stopping: abandoned
// task X (lease will expire)": its lease expires on the coordinator, which
// runs it again. So Run() returns within about kReportGrace of Stop(),
// plus whatever a connector cannot interrupt (finishing a committed log
// rewrite).

#include <grpcpp/client_context.h>
#include <grpcpp/security/credentials.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "dsar/v1/worker.grpc.pb.h"
#include "inventory/inventory.h"
#include "model/task_operation.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "workers/connectors/connector.h"
#include "workers/connectors/opendsr.h"

namespace dsar {

// The operation `task` asks for, parsed from its wire name. One this worker
// does not know (a dsard newer than the worker) would fail the same way on
// every attempt, so it is INVALID_ARGUMENT named Connector.InvalidValue
// (permanent: the workflow does not retry it), with a message naming the
// operation and the ones this worker knows.
absl::StatusOr<TaskOperation> TaskOperationToRun(const v1::Task& task);

class Worker {
 public:
  struct Options {
    std::string coordinator_address;
    // How to reach the coordinator; null: plaintext. Under mutual TLS the
    // coordinator takes the worker's id from its certificate's CN.
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    std::string worker_id;
    std::vector<std::string> stores;  // Must all be in the inventory.
    int concurrency = 4;              // Tasks run at once.
    // Tasks one thread takes at once when more are ready than polls wait
    // (PollTaskRequest.max_tasks): it runs them one after another and
    // reports them in one message. 1 to 16; 1 turns batches off.
    int max_tasks_per_poll = 8;
    int poll_wait_ms = 20000;
    // Testing aid: each task waits this long before touching the store, so
    // tests can kill a worker while it holds a lease.
    int debug_task_delay_ms = 0;
  };

  // INVALID_ARGUMENT when a store is unknown or has no connector.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(
      Options options, std::shared_ptr<const Inventory> inventory);
  ~Worker();

  // How long a task that finished its work before a stop may take to
  // report it to the coordinator before the report is cancelled too.
  static constexpr std::chrono::milliseconds kReportGrace{2000};
  // How long a completion waits for the next task (CompleteTaskRequest.next)
  // before the worker goes back to PollTask: short, so that a stop finds
  // the report answered well within kReportGrace.
  static constexpr int kNextTaskWaitMs = 500;
  // A batch's reports wait for its last task, unless the batch has run
  // this long: then the tasks finished so far are reported at once, so
  // that slow tasks do not hold back the requests of quick ones.
  static constexpr std::chrono::milliseconds kBatchReportAfter{20};

  // Runs until Stop() is called, then ends every call and task as the
  // header comment says and returns once its threads have. Call once.
  void Run();
  // Asks Run() to end; returns at once. Thread-safe, idempotent, may be
  // called before Run(). Not async-signal-safe: call it from a thread that
  // waits for the signal (dsar-worker uses sigwait), not a signal handler.
  void Stop();

  // --- Health and metrics (docs/operations.md). Thread-safe. ---
  // The worker's counters, gauges and histograms (dsar_worker_*).
  const std::shared_ptr<prometheus::Registry>& metrics_registry() const {
    return registry_;
  }
  // UNAVAILABLE once stopping (the process is on its way out).
  absl::Status Liveness() const;
  // Liveness, and connected to the coordinator (the channel is READY);
  // UNAVAILABLE naming the channel's state otherwise.
  absl::Status Readiness() const;

 private:
  struct InFlight {
    std::string task_id;
    uint32_t attempt = 0;
    std::atomic<bool> lease_lost{false};
    // Set with lease_lost when dsard says the task's request has ended
    // (kRequestEndedMetadataKey on the heartbeat's refusal): work at an
    // OpenDSR processor is then withdrawn, not left for a next attempt.
    std::atomic<bool> request_ended{false};
    // Set when a heartbeat says an OpenDSR processor called back about the
    // task; the connector then polls at once (and clears it).
    std::atomic<bool> processor_status_changed{false};
  };

  // Registers a call's context while the call is in flight so that a stop
  // can cancel it; cancels it at once when the stop has already reached
  // calls of its kind. Destroy it before the context.
  class TrackedCall;
  enum class CallKind {
    kWait,    // Poll, heartbeat, upload: cancelled as soon as we stop.
    kReport,  // CompleteTask / FailTask: cancelled after kReportGrace.
  };
  // One PollLoop thread's ReportTasks stream (defined in worker.cc).
  class ReportStream;

  Worker(Options options, std::shared_ptr<const Inventory> inventory);
  // Cancels the calls in flight of `kind` (and kWait ones) and every later
  // call of those kinds.
  void CancelCalls(CallKind kind);
  // Starts tracking `context` as a call of `kind` (TryCancel at once when
  // the stop has reached that kind); Untrack before destroying it.
  void Track(grpc::ClientContext* context, CallKind kind);
  void Untrack(grpc::ClientContext* context);
  // A task this worker holds the lease of, from its poll to its report.
  struct Held;
  void PollLoop();
  void HeartbeatLoop();
  // Runs `tasks` (leased together) one after another and reports their
  // outcomes over `reports`, in one message unless the batch runs longer
  // than kBatchReportAfter; the last message also asks for the next tasks
  // (CompleteTaskRequest.next), which are returned.
  std::vector<v1::Task> ExecuteBatch(std::vector<v1::Task> tasks,
                                     ReportStream& reports);
  // Starts holding `task`: heartbeated from now on.
  std::unique_ptr<Held> Hold(v1::Task task);
  // Runs a held task; sets its report unless nothing is to be reported
  // (stopping, or the lease is gone).
  void RunHeld(Held& held);
  // Sends the reports of `held` in one message, asking for the next tasks
  // when `next` is not null.
  void SendReports(const std::vector<Held*>& held, std::vector<v1::Task>* next,
                   ReportStream& reports);
  // Stops holding a task: logs and counts its outcome.
  void Release(Held& held);
  // The PollTaskRequest of this worker, waiting up to `wait_ms`.
  v1::PollTaskRequest PollRequest(int wait_ms) const;
  // Runs the connector operation; on success fills `complete`.
  absl::Status RunOperation(const v1::Task& task, InFlight& flight,
                            v1::CompleteTaskRequest* complete);
  // Streams what `produce` writes as the task's artifact; produces it
  // again when the stream breaks.
  absl::StatusOr<v1::UploadArtifactResponse> ExportAndUpload(
      const v1::Task& task,
      const std::function<absl::StatusOr<ConnectorResult>(ByteSink&)>& produce,
      ConnectorResult* result);
  // RunOperation for an OpenDSR service (workers/connectors/opendsr.h).
  absl::Status RunAtOpenDsrService(const v1::Task& task,
                                   TaskOperation operation, InFlight& flight,
                                   OpenDsrConnector& service,
                                   std::vector<Identity> identities,
                                   ConnectorResult* result,
                                   v1::CompleteTaskRequest* complete);
  // Sends `message` (a report and those in its `more`) until it is
  // answered, every lease in `flights` (one per report) is lost or we
  // stop: over `reports`, or as unary calls when dsard has no ReportTasks.
  // `statuses` gets one status per report, as the unary call's; `next` the
  // tasks leased for the first report's `next`.
  void Report(ReportStream& reports, const v1::TaskReport& message,
              const std::vector<InFlight*>& flights,
              std::vector<grpc::Status>* statuses, std::vector<v1::Task>* next);
  // `message` over `reports`, once: the transport's error, or OK with
  // `statuses` and `next` filled (the first status when all are
  // retryable: dsard dropped the message as it stopped).
  grpc::Status SendOnStream(ReportStream& reports,
                            const v1::TaskReport& message,
                            std::vector<grpc::Status>* statuses,
                            std::vector<v1::Task>* next);
  // `report` (its `more` ignored) as one unary CompleteTask or FailTask
  // call; `next`, when not null, gets the tasks leased for it.
  grpc::Status ReportUnary(const v1::TaskReport& report,
                           std::vector<v1::Task>* next);
  // Calls `send` until its status is not retryable, every lease in
  // `flights` is lost, or we stop.
  grpc::Status Retrying(const std::vector<InFlight*>& flights,
                        const std::function<grpc::Status()>& send);
  // Waits up to `duration` or until Stop(); false when stopping.
  bool SleepFor(std::chrono::milliseconds duration);
  bool stopping() const { return stopping_.load(); }

  Options options_;
  std::shared_ptr<const Inventory> inventory_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::map<std::string, std::unique_ptr<Connector>> connectors_;

  // Set by Stop(); also the connectors' cancel flag.
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  // Notified by Stop() and whenever a task leaves in_flight_.
  std::condition_variable stop_cv_;
  std::map<std::string, std::shared_ptr<InFlight>>
      in_flight_;  // GUARDED_BY(mu_)

  std::mutex calls_mu_;
  std::map<grpc::ClientContext*, CallKind> calls_;  // GUARDED_BY(calls_mu_)
  bool cancel_waits_ = false;                       // GUARDED_BY(calls_mu_)
  bool cancel_reports_ = false;                     // GUARDED_BY(calls_mu_)
  std::atomic<int64_t> lease_duration_ms_{30000};
  // Set when a task's lease is shorter than lease_duration_ms_ was: the
  // heartbeat loop's wait ends early. GUARDED_BY(mu_).
  bool lease_shortened_ = false;
  // Set when dsard answered ReportTasks with UNIMPLEMENTED (an older
  // dsard): reports go as unary calls from then on.
  std::atomic<bool> unary_reports_{false};

  // Metrics; the registry outlives the references into it.
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& tasks_;
  prometheus::Family<prometheus::Histogram>& task_seconds_;
  prometheus::Family<prometheus::Counter>& polls_;
  prometheus::Counter& upload_bytes_;
  prometheus::Gauge& in_flight_tasks_;
  prometheus::Histogram& batch_tasks_;
};

}  // namespace dsar

#endif  // DSAR_WORKERS_WORKER_H_
