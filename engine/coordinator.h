#ifndef DSAR_ENGINE_COORDINATOR_H_
#define DSAR_ENGINE_COORDINATOR_H_

// The coordinator's engine: every state change goes through one commit loop
// (docs/commit-loop.md). Callers on any thread hand it a command and block
// until the command's group has been written to RocksDB with the WAL synced;
// only then do they get an answer. Reads go straight to RocksDB.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit_scan/report.h"
#include "common/clock.h"
#include "dsar/internal/records.pb.h"
#include "dsar/v1/admin.pb.h"
#include "dsar/v1/opendsr.pb.h"
#include "dsar/v1/requests.pb.h"
#include "dsar/v1/worker.pb.h"
#include "engine/bundle_reader.h"
#include "engine/cron_schedule.h"
#include "engine/download_url.h"
#include "engine/engine_metrics.h"
#include "engine/interpreter.h"
#include "engine/workflow_definition.h"
#include "inventory/inventory.h"
#include "model/task_operation.h"
#include "model/worker_protocol.h"
#include "nlohmann/json.hpp"
#include "prometheus/collectable.h"
#include "storage/audit/audit_log.h"
#include "storage/bundle_writer.h"
#include "storage/state_store.h"

namespace dsar {

// Free space dsard needs on the state's filesystem to start at all (RocksDB
// writes a new WAL and MANIFEST and may flush while opening).
inline constexpr uint64_t kMinFreeBytesToStart = uint64_t{16} << 20;

class Coordinator {
 public:
  struct Options {
    std::string data_dir;  // RocksDB under data_dir/state.
    // Exports (artifacts/) and bundles (bundles/); default data_dir. On its
    // own volume, exports cannot fill the disk the state lives on.
    std::string files_dir;
    // New work (requests, export uploads) is refused with RESOURCE_EXHAUSTED
    // while the state's or the files' filesystem has less free; reads and
    // work in flight go on, and intake resumes once space returns.
    uint64_t disk_reserve_bytes = uint64_t{512} << 20;
    // Where time comes from; nullptr: the system clock. Not owned; must
    // outlive the coordinator. Tests pass a FakeClock and wake the loop with
    // any call after moving it.
    Clock* clock = nullptr;
    std::shared_ptr<const WorkflowDefinition> definition;  // For new requests.
    std::shared_ptr<const Inventory> inventory;
    absl::Duration lease_duration = absl::Seconds(30);
    int max_commands_per_group = 4096;
    // Audit log: checkpoint origin, and where the Ed25519 signing key
    // (checkpoint.key, public half checkpoint.key.pub) and the HMAC key for
    // subject identifiers live; both are created on first start.
    std::string audit_origin = "dsar.local/audit";
    std::string keys_dir;  // Default: data_dir/keys.
    // Key-encryption keys wrapping each request's data key (storage/
    // key_ring.h); not owned. nullptr: a FileKeyRing in keys_dir/kek.
    // Keep keys_dir off the data volume: a copy of the data directory alone
    // then reveals nothing, and destroyed data keys stay destroyed.
    KeyEncryptionKeys* key_ring = nullptr;
    // File outside data_dir holding the last checkpoint the audit log handed
    // out; opening an older or forked log fails (storage/audit/audit_log.h).
    // Empty: none.
    std::string checkpoint_witness;

    // Request lifecycle (engine/coordinator_lifecycle.cc).
    std::string time_zone = "UTC";  // IANA zone deadlines are computed in.
    // Requests created without `verified` wait for the subject's one-time
    // code when true; when false they are recorded as verified by
    // configuration (for deployments whose every caller verifies).
    bool verify_unattested = true;
    absl::Duration verification_ttl = absl::Hours(72);
    int verification_attempts = 5;
    absl::Duration deadline_notice = absl::Hours(7 * 24);  // "Deadline near".
    // Art. 15 answer templates (response.md/.html.mustache) for bundles.
    std::string templates_dir;
    std::string notify_file;     // JSON-lines sink; empty: none.
    std::string webhook_url;     // Webhook sink; empty: none.
    std::string webhook_secret;  // HMAC key for the webhook signature.
    // dsar as an OpenDSR processor (docs/opendsr.md): the PEM private key
    // of the processor's signing certificate, which signs status callbacks
    // to controllers; its domain (X-OpenDSR-Processor-Domain); the CA file
    // controllers' HTTPS certificates are checked against (empty: the
    // system's). No key: controllers must poll (callbacks are refused).
    std::string opendsr_processor_key_pem;
    std::string opendsr_processor_domain;
    std::string opendsr_callback_ca_file;

    // Operator alerts. A worker counts as live while it was heard from
    // (poll, heartbeat, report) within `worker_silence_after`; a task READY
    // for `unserved_alert_after` while no live worker serves its store
    // raises an alert (event, notification, shown on the step and by
    // ListWorkers).
    absl::Duration worker_silence_after = absl::Seconds(90);
    absl::Duration unserved_alert_after = absl::Minutes(5);

    // Retention (engine/coordinator_retention.cc, docs/retention.md). A
    // bundle is deleted `bundle_retention` after its request completed; the
    // personal data of a closed request (its data key, so identities,
    // corrections, free text and files) is destroyed `record_retention`
    // after it closed. The purge runs every `purge_interval` (zero: only
    // when asked, AdminService.Purge) and handles at most
    // `purge_batch_limit` requests per run.
    absl::Duration bundle_retention = absl::Hours(30 * 24);
    absl::Duration record_retention = absl::Hours(3 * 365 * 24);
    absl::Duration purge_interval = absl::Hours(24);
    int purge_batch_limit = 10000;

    // Audit scans (docs/audit-scan-runs.md): a cron expression in UTC
    // (engine/cron_schedule.h), e.g. "0 1 * * *"; empty: only on demand.
    std::string audit_scan_schedule;
    // A run's report (its findings) is destroyed this long after the run
    // ended, by the purge; the destruction is an event on the run.
    absl::Duration audit_report_retention = absl::Hours(90 * 24);

    // How long a signed download URL works (engine/coordinator_delivery.cc).
    absl::Duration download_url_ttl = absl::Hours(1);

    // Liveness (engine/coordinator_metrics.cc): the commit loop counts as
    // stuck once one turn has run this long.
    absl::Duration loop_stall_limit = absl::Seconds(60);
  };

  // Opens the state, recovers the live requests (not the finished history)
  // and starts the commit loop and the bundler. Everything it writes holds
  // personal data, so it sets the process umask to 077 and the data
  // directory to mode 0700: files 0600, directories 0700.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(Options options);
  // Stops the loop; pending callers get UNAVAILABLE.
  ~Coordinator();

  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // --- Public service. Each answers after its change is durable. ---
  // INVALID_ARGUMENT / UNIMPLEMENTED from ValidateCreateRequest; with an
  // idempotency key already used: the earlier request, or ALREADY_EXISTS when
  // the key was used for a different request.
  absl::StatusOr<v1::Request> CreateRequest(
      const v1::CreateRequestRequest& request, const std::string& actor = "");
  // CreateRequest without waiting: `done` gets what it would have returned,
  // once durable, on the commit loop's thread (on the caller's for a request
  // refused at once; UNAVAILABLE when dsard stops first). `done` must not
  // block. For DsarService.CreateRequest (engine/grpc_services.cc).
  void CreateRequestAsync(
      const v1::CreateRequestRequest& request, const std::string& actor,
      std::function<void(absl::StatusOr<v1::Request>)> done);
  // NOT_FOUND, or FAILED_PRECONDITION when already terminal.
  absl::StatusOr<v1::Request> CancelRequest(
      const v1::CancelRequestRequest& request, const std::string& actor = "");
  // See DsarService.RetryRequest. INVALID_ARGUMENT for an unknown store.
  absl::StatusOr<v1::Request> RetryRequest(
      const v1::RetryRequestRequest& request, const std::string& actor = "");
  // The subject's one-time code (see DsarService.VerifyIdentity).
  absl::StatusOr<v1::Request> VerifyIdentity(
      const v1::VerifyIdentityRequest& request);
  // See DsarService.ExtendDeadline.
  absl::StatusOr<v1::Request> ExtendDeadline(
      const v1::ExtendDeadlineRequest& request, const std::string& actor = "");
  // See DsarService.PauseRequest / ResumeRequest.
  absl::StatusOr<v1::Request> PauseRequest(
      const v1::PauseRequestRequest& request, const std::string& actor = "");
  absl::StatusOr<v1::Request> ResumeRequest(
      const v1::ResumeRequestRequest& request, const std::string& actor = "");
  // Workers seen since start-up, most recent first, with their leases.
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers();
  // Runs the retention purge now (a dry run changes nothing). Each removal
  // is an event on its request (bundle_purged, personal_data_destroyed).
  absl::StatusOr<v1::PurgeResponse> Purge(const v1::PurgeRequest& request,
                                          const std::string& actor = "");
  // Makes a new key-encryption key active (and re-wraps every data key
  // under it when asked). Data wrapped under older keys stays readable.
  absl::StatusOr<v1::RotateKeysResponse> RotateKeys(
      const v1::RotateKeysRequest& request);
  absl::StatusOr<v1::Request> GetRequest(const std::string& id) const;
  absl::StatusOr<v1::ListRequestsResponse> ListRequests(
      const v1::ListRequestsRequest& request) const;
  absl::StatusOr<v1::ListEventsResponse> ListEvents(
      const v1::ListEventsRequest& request) const;

  // --- Delivery of the bundle (engine/coordinator_delivery.cc,
  // docs/delivery.md). ---
  // A signed URL for the bundle of a COMPLETED ACCESS or PORTABILITY request,
  // valid for options.download_url_ttl; audited (download_url_issued) before
  // it is returned. NOT_FOUND for an unknown id; FAILED_PRECONDITION naming
  // why there is no bundle to give (type, status, not bundled, purged).
  absl::StatusOr<v1::CreateDownloadUrlResponse> CreateDownloadUrl(
      const v1::CreateDownloadUrlRequest& request,
      const std::string& actor = "");
  // Moves the request's download generation on, so every URL issued so far
  // is refused (download_urls_revoked, with the reason). INVALID_ARGUMENT
  // without a reason, NOT_FOUND, FAILED_PRECONDITION for a request type that
  // has no bundle.
  absl::StatusOr<v1::RevokeDownloadUrlsResponse> RevokeDownloadUrls(
      const v1::RevokeDownloadUrlsRequest& request,
      const std::string& actor = "");
  // What a verified download sends: the header, then the reader's bytes.
  struct BundleDownload {
    v1::DownloadBundleHeader header;
    std::unique_ptr<BundleReader> reader;
  };
  // Verifies the URL `request` carries (format, signature, expiry, then the
  // request's generation) and opens the bundle. INVALID_ARGUMENT (malformed),
  // PERMISSION_DENIED (bad signature, checked before the request is looked
  // up), FAILED_PRECONDITION (expired, revoked, bundle purged), NOT_FOUND
  // (no such request), DATA_LOSS (the bundle's size is not the recorded
  // one). Reads only; any thread.
  absl::StatusOr<BundleDownload> OpenDownload(
      const v1::DownloadBundleRequest& request) const;
  // Audits a download of `request` that sent all `bytes` (bundle_downloaded).
  absl::Status RecordDownload(const v1::DownloadBundleRequest& request,
                              int64_t bytes, const std::string& actor);

  // --- Manual stores' work items (engine/coordinator_work_items.cc,
  // docs/manual-stores.md). ---
  absl::StatusOr<v1::ListWorkItemsResponse> ListWorkItems(
      const v1::ListWorkItemsRequest& request);
  // See DsarService.CompleteWorkItem / FailWorkItem. The item is leased to
  // "work-item:<actor>" and answered through CompleteTask / FailTask, so a
  // manual step ends exactly as a worker's does.
  absl::StatusOr<v1::Request> CompleteWorkItem(
      const v1::CompleteWorkItemRequest& request, const std::string& actor);
  absl::StatusOr<v1::Request> FailWorkItem(
      const v1::FailWorkItemRequest& request, const std::string& actor);

  // --- Worker protocol. ---
  // Tasks leased to one poll: none when nothing became ready in time, more
  // than one only when the poll asked for it (PollTaskRequest.max_tasks).
  using LeasedTasks = std::vector<v1::Task>;
  // Leases tasks of `request.stores`, waiting up to wait_ms for one: one,
  // and up to max_tasks when more are ready than polls wait for them.
  // `cancelled` is polled while waiting (the worker hung up).
  absl::StatusOr<LeasedTasks> PollTask(const v1::PollTaskRequest& request,
                                       const std::function<bool()>& cancelled);
  // Returns the new lease expiry (unix ms). FAILED_PRECONDITION when the
  // caller does not hold the lease of that attempt, carrying the payload
  // kRequestEndedPayload (the request's status name) when that is because
  // the task's request has ended; NOT_FOUND for an unknown task.
  absl::StatusOr<int64_t> Heartbeat(const v1::HeartbeatRequest& request);
  static constexpr char kRequestEndedPayload[] =
      "type.dsar.dev/dsar.RequestEnded";
  absl::Status CompleteTask(const v1::CompleteTaskRequest& request);
  // CompleteTask, then PollTask with `next` in the same loop command, so
  // that the completion and the next lease share one commit group. An error
  // is the completion's (nothing changed); a `next` that cannot be served
  // (invalid, or the worker hung up) gives no task, the completion
  // recorded.
  absl::StatusOr<LeasedTasks> CompleteTaskAndPoll(
      const v1::CompleteTaskRequest& request, const v1::PollTaskRequest& next,
      const std::function<bool()>& cancelled);
  absl::Status FailTask(const v1::FailTaskRequest& request);
  // What ReportTasksAsync answers: one status per report, in order (each
  // what CompleteTask or FailTask would have returned), and the tasks
  // leased for `next`.
  struct ReportsAnswer {
    std::vector<absl::Status> statuses;
    LeasedTasks next_tasks;
  };
  // Records `reports` (each a completion or a failure, TaskReport.more
  // unset) in one loop command, in order: a report refused leaves the
  // others standing. Then, when `next` is given and the first report is an
  // accepted completion, polls with `next` as CompleteTaskAndPoll does.
  // `done` gets the answer once it is durable, on the commit-loop thread
  // (on the caller's for reports refused at once, and with every status
  // UNAVAILABLE on the stopping thread when dsard stops first); it must
  // not block. For WorkerService.ReportTasks (engine/grpc_services.cc).
  // INVALID_ARGUMENT for every report when there are none or more than
  // kMaxReportsPerBatch. Returns what the caller calls when its worker
  // hangs up: the poll for `next` is abandoned, so no task is leased to
  // it, and `done` is not called any more (a no-op once answered).
  std::function<void()> ReportTasksAsync(
      std::vector<v1::TaskReport> reports, const v1::PollTaskRequest* next,
      std::function<void(ReportsAnswer)> done);
  struct ArtifactUpload {
    std::string path;        // Where the export of that attempt is stored.
    std::string request_id;  // Whose: its data key encrypts the export.
  };
  // Checks the lease as Heartbeat does and says where the export of that
  // attempt is to be stored.
  absl::StatusOr<ArtifactUpload> ArtifactPathForUpload(
      const v1::ArtifactHeader& header);

  // OpenDSR status callbacks (engine/coordinator_opendsr.cc,
  // proto/dsar/v1/opendsr.proto): records the callback on the task whose
  // processor request it names and marks that task for
  // TakeProcessorStatusHint. NOT_FOUND when no live task has it.
  absl::StatusOr<v1::RecordProcessorStatusResponse> RecordProcessorStatus(
      const v1::RecordProcessorStatusRequest& request);
  // dsar as an OpenDSR processor (engine/coordinator_opendsr_processor.cc,
  // OpenDsrProcessorService in proto/dsar/v1/opendsr.proto). `actor` is
  // the controller as the gateway names it.
  absl::StatusOr<v1::ProcessorRequestStatus> CreateProcessorRequest(
      const v1::CreateProcessorRequestRequest& request,
      const std::string& actor);
  absl::StatusOr<v1::ProcessorRequestStatus> GetProcessorRequest(
      const v1::ProcessorRequestRef& ref) const;
  absl::StatusOr<v1::ProcessorRequestStatus> CancelProcessorRequest(
      const v1::ProcessorRequestRef& ref, const std::string& actor);

  // Audit scans (engine/coordinator_audit_scan.cc,
  // docs/audit-scan-runs.md): starts a run (a request of type AUDIT_SCAN
  // over every store a scan reaches), FAILED_PRECONDITION while one runs;
  // the report of a run, assembled from its stores' findings.
  absl::StatusOr<v1::Request> RunAuditScan(const std::string& actor);
  absl::StatusOr<v1::GetAuditReportResponse> GetAuditReport(
      const v1::GetAuditReportRequest& request) const;

  // True once per recorded callback of `task_id`, for the Heartbeat answer.
  // Not durable: a restarted dsard forgets hints, and the worker's polling
  // carries on. Any thread.
  bool TakeProcessorStatusHint(const std::string& task_id);

  const Inventory& inventory() const { return *options_.inventory; }
  const AuditLog& audit_log() const { return *audit_; }
  // The data key of a request's files (exports, bundle): AES-256-GCM via
  // storage/encrypted_file.h. NOT_FOUND when the request has none (unknown,
  // or its personal data was destroyed). Any thread.
  absl::StatusOr<std::string> RequestDataKey(
      const std::string& request_id) const;
  // RESOURCE_EXHAUSTED naming the directory when the state's or the files'
  // filesystem is below options.disk_reserve_bytes; `what` starts the
  // message ("new request refused"). Any thread.
  absl::Status CheckRoomForNewWork(absl::string_view what) const;
  // Path of the checkpoint public key auditors verify with.
  std::string public_key_path() const;

  // --- Health and metrics (engine/coordinator_metrics.cc,
  // docs/operations.md). Any thread; none waits for the commit loop for
  // more than a second. ---
  // OK while the commit loop runs and is waiting for work or has been on
  // its current turn for less than options.loop_stall_limit; UNAVAILABLE
  // saying which otherwise.
  absl::Status Liveness() const;
  // Liveness, not stopping, and room for new work (CheckRoomForNewWork):
  // UNAVAILABLE or RESOURCE_EXHAUSTED saying why not.
  absl::Status Readiness();
  // What /metrics serves: the loop's counters and histograms (a registry
  // callers may add to, see metrics_registry) and the gauges over the live
  // state, from a snapshot the loop builds when a scrape asks (waiting up
  // to a second; a stuck loop's last snapshot is served with its age). The
  // collectables refer to this coordinator: drop them before it.
  std::vector<std::shared_ptr<prometheus::Collectable>> MetricsCollectables();
  prometheus::Registry& metrics_registry() { return *metrics_.registry(); }

 private:
  struct LiveRequest {
    internal::RequestRecord record;
    v1::RequestStatus persisted_status = v1::REQUEST_STATUS_UNSPECIFIED;
    // What PutRequest sealed last, so unchanged personal fields are not
    // sealed again at each of the request's ~17 writes.
    SealedPersonalFields last_sealed;
    std::shared_ptr<const WorkflowDefinition> definition;
    bool builtin_in_flight = false;
  };
  struct TaskRef {
    std::string request_id;
    int map = 0;
    int item = 0;
  };
  struct BuiltinJob {
    std::string request_id;
    uint32_t attempt = 0;
    BundleInput input;
    std::string zip_path;
  };
  // The writes and answers of one commit group.
  struct Txn {
    explicit Txn(StateBatch b, int64_t now)
        : batch(std::move(b)), now_ms(now) {}
    StateBatch batch;
    int64_t now_ms;
    absl::flat_hash_set<std::string> dirty;
    absl::flat_hash_map<std::string, std::string> new_idempotency_keys;
    std::vector<std::function<void()>> replies;
    std::vector<BuiltinJob> builtin_jobs;
    std::vector<internal::Notification>
        notifications;  // Handed over after commit.
    // Erasures completed in this group: the person's earlier answers go
    // (DestroyEarlierCopies) before the group commits.
    std::vector<std::string> completed_erasures;
    bool scrub = false;  // A data key was destroyed: StateStore::Scrub.
  };
  using Command = std::function<void(Txn&)>;
  enum class TimerKind {
    kLease,
    kRetry,
    kRequest,
    kDeadline,
    kUnserved,
    kPurge,
    kAuditScan
  };
  struct Timer {
    int64_t due_ms;
    TimerKind kind;
    std::string request_id;
    int map;
    int item;
    bool operator>(const Timer& other) const { return due_ms > other.due_ms; }
  };
  struct PollSlot;
  struct Poller {
    std::string worker_id;
    std::vector<std::string> stores;
    int64_t deadline_ms;  // System clock (transport time, not engine time).
    std::shared_ptr<PollSlot> slot;
    int max_tasks = 1;  // 1..kMaxTasksPerPoll.
  };

  explicit Coordinator(Options options);

  absl::Status OpenAuditLog();
  absl::Status StartNotifier();

  // Lifecycle helpers (engine/coordinator_lifecycle.cc). REQUIRES: commit
  // loop thread.
  // Sets the receipt facts of a new request: deadline, verification.
  void ReceiveRequest(Txn& txn, LiveRequest& live,
                      const v1::CreateRequestRequest& request);
  // Queues a notification in the outbox, in this group's batch.
  void QueueNotification(
      Txn& txn, const LiveRequest& live, const std::string& kind,
      const nlohmann::json& extra = nlohmann::json::object());
  // Notifications for a status change caused by a transition.
  void NotifyStatusChange(Txn& txn, const LiveRequest& live,
                          v1::RequestStatus before);
  // Issues the one-time code when the request waits for verification.
  void IssueVerificationCode(Txn& txn, LiveRequest& live);
  void ScheduleDeadlineNotices(LiveRequest& live);
  // Duplicate detection: the open request `record` repeats (same right,
  // regulation, stores and identities; at least as verified; not stopped
  // in NEEDS_ATTENTION), if any; and index maintenance (a request waiting
  // for the one it is linked to is indexed under that one).
  std::optional<std::string> OpenDuplicateOf(
      const internal::RequestRecord& record) const;
  void IndexOpenRequest(const internal::RequestRecord& record);
  void UnindexOpenRequest(const v1::Request& request);
  // Links `duplicate` to the open `original`, whose outcome it waits for
  // (both audited).
  void LinkDuplicate(Txn& txn, LiveRequest& duplicate, LiveRequest& original);
  // `original` just ended: the requests linked to it complete with it or
  // run on their own.
  void ResolveLinked(Txn& txn, const v1::Request& original);
  void FireDeadlineNotice(Txn& txn, LiveRequest& live);
  absl::Status Recover();
  // Removes exports left behind by a crash between a bundle's commit and
  // their removal (requests COMPLETED, or no longer known).
  void SweepBundledExports();
  absl::StatusOr<std::shared_ptr<const WorkflowDefinition>> DefinitionFor(
      const std::string& version);

  // Queues `command` for the loop; false when stopping.
  bool Enqueue(Command command);
  // Runs `fn` on the loop; answers after the group that ran it committed.
  template <typename T>
  absl::StatusOr<T> RunInLoop(std::function<absl::StatusOr<T>(Txn&)> fn);
  // RunInLoop without waiting: `done` gets what it would have returned, on
  // the loop's thread once the group committed, or UNAVAILABLE when dsard
  // stops first (on the caller's thread or the stopping one).
  template <typename T>
  void RunInLoopAsync(std::function<absl::StatusOr<T>(Txn&)> fn,
                      std::function<void(absl::StatusOr<T>)> done);

  void RunCommitLoop();
  void CommitGroup(Txn& txn);
  // Metrics (engine/coordinator_metrics.cc).
  class SnapshotGauges;
  // Builds the snapshot of the live state and hands it to waiting
  // scrapes. REQUIRES: commit loop thread, or before it starts.
  void PublishSnapshot();
  // Asks the loop for a new snapshot and waits up to `wait` for it; the
  // newest one there is when it does not come.
  std::shared_ptr<const EngineSnapshot> FreshSnapshot(absl::Duration wait);
  void FireDueTimers(Txn& txn);
  void DispatchToPollers(Txn& txn);
  void RunBundler();

  // Loop-thread helpers. REQUIRES: called on the commit loop thread.
  void Mutate(
      Txn& txn, LiveRequest& live,
      const std::function<void(Interpreter&, internal::RequestRecord*)>& fn);
  void AppendEvents(Txn& txn, LiveRequest& live,
                    std::vector<EventDraft> drafts);
  void Schedule(Txn& txn, LiveRequest& live);
  void PushTimer(Timer timer);
  std::optional<v1::Task> TryLease(Txn& txn,
                                   const std::vector<std::string>& stores,
                                   const std::string& worker_id);
  // The live request `id`; NOT_FOUND when there is none, FAILED_PRECONDITION
  // naming its status when it has finished.
  absl::StatusOr<LiveRequest*> FindUnfinished(const std::string& id);
  // Any request, live or closed, to append events to (delivery, purge).
  // A closed request is loaded into live_ for this commit group only:
  // CommitGroup writes it and drops it again since its status is terminal.
  // NOT_FOUND when no request has the id. REQUIRES: commit loop thread.
  absl::StatusOr<LiveRequest*> FindForEvents(Txn& txn, const std::string& id);
  // Finds the leased item a worker call names; FAILED_PRECONDITION when the
  // caller does not hold it.
  absl::StatusOr<std::pair<LiveRequest*, int>> FindLeasedItem(
      const std::string& task_id, uint32_t attempt,
      const std::string& worker_id);
  // PollTask's checks of a poll: worker id, stores known and not manual.
  absl::Status ValidatePoll(const v1::PollTaskRequest& request) const;
  // Registers a validated poll; DispatchToPollers fulfils `slot`.
  // REQUIRES: commit loop thread.
  void AddPoller(Txn& txn, const v1::PollTaskRequest& request,
                 std::shared_ptr<PollSlot> slot);
  // Waits until `slot` is fulfilled; CANCELLED (the slot abandoned) once
  // `cancelled` says the worker hung up.
  static absl::StatusOr<LeasedTasks> WaitForPoll(
      PollSlot& slot, const std::function<bool()>& cancelled);
  // ReportTasksAsync's work; also returns the poll's slot (null when
  // `next` is absent or cannot be served, or the reports were refused at
  // once), which CompleteTaskAndPoll abandons when its caller hangs up.
  std::shared_ptr<PollSlot> StartReports(
      std::vector<v1::TaskReport> reports, const v1::PollTaskRequest* next,
      std::function<void(ReportsAnswer)> done);
  // A report's checks of itself alone (no state): CheckCompletion for a
  // completion; INVALID_ARGUMENT when it sets neither, or sets `more`.
  static absl::Status CheckReport(const v1::TaskReport& report);
  // CompleteInLoop or FailInLoop, as `report` says. REQUIRES: commit loop
  // thread.
  absl::Status ReportInLoop(Txn& txn, const v1::TaskReport& report);
  // CompleteTask's checks of the request alone (no state).
  static absl::Status CheckCompletion(const v1::CompleteTaskRequest& request);
  // FailTask's work in the loop.
  absl::StatusOr<bool> FailInLoop(Txn& txn, const v1::FailTaskRequest& request);
  // Records the completion. REQUIRES: commit loop thread.
  absl::StatusOr<bool> CompleteInLoop(Txn& txn,
                                      const v1::CompleteTaskRequest& request);
  v1::Task BuildTask(const LiveRequest& live, int map, int item) const;
  BuiltinJob BuildBundleJob(const LiveRequest& live) const;
  // Where a request's uploaded exports live until its bundle is committed.
  std::string ArtifactDir(const std::string& request_id) const;
  std::string ArtifactPath(const std::string& request_id, int map, int item,
                           uint32_t attempt) const;
  // CreateRequest, recording `origin` (may be null) on a new request;
  // `*created` (may be null) tells whether this call created it.
  absl::StatusOr<v1::Request> CreateRequestFrom(
      const v1::CreateRequestRequest& request, const std::string& actor,
      const v1::OpenDsrOrigin* origin, bool* created);
  // CreateRequest's checks before the loop: the request is valid, its
  // stores reachable with its identities, and there is room for new work.
  absl::Status CheckCreateRequest(
      const v1::CreateRequestRequest& request) const;
  absl::StatusOr<v1::Request> CreateInLoop(
      Txn& txn, const v1::CreateRequestRequest& request,
      const std::string& actor, const v1::OpenDsrOrigin* origin, bool* created);
  // The AUDIT_SCAN request over every store a scan reaches;
  // FAILED_PRECONDITION when none does or the inventory has no masking key.
  absl::StatusOr<v1::CreateRequestRequest> AuditScanRequest() const;
  // Every audit scan run, oldest first (a few hundred at most: a day's run
  // is purged after 90 days). Any thread.
  absl::StatusOr<std::vector<internal::RequestRecord>> AuditScanRuns() const;
  // FAILED_PRECONDITION naming the audit scan that has not ended, if any.
  // REQUIRES: commit loop thread.
  absl::Status CheckNoAuditScanRunning() const;
  // Reads options.audit_scan_schedule and sets the first timer: now, when
  // the last due time passed without a run (dsard was down), else the next
  // due time. Before the loop starts.
  absl::Status ScheduleAuditScans();
  void ScheduleNextAuditScan(int64_t after_ms);
  // The timer fired: schedules the next and starts a run unless one is
  // going (skipped, logged). REQUIRES: commit loop thread.
  void StartScheduledAuditScan(Txn& txn);
  // Appends the audit_report event (the findings' digest) when an audit
  // scan run has just ended.
  void RecordAuditReport(Txn& txn, LiveRequest& live, v1::RequestStatus before);
  // The report of the run `record` from its stores' findings (read and
  // checked against the digests its tasks reported). Any thread.
  absl::StatusOr<AuditReport> AssembleAuditReport(
      const internal::RequestRecord& record) const;
  // Queues a signed OpenDSR callback per status_callback_url when the
  // request's OpenDSR status differs from the one `before` reads as.
  void QueueOpenDsrCallbacks(Txn& txn, const LiveRequest& live,
                             v1::RequestStatus before);
  // True when a worker serving `store` was heard from recently enough.
  // REQUIRES: commit loop thread.
  bool StoreServed(const std::string& store, int64_t now_ms) const;
  // The item is READY past the alert time: raise the unserved-store alert
  // unless a live worker serves its store (then look again later).
  void CheckUnserved(Txn& txn, LiveRequest& live, int map, int item);
  // Leases the READY item to `worker_id` (attempt + 1, lease timer,
  // task_leased event) and returns its task.
  v1::Task LeaseItem(Txn& txn, LiveRequest& live, int map, int item,
                     const std::string& worker_id);
  // When a READY item's alert is due: for a manual store, its work item's
  // due time (WorkItemDueMs); otherwise once it waited
  // options.unserved_alert_after.
  int64_t AlertDueMs(const LiveRequest& live,
                     const internal::MapItem& item) const;

  // Manual stores' work items (engine/coordinator_work_items.cc).
  // ready_since + the store's due_within, never past the request's deadline
  // (the deadline alone when due_within is 0).
  int64_t WorkItemDueMs(const LiveRequest& live, const internal::MapItem& item,
                        const StoreSpec& spec) const;
  // Raises the overdue alert (event, owner and operator notification) once
  // the work item is past due; otherwise looks again at the due time.
  void CheckWorkItemDue(Txn& txn, LiveRequest& live, int map, int item,
                        const StoreSpec& spec);
  // The owner's evidence for a work item answered through CompleteTask or
  // FailTask: a work_item_answered event carrying it as a note. Nothing when
  // `evidence` is empty (a worker's call).
  void AppendWorkItemEvidence(Txn& txn, LiveRequest& live, int item,
                              const std::string& actor,
                              const std::string& outcome,
                              const std::string& evidence);
  // Leases the open work item of `store` in request `request_id` to
  // `worker_id`. FAILED_PRECONDITION naming why it is not open.
  // `with_export` (when set) must say whether the item is an export:
  // INVALID_ARGUMENT naming the export field otherwise, nothing leased.
  absl::StatusOr<v1::Task> LeaseWorkItem(const std::string& request_id,
                                         const std::string& store,
                                         const std::string& worker_id,
                                         std::optional<bool> with_export);
  // The operation of the item's current task state (nullopt for a state
  // the definition no longer has).
  std::optional<TaskOperation> OperationOfItem(const LiveRequest& live, int map,
                                               int item) const;
  // Stores the owner's export for the leased `task` as a worker's upload
  // would be (encrypted under the request's data key). Returns its SHA-256.
  absl::StatusOr<std::string> StoreWorkItemExport(
      const v1::Task& task, const std::string& holder,
      const std::string& export_json);

  // Records that `worker_id` was heard from. REQUIRES: commit loop thread.
  void SawWorker(const std::string& worker_id, int64_t now_ms,
                 const std::vector<std::string>* stores);
  double UnitRandom() { return absl::Uniform(random_, 0.0, 1.0); }

  // Retention (engine/coordinator_retention.cc). REQUIRES: commit loop
  // thread, except SchedulePurge before the loop starts.
  void SchedulePurge(int64_t from_ms);
  v1::PurgeResponse PurgeInLoop(Txn& txn, bool dry_run,
                                const std::string& actor);
  // Deletes the bundle file (after commit) and marks it purged.
  void PurgeBundle(Txn& txn, LiveRequest& live, const std::string& reason,
                   const std::string& actor);
  // Crypto-shreds the request: destroys its data key, clears its personal
  // fields, marks it and removes its files (after commit).
  void DestroyPersonalData(Txn& txn, LiveRequest& live,
                           const std::string& reason, const std::string& actor);
  // The erasure `erasure_id` completed: destroys the closed ACCESS and
  // PORTABILITY requests of the same person (any identity in common) made
  // before it, found through the subject index.
  void DestroyEarlierCopies(Txn& txn, const std::string& erasure_id);

  // Delivery helpers (engine/coordinator_delivery.cc).
  // The signer under keys_dir/download_url.key, loaded on first use.
  absl::StatusOr<const DownloadUrlSigner*> DownloadSigner() const;
  // The bundle's bytes as the subject gets them, for the download path and
  // in-process readers; the one place that knows how a bundle is stored.
  absl::StatusOr<std::unique_ptr<BundleReader>> OpenBundleForRead(
      const internal::RequestRecord& record) const;
  // FAILED_PRECONDITION naming why `request` has no bundle to deliver.
  static absl::Status CheckDeliverable(const v1::Request& request);
  // What the "completed" notification adds for a request with a bundle: the
  // route that issues a fresh download URL (never a URL: the outbox holds
  // no bearer secret).
  static nlohmann::json DeliveryNotificationFields(const v1::Request& request);

  Options options_;
  int64_t started_ms_ = 0;  // Engine clock at start-up.
  std::unique_ptr<KeyEncryptionKeys> owned_key_ring_;  // Outlives store_.
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<AuditLog> audit_;
  absl::TimeZone zone_;
  // Seals one-time codes in the outbox (keys_dir/outbox.key). Outlives
  // notifier_, which opens them.
  std::unique_ptr<class SealedBox> outbox_box_;
  std::unique_ptr<class Notifier> notifier_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Command> queue_;     // GUARDED_BY(mu_)
  bool stopping_ = false;         // GUARDED_BY(mu_)
  bool snapshot_wanted_ = false;  // GUARDED_BY(mu_): a scrape waits.

  EngineMetrics metrics_;
  std::mutex snapshot_mu_;
  std::condition_variable snapshot_cv_;
  std::shared_ptr<const EngineSnapshot> snapshot_;  // GUARDED_BY(snapshot_mu_)
  uint64_t snapshot_generation_ = 0;                // GUARDED_BY(snapshot_mu_)
  // Liveness: steady-clock ms when the loop's current turn began (0 while
  // it waits for work), and whether the loop runs at all.
  std::atomic<int64_t> loop_busy_since_ms_{0};
  std::atomic<bool> loop_running_{false};
  // Owned by the commit loop: when the audit log was last checkpointed
  // (engine clock) and at what size.
  int64_t last_checkpoint_ms_ = 0;
  uint64_t checkpointed_size_ = 0;

  // Owned by the commit loop thread.
  // Node-based: a LiveRequest& stays valid while others are added (e.g. by
  // FindForEvents).
  absl::node_hash_map<std::string, LiveRequest> live_;
  absl::flat_hash_map<std::string, std::shared_ptr<const WorkflowDefinition>>
      definitions_;
  absl::flat_hash_map<std::string, std::deque<TaskRef>> ready_;  // By store.
  absl::flat_hash_set<std::string> queued_;                      // Task ids.
  absl::flat_hash_map<std::string, int64_t> lease_expiry_ms_;    // Task ids.
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  absl::flat_hash_set<std::string> timer_keys_;
  std::list<Poller> pollers_;
  struct WorkerSeen {
    std::vector<std::string> stores;
    int64_t last_seen_ms = 0;
  };
  absl::flat_hash_map<std::string, WorkerSeen> workers_;
  // Open requests by their duplicate key (see OpenDuplicateOf).
  absl::flat_hash_map<std::string, std::string> open_by_subject_;
  // Requests waiting for the outcome of the one they are linked to, by the
  // id of that one.
  absl::flat_hash_map<std::string, std::vector<std::string>> linked_waiting_;
  absl::BitGen random_;

  std::mutex hints_mu_;
  absl::flat_hash_set<std::string>
      processor_status_hints_;  // GUARDED_BY(hints_mu_)
  std::mutex bundler_mu_;
  std::condition_variable bundler_wake_;
  std::optional<CronSchedule> audit_schedule_;  // Set by ScheduleAuditScans.
  std::deque<BuiltinJob> bundler_queue_;        // GUARDED_BY(bundler_mu_)
  bool bundler_stopping_ = false;               // GUARDED_BY(bundler_mu_)
  std::atomic<bool> bundler_cancel_{false};     // Stops a bundle being written.

  std::thread loop_thread_;
  std::thread bundler_thread_;

  mutable std::mutex download_signer_mu_;
  mutable std::unique_ptr<DownloadUrlSigner>
      download_signer_;  // GUARDED_BY(download_signer_mu_)
};

// The public view of a stored request: `steps` derived from the Map runs.
v1::Request ToPublicRequest(const internal::RequestRecord& record);

}  // namespace dsar

#endif  // DSAR_ENGINE_COORDINATOR_H_
