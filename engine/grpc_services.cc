#include "engine/grpc_services.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/sha256.h"
#include "engine/caller_authorization.h"
#include "model/worker_protocol.h"
#include "storage/artifact_writer.h"
#include "storage/encrypted_file.h"

namespace dsar {

namespace {

// Copies a StatusOr's value into the response, or returns its error.
template <typename T>
grpc::Status Answer(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

// Refuses a public-service call whose `request` sets a field its caller's
// certificate may not set (AuthorizeScopedFields).
grpc::Status CheckScopedFields(const grpc::ServerContextBase& context,
                               const google::protobuf::Message& request) {
  absl::StatusOr<std::optional<Caller>> caller = CallerOf(context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(AuthorizeScopedFields(*caller, request));
}

// Under mutual TLS a worker is its certificate: an empty `worker_id` becomes
// the certificate's CN, a different one is PERMISSION_DENIED, and so is a
// caller that is not a worker. Sets `*caller` (nullopt on plaintext).
grpc::Status BindWorker(const grpc::ServerContextBase& context,
                        std::string* worker_id,
                        std::optional<Caller>* caller = nullptr) {
  absl::StatusOr<std::optional<Caller>> peer = CallerOf(context);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  if (caller != nullptr) *caller = *peer;
  if (!peer->has_value()) return grpc::Status::OK;
  const Caller& worker = **peer;
  if (worker.role != CallerRole::kWorker) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        worker.Describe() + ": not a worker certificate");
  }
  if (worker_id->empty()) {
    *worker_id = worker.name;
  } else if (*worker_id != worker.name) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "worker_id: \"" + *worker_id +
                            "\" is not the certificate's CN \"" + worker.name +
                            "\"");
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::ServerUnaryReactor* DsarServiceImpl::CreateRequest(
    grpc::CallbackServerContext* context,
    const v1::CreateRequestRequest* request, v1::Request* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status denied = CheckScopedFields(*context, *request);
      !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  // The reactor and `response` live until Finish: answered on the commit
  // loop's thread once the request is durable, no thread waiting for it.
  coordinator_->CreateRequestAsync(
      *request, ActorOf(*context),
      [reactor, response](absl::StatusOr<v1::Request> created) {
        reactor->Finish(Answer(std::move(created), response));
      });
  return reactor;
}

grpc::Status DsarServiceImpl::GetRequest(grpc::ServerContext* context,
                                         const v1::GetRequestRequest* request,
                                         v1::Request* response) {
  if (grpc::Status denied = CheckScopedFields(*context, *request);
      !denied.ok()) {
    return denied;
  }
  return Answer(coordinator_->GetRequest(request->id()), response);
}

grpc::Status DsarServiceImpl::ListRequests(
    grpc::ServerContext* context, const v1::ListRequestsRequest* request,
    v1::ListRequestsResponse* response) {
  if (grpc::Status denied = CheckScopedFields(*context, *request);
      !denied.ok()) {
    return denied;
  }
  return Answer(coordinator_->ListRequests(*request), response);
}

grpc::Status DsarServiceImpl::CancelRequest(
    grpc::ServerContext* context, const v1::CancelRequestRequest* request,
    v1::Request* response) {
  if (grpc::Status denied = CheckScopedFields(*context, *request);
      !denied.ok()) {
    return denied;
  }
  return Answer(coordinator_->CancelRequest(*request, ActorOf(*context)),
                response);
}

grpc::Status DsarServiceImpl::ListEvents(grpc::ServerContext* context,
                                         const v1::ListEventsRequest* request,
                                         v1::ListEventsResponse* response) {
  if (grpc::Status denied = CheckScopedFields(*context, *request);
      !denied.ok()) {
    return denied;
  }
  return Answer(coordinator_->ListEvents(*request), response);
}

grpc::Status DsarServiceImpl::RetryRequest(
    grpc::ServerContext* context, const v1::RetryRequestRequest* request,
    v1::Request* response) {
  if (grpc::Status denied = CheckScopedFields(*context, *request);
      !denied.ok()) {
    return denied;
  }
  return Answer(coordinator_->RetryRequest(*request, ActorOf(*context)),
                response);
}

grpc::Status DsarServiceImpl::VerifyIdentity(
    grpc::ServerContext* context, const v1::VerifyIdentityRequest* request,
    v1::Request* response) {
  if (grpc::Status denied = CheckScopedFields(*context, *request);
      !denied.ok()) {
    return denied;
  }
  return Answer(coordinator_->VerifyIdentity(*request), response);
}

grpc::Status DsarServiceImpl::ExtendDeadline(
    grpc::ServerContext* context, const v1::ExtendDeadlineRequest* request,
    v1::Request* response) {
  if (grpc::Status denied = CheckScopedFields(*context, *request);
      !denied.ok()) {
    return denied;
  }
  return Answer(coordinator_->ExtendDeadline(*request, ActorOf(*context)),
                response);
}

grpc::Status DsarServiceImpl::PauseRequest(
    grpc::ServerContext* context, const v1::PauseRequestRequest* request,
    v1::Request* response) {
  if (grpc::Status denied = CheckScopedFields(*context, *request);
      !denied.ok()) {
    return denied;
  }
  return Answer(coordinator_->PauseRequest(*request, ActorOf(*context)),
                response);
}

grpc::Status DsarServiceImpl::ResumeRequest(
    grpc::ServerContext* context, const v1::ResumeRequestRequest* request,
    v1::Request* response) {
  if (grpc::Status denied = CheckScopedFields(*context, *request);
      !denied.ok()) {
    return denied;
  }
  return Answer(coordinator_->ResumeRequest(*request, ActorOf(*context)),
                response);
}

grpc::Status DsarServiceImpl::CreateDownloadUrl(
    grpc::ServerContext* context, const v1::CreateDownloadUrlRequest* request,
    v1::CreateDownloadUrlResponse* response) {
  return Answer(coordinator_->CreateDownloadUrl(*request, ActorOf(*context)),
                response);
}

grpc::Status DsarServiceImpl::RevokeDownloadUrls(
    grpc::ServerContext* context, const v1::RevokeDownloadUrlsRequest* request,
    v1::RevokeDownloadUrlsResponse* response) {
  return Answer(coordinator_->RevokeDownloadUrls(*request, ActorOf(*context)),
                response);
}

grpc::Status DsarServiceImpl::ListWorkItems(
    grpc::ServerContext* context, const v1::ListWorkItemsRequest* request,
    v1::ListWorkItemsResponse* response) {
  return Answer(coordinator_->ListWorkItems(*request), response);
}

grpc::Status DsarServiceImpl::CompleteWorkItem(
    grpc::ServerContext* context, const v1::CompleteWorkItemRequest* request,
    v1::Request* response) {
  return Answer(coordinator_->CompleteWorkItem(*request, ActorOf(*context)),
                response);
}

grpc::Status DsarServiceImpl::FailWorkItem(
    grpc::ServerContext* context, const v1::FailWorkItemRequest* request,
    v1::Request* response) {
  return Answer(coordinator_->FailWorkItem(*request, ActorOf(*context)),
                response);
}

grpc::Status DsarServiceImpl::DownloadBundle(
    grpc::ServerContext* context, const v1::DownloadBundleRequest* request,
    grpc::ServerWriter<v1::DownloadBundleResponse>* writer) {
  absl::StatusOr<Coordinator::BundleDownload> download =
      coordinator_->OpenDownload(*request);
  if (!download.ok()) return ToGrpcStatus(download.status());
  v1::DownloadBundleResponse message;
  *message.mutable_header() = download->header;
  if (!writer->Write(message)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled");
  }
  Sha256 sent;
  int64_t offset = 0;
  const int64_t size = download->header.size_bytes();
  while (true) {
    std::string* bytes = message.mutable_chunk();
    bytes->resize(static_cast<size_t>(
        std::min<int64_t>(kDownloadChunkBytes, size - offset)));
    absl::StatusOr<size_t> read =
        download->reader->ReadAt(offset, bytes->data(), bytes->size());
    if (!read.ok()) return ToGrpcStatus(read.status());
    if (*read != bytes->size()) {
      return ToGrpcStatus(absl::DataLossError(
          absl::StrCat("bundle of ", request->id(), " ended at ",
                       offset + *read, " bytes; ", size, " were announced")));
    }
    sent.Update(*bytes);
    offset += static_cast<int64_t>(*read);
    if (offset == size) break;
    if (!writer->Write(message)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled");
    }
  }
  // The last chunk goes out only once the bytes proved to be the recorded
  // ones and the download is audited: no client holds a whole bundle that
  // is wrong or unaccounted for. (A client that drops the connection during
  // this last chunk is audited as having downloaded.)
  if (sent.FinishHex() != download->header.sha256()) {
    return ToGrpcStatus(absl::DataLossError(
        absl::StrCat("bundle of ", request->id(),
                     ": the bytes read do not have the recorded SHA-256")));
  }
  absl::Status recorded =
      coordinator_->RecordDownload(*request, size, ActorOf(*context));
  if (!recorded.ok()) return ToGrpcStatus(recorded);
  if (!message.chunk().empty() && !writer->Write(message)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled");
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListWorkers(
    grpc::ServerContext* context, const v1::ListWorkersRequest* request,
    v1::ListWorkersResponse* response) {
  return Answer(coordinator_->ListWorkers(), response);
}

grpc::Status AdminServiceImpl::Purge(grpc::ServerContext* context,
                                     const v1::PurgeRequest* request,
                                     v1::PurgeResponse* response) {
  return Answer(coordinator_->Purge(*request, ActorOf(*context)), response);
}

grpc::Status AdminServiceImpl::RunAuditScan(grpc::ServerContext* context,
                                            const v1::RunAuditScanRequest*,
                                            v1::Request* response) {
  return Answer(coordinator_->RunAuditScan(ActorOf(*context)), response);
}

grpc::Status AdminServiceImpl::GetAuditReport(
    grpc::ServerContext*, const v1::GetAuditReportRequest* request,
    v1::GetAuditReportResponse* response) {
  return Answer(coordinator_->GetAuditReport(*request), response);
}

grpc::Status AdminServiceImpl::RotateKeys(grpc::ServerContext* context,
                                          const v1::RotateKeysRequest* request,
                                          v1::RotateKeysResponse* response) {
  return Answer(coordinator_->RotateKeys(*request), response);
}

std::string ActorOf(const grpc::ServerContextBase& context) {
  absl::StatusOr<std::optional<Caller>> caller = CallerOf(context);
  // Calls with an unusable certificate were refused before reaching here.
  if (caller.ok() && caller->has_value() &&
      (*caller)->role != CallerRole::kGateway) {
    return (*caller)->Describe();
  }
  auto it = context.client_metadata().find("x-dsar-actor");
  if (it == context.client_metadata().end()) return "";
  std::string actor(it->second.data(), it->second.size());
  if (actor.size() > 256) actor.resize(256);
  return actor;
}

grpc::Status WorkerServiceImpl::PollTask(grpc::ServerContext* context,
                                         const v1::PollTaskRequest* request,
                                         v1::PollTaskResponse* response) {
  v1::PollTaskRequest poll = *request;
  std::optional<Caller> caller;
  if (grpc::Status denied =
          BindWorker(*context, poll.mutable_worker_id(), &caller);
      !denied.ok()) {
    return denied;
  }
  if (caller.has_value()) {
    absl::Status stores = AuthorizeStores(*caller, poll.stores());
    if (!stores.ok()) return ToGrpcStatus(stores);
  }
  absl::StatusOr<Coordinator::LeasedTasks> tasks = coordinator_->PollTask(
      poll, [context] { return context->IsCancelled(); });
  if (!tasks.ok()) return ToGrpcStatus(tasks.status());
  PutLeasedTasks(
      *std::move(tasks), [response] { return response->mutable_task(); },
      response->mutable_more_tasks());
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* context,
                                          const v1::HeartbeatRequest* request,
                                          v1::HeartbeatResponse* response) {
  v1::HeartbeatRequest heartbeat = *request;
  if (grpc::Status denied = BindWorker(*context, heartbeat.mutable_worker_id());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<int64_t> expiry = coordinator_->Heartbeat(heartbeat);
  if (!expiry.ok()) {
    if (auto ended =
            expiry.status().GetPayload(Coordinator::kRequestEndedPayload);
        ended.has_value()) {
      context->AddTrailingMetadata(kRequestEndedMetadataKey,
                                   std::string(*ended));
    }
    return ToGrpcStatus(expiry.status());
  }
  response->set_lease_expires_unix_ms(*expiry);
  response->set_processor_status_changed(
      coordinator_->TakeProcessorStatusHint(heartbeat.task_id()));
  return grpc::Status::OK;
}

namespace {

// `evidence` is dsard's own record of a manual store's work item: a report
// from a worker that sets it is INVALID_ARGUMENT.
grpc::Status RefuseWorkerEvidence(const std::string& evidence) {
  if (evidence.empty()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "evidence: set by dsard for work items, not by workers");
}

// A completion's checks of its caller and fields: binds worker_id
// (BindWorker) and refuses `evidence`. Sets `*poll` to the next poll the
// caller may make, or nullopt: the next poll's refusals are the worker's
// own PollTask to report, and the completion stands without it.
grpc::Status CheckCompletionCall(const grpc::ServerContextBase& context,
                                 v1::CompleteTaskRequest* complete,
                                 std::optional<v1::PollTaskRequest>* poll) {
  std::optional<Caller> caller;
  if (grpc::Status denied =
          BindWorker(context, complete->mutable_worker_id(), &caller);
      !denied.ok()) {
    return denied;
  }
  if (grpc::Status refused = RefuseWorkerEvidence(complete->evidence());
      !refused.ok()) {
    return refused;
  }
  poll->reset();
  if (complete->has_next() &&
      (!caller.has_value() ||
       AuthorizeStores(*caller, complete->next().stores()).ok())) {
    *poll = complete->next();
    (*poll)->set_worker_id(complete->worker_id());
  }
  return grpc::Status::OK;
}

// A failure's checks of its caller and fields, as CheckCompletionCall's.
grpc::Status CheckFailureCall(const grpc::ServerContextBase& context,
                              v1::FailTaskRequest* fail) {
  if (grpc::Status denied = BindWorker(context, fail->mutable_worker_id());
      !denied.ok()) {
    return denied;
  }
  return RefuseWorkerEvidence(fail->evidence());
}

// WorkerService.ReportTasks on gRPC's callback API: a report read is
// handed to the coordinator without a thread waiting for it, and its
// answer is written from the commit loop once it is durable; then the
// next report is read. One report is in flight at a time, so answers keep
// the reports' order.
//
// A report's answer can arrive after the call was cancelled and even after
// the reactor is gone: `state_` outlives the reactor, and its `pending`
// says whether the answer may still be written. Start* and Finish are
// called outside its lock but decided under it, so that exactly one of an
// answer's write and a cancellation's Finish happens. While a report is
// pending nothing else ends the call (no read or write is outstanding), so
// `pending` also means the reactor is alive.
class ReportTasksReactor final
    : public grpc::ServerBidiReactor<v1::TaskReport, v1::TaskReportAnswer> {
 public:
  ReportTasksReactor(Coordinator* coordinator,
                     grpc::CallbackServerContext* context)
      : coordinator_(coordinator),
        context_(context),
        state_(std::make_shared<State>()) {
    state_->reactor = this;  // No reaction runs before the first read.
    StartRead(&report_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // The worker closed the stream, or the call ended.
      Finish(grpc::Status::OK);
      return;
    }
    uint64_t report_number;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->pending = true;
      report_number = ++state_->reports;
    }
    // The message's reports: this one, then those sent with it.
    std::vector<v1::TaskReport> reports;
    reports.reserve(1 + report_.more_size());
    for (v1::TaskReport& more : *report_.mutable_more()) {
      reports.push_back(std::move(more));
    }
    report_.clear_more();
    reports.insert(reports.begin(), std::move(report_));
    if (grpc::Status refused = CheckBatchShape(reports); !refused.ok()) {
      Answer(state_, std::vector<grpc::Status>(reports.size(), refused), {});
      return;
    }
    // The caller's checks; a report refused by them is answered with its
    // refusal, and the others go to the coordinator.
    std::vector<grpc::Status> statuses(reports.size());
    std::vector<v1::TaskReport> accepted;
    std::vector<size_t> positions;  // Of `accepted` in `reports`.
    std::optional<v1::PollTaskRequest> poll;
    for (size_t i = 0; i < reports.size(); ++i) {
      std::optional<v1::PollTaskRequest> own_poll;
      if (reports[i].has_complete()) {
        statuses[i] = CheckCompletionCall(
            *context_, reports[i].mutable_complete(), &own_poll);
      } else if (reports[i].has_fail()) {
        statuses[i] = CheckFailureCall(*context_, reports[i].mutable_fail());
      }
      if (!statuses[i].ok()) continue;
      if (i == 0) poll = std::move(own_poll);
      accepted.push_back(std::move(reports[i]));
      positions.push_back(i);
    }
    if (accepted.empty()) {
      Answer(state_, std::move(statuses), {});
      return;
    }
    const v1::PollTaskRequest* next =
        positions[0] == 0 && poll.has_value() ? &*poll : nullptr;
    std::function<void()> abandon = coordinator_->ReportTasksAsync(
        std::move(accepted), next,
        [state = state_, statuses = std::move(statuses),
         positions](Coordinator::ReportsAnswer answer) mutable {
          for (size_t i = 0; i < positions.size(); ++i) {
            statuses[positions[i]] = ToGrpcStatus(answer.statuses[i]);
          }
          Answer(state, std::move(statuses), std::move(answer.next_tasks));
        });
    std::lock_guard<std::mutex> lock(state_->mu);
    // Still waiting for its next tasks: OnCancel gives the poll up. (Once
    // answered, the next report may already be pending. gRPC runs OnDone
    // only after this reaction returns, so the reactor is still here.)
    if (state_->pending && state_->reports == report_number) {
      state_->abandon_poll = std::move(abandon);
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    StartRead(&report_);
  }

  void OnCancel() override {
    bool finish = false;
    std::function<void()> abandon_poll;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      // A report with the coordinator: nothing else will end the call
      // before its answer, which may come only when dsard stops.
      if (state_->pending) {
        state_->pending = false;
        finish = true;
        abandon_poll = std::move(state_->abandon_poll);
      }
    }
    // A completion waiting for its next task: no task goes to a worker
    // that has gone (it would wait for its lease to expire).
    if (abandon_poll != nullptr) abandon_poll();
    if (finish) Finish(grpc::Status::CANCELLED);
  }

  void OnDone() override { delete this; }

 private:
  struct State {
    std::mutex mu;
    ReportTasksReactor* reactor = nullptr;  // Alive while `pending`.
    bool pending = false;  // GUARDED_BY(mu): a report awaits its answer.
    uint64_t reports = 0;  // GUARDED_BY(mu): reports read so far.
    // GUARDED_BY(mu): gives up the pending completion's poll for its next
    // task (Coordinator::CompleteTaskAndPollAsync).
    std::function<void()> abandon_poll;
  };

  // OK when `reports` (a message's, its first one first) is a batch
  // dsard takes: not too many, and only the first carrying `more` or a
  // completion's `next`. INVALID_ARGUMENT for the whole message otherwise.
  static grpc::Status CheckBatchShape(
      const std::vector<v1::TaskReport>& reports) {
    if (reports.size() > kMaxReportsPerBatch) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("more: at most ", kMaxReportsPerBatch - 1,
                       " reports go with the first, not ", reports.size() - 1));
    }
    for (size_t i = 1; i < reports.size(); ++i) {
      if (reports[i].more_size() > 0 ||
          (reports[i].has_complete() && reports[i].complete().has_next())) {
        return grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("more[", i - 1,
                         "]: sets more or next, which only the first report "
                         "of a message may"));
      }
    }
    return grpc::Status::OK;
  }

  // Writes the answer of the pending message, one status per report, its
  // first report's first, unless the call was cancelled meanwhile.
  static void Answer(const std::shared_ptr<State>& state,
                     std::vector<grpc::Status> statuses,
                     Coordinator::LeasedTasks next) {
    ReportTasksReactor* reactor = nullptr;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      if (!state->pending) return;  // Answered, or the call was cancelled.
      state->pending = false;
      state->abandon_poll = nullptr;
      reactor = state->reactor;
    }
    v1::TaskReportAnswer& answer = reactor->answer_;
    answer.Clear();
    for (size_t i = 0; i < statuses.size(); ++i) {
      v1::TaskReportAnswer* one = i == 0 ? &answer : answer.add_more();
      one->set_code(statuses[i].error_code());
      if (!statuses[i].ok()) one->set_message(statuses[i].error_message());
    }
    PutLeasedTasks(
        std::move(next), [&answer] { return answer.mutable_next_task(); },
        answer.mutable_more_next_tasks());
    reactor->StartWrite(&answer);
  }

  Coordinator* const coordinator_;
  grpc::CallbackServerContext* const context_;
  const std::shared_ptr<State> state_;
  v1::TaskReport report_;
  v1::TaskReportAnswer answer_;
};

}  // namespace

grpc::Status WorkerServiceImpl::CompleteTask(
    grpc::ServerContext* context, const v1::CompleteTaskRequest* request,
    v1::CompleteTaskResponse* response) {
  v1::CompleteTaskRequest complete = *request;
  std::optional<v1::PollTaskRequest> poll;
  if (grpc::Status refused = CheckCompletionCall(*context, &complete, &poll);
      !refused.ok()) {
    return refused;
  }
  if (!poll.has_value()) {
    return ToGrpcStatus(coordinator_->CompleteTask(complete));
  }
  absl::StatusOr<Coordinator::LeasedTasks> tasks =
      coordinator_->CompleteTaskAndPoll(
          complete, *poll, [context] { return context->IsCancelled(); });
  if (!tasks.ok()) return ToGrpcStatus(tasks.status());
  PutLeasedTasks(
      *std::move(tasks), [response] { return response->mutable_next_task(); },
      response->mutable_more_next_tasks());
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::FailTask(grpc::ServerContext* context,
                                         const v1::FailTaskRequest* request,
                                         v1::FailTaskResponse* response) {
  v1::FailTaskRequest fail = *request;
  if (grpc::Status refused = CheckFailureCall(*context, &fail); !refused.ok()) {
    return refused;
  }
  return ToGrpcStatus(coordinator_->FailTask(fail));
}

grpc::ServerBidiReactor<v1::TaskReport, v1::TaskReportAnswer>*
WorkerServiceImpl::ReportTasks(grpc::CallbackServerContext* context) {
  return new ReportTasksReactor(coordinator_, context);
}

grpc::Status WorkerServiceImpl::UploadArtifact(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::UploadArtifactRequest>* reader,
    v1::UploadArtifactResponse* response) {
  v1::UploadArtifactRequest message;
  if (!reader->Read(&message) || !message.has_header()) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "header: the first message of the stream must be the header");
  }
  if (grpc::Status denied =
          BindWorker(*context, message.mutable_header()->mutable_worker_id());
      !denied.ok()) {
    return denied;
  }
  absl::StatusOr<Coordinator::ArtifactUpload> upload =
      coordinator_->ArtifactPathForUpload(message.header());
  if (!upload.ok()) return ToGrpcStatus(upload.status());
  // The export is personal data: encrypted as it streams in, under the
  // request's data key.
  absl::StatusOr<std::string> data_key =
      coordinator_->RequestDataKey(upload->request_id);
  if (!data_key.ok()) return ToGrpcStatus(data_key.status());
  absl::StatusOr<std::unique_ptr<ArtifactWriter>> writer =
      ArtifactWriter::Create(upload->path, *std::move(data_key),
                             ExportFileContext(upload->request_id));
  if (!writer.ok()) return ToGrpcStatus(writer.status());
  while (reader->Read(&message)) {
    if (message.has_header()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "header: only the first message may be a header");
    }
    absl::Status appended = (*writer)->Append(message.chunk());
    if (!appended.ok()) return ToGrpcStatus(appended);
  }
  if (context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "upload cancelled");
  }
  absl::StatusOr<ArtifactInfo> info = (*writer)->Commit();
  if (!info.ok()) return ToGrpcStatus(info.status());
  response->set_sha256(info->sha256);
  response->set_size_bytes(info->size_bytes);
  return grpc::Status::OK;
}

grpc::Status AuditServiceImpl::GetCheckpoint(
    grpc::ServerContext* context, const v1::GetCheckpointRequest* request,
    v1::GetCheckpointResponse* response) {
  return Answer(log_->GetCheckpoint(), response);
}

grpc::Status AuditServiceImpl::GetEntries(grpc::ServerContext* context,
                                          const v1::GetEntriesRequest* request,
                                          v1::GetEntriesResponse* response) {
  return Answer(log_->GetEntries(*request), response);
}

grpc::Status AuditServiceImpl::GetRequestEntries(
    grpc::ServerContext* context, const v1::GetRequestEntriesRequest* request,
    v1::GetRequestEntriesResponse* response) {
  return Answer(log_->GetRequestEntries(*request), response);
}

grpc::Status AuditServiceImpl::GetInclusionProof(
    grpc::ServerContext* context, const v1::GetInclusionProofRequest* request,
    v1::GetInclusionProofResponse* response) {
  return Answer(log_->GetInclusionProof(*request), response);
}

grpc::Status AuditServiceImpl::GetConsistencyProof(
    grpc::ServerContext* context, const v1::GetConsistencyProofRequest* request,
    v1::GetConsistencyProofResponse* response) {
  return Answer(log_->GetConsistencyProof(*request), response);
}

grpc::Status OpenDsrCallbackServiceImpl::RecordProcessorStatus(
    grpc::ServerContext* context,
    const v1::RecordProcessorStatusRequest* request,
    v1::RecordProcessorStatusResponse* response) {
  return Answer(coordinator_->RecordProcessorStatus(*request), response);
}

grpc::Status OpenDsrProcessorServiceImpl::CreateProcessorRequest(
    grpc::ServerContext* context,
    const v1::CreateProcessorRequestRequest* request,
    v1::ProcessorRequestStatus* response) {
  return Answer(
      coordinator_->CreateProcessorRequest(*request, ActorOf(*context)),
      response);
}

grpc::Status OpenDsrProcessorServiceImpl::GetProcessorRequest(
    grpc::ServerContext*, const v1::ProcessorRequestRef* request,
    v1::ProcessorRequestStatus* response) {
  return Answer(coordinator_->GetProcessorRequest(*request), response);
}

grpc::Status OpenDsrProcessorServiceImpl::CancelProcessorRequest(
    grpc::ServerContext* context, const v1::ProcessorRequestRef* request,
    v1::ProcessorRequestStatus* response) {
  return Answer(
      coordinator_->CancelProcessorRequest(*request, ActorOf(*context)),
      response);
}

}  // namespace dsar
