#ifndef DSAR_ENGINE_GRPC_SERVICES_H_
#define DSAR_ENGINE_GRPC_SERVICES_H_

// gRPC front of the coordinator: translates calls to Coordinator methods and
// absl::Status to grpc::Status (same codes). Its only logic is binding a call
// to its client certificate under mutual TLS (engine/caller_authorization.h):
// a worker's worker_id is its CN, and scoped fields need the right role.

#include "dsar/v1/admin.grpc.pb.h"
#include "dsar/v1/audit.grpc.pb.h"
#include "dsar/v1/opendsr.grpc.pb.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "dsar/v1/worker.grpc.pb.h"
#include "engine/coordinator.h"

namespace dsar {

// Bytes of the bundle per DownloadBundle message.
inline constexpr size_t kDownloadChunkBytes = 256 * 1024;

// CreateRequest runs on gRPC's callback API (no thread waits for the new
// request's commit); the other methods are synchronous.
class DsarServiceImpl final
    : public v1::DsarService::WithCallbackMethod_CreateRequest<
          v1::DsarService::Service> {
 public:
  explicit DsarServiceImpl(Coordinator* coordinator)
      : coordinator_(coordinator) {}

  grpc::ServerUnaryReactor* CreateRequest(
      grpc::CallbackServerContext* context,
      const v1::CreateRequestRequest* request, v1::Request* response) override;
  grpc::Status GetRequest(grpc::ServerContext* context,
                          const v1::GetRequestRequest* request,
                          v1::Request* response) override;
  grpc::Status ListRequests(grpc::ServerContext* context,
                            const v1::ListRequestsRequest* request,
                            v1::ListRequestsResponse* response) override;
  grpc::Status CancelRequest(grpc::ServerContext* context,
                             const v1::CancelRequestRequest* request,
                             v1::Request* response) override;
  grpc::Status ListEvents(grpc::ServerContext* context,
                          const v1::ListEventsRequest* request,
                          v1::ListEventsResponse* response) override;
  grpc::Status RetryRequest(grpc::ServerContext* context,
                            const v1::RetryRequestRequest* request,
                            v1::Request* response) override;
  grpc::Status VerifyIdentity(grpc::ServerContext* context,
                              const v1::VerifyIdentityRequest* request,
                              v1::Request* response) override;
  grpc::Status ExtendDeadline(grpc::ServerContext* context,
                              const v1::ExtendDeadlineRequest* request,
                              v1::Request* response) override;
  grpc::Status PauseRequest(grpc::ServerContext* context,
                            const v1::PauseRequestRequest* request,
                            v1::Request* response) override;
  grpc::Status ResumeRequest(grpc::ServerContext* context,
                             const v1::ResumeRequestRequest* request,
                             v1::Request* response) override;
  // Delivery (docs/delivery.md).
  grpc::Status CreateDownloadUrl(
      grpc::ServerContext* context, const v1::CreateDownloadUrlRequest* request,
      v1::CreateDownloadUrlResponse* response) override;
  grpc::Status RevokeDownloadUrls(
      grpc::ServerContext* context,
      const v1::RevokeDownloadUrlsRequest* request,
      v1::RevokeDownloadUrlsResponse* response) override;
  // Manual stores' work items (docs/manual-stores.md).
  grpc::Status ListWorkItems(grpc::ServerContext* context,
                             const v1::ListWorkItemsRequest* request,
                             v1::ListWorkItemsResponse* response) override;
  grpc::Status CompleteWorkItem(grpc::ServerContext* context,
                                const v1::CompleteWorkItemRequest* request,
                                v1::Request* response) override;
  grpc::Status FailWorkItem(grpc::ServerContext* context,
                            const v1::FailWorkItemRequest* request,
                            v1::Request* response) override;
  // The header, then kDownloadChunkBytes chunks read as the client takes
  // them (Write blocks on flow control): memory stays one chunk. The bytes
  // sent are hashed on the way; a mismatch with the recorded SHA-256 ends
  // the stream with DATA_LOSS and is not audited as a download.
  grpc::Status DownloadBundle(
      grpc::ServerContext* context, const v1::DownloadBundleRequest* request,
      grpc::ServerWriter<v1::DownloadBundleResponse>* writer) override;

 private:
  Coordinator* coordinator_;
};

// ReportTasks runs on gRPC's callback API (no thread waits for a report's
// commit); the other methods are synchronous.
class WorkerServiceImpl final
    : public v1::WorkerService::WithCallbackMethod_ReportTasks<
          v1::WorkerService::Service> {
 public:
  explicit WorkerServiceImpl(Coordinator* coordinator)
      : coordinator_(coordinator) {}

  grpc::Status PollTask(grpc::ServerContext* context,
                        const v1::PollTaskRequest* request,
                        v1::PollTaskResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context,
                         const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status CompleteTask(grpc::ServerContext* context,
                            const v1::CompleteTaskRequest* request,
                            v1::CompleteTaskResponse* response) override;
  grpc::Status FailTask(grpc::ServerContext* context,
                        const v1::FailTaskRequest* request,
                        v1::FailTaskResponse* response) override;
  // Answers each report as CompleteTask or FailTask would, in order, until
  // the worker closes the stream or the call ends.
  grpc::ServerBidiReactor<v1::TaskReport, v1::TaskReportAnswer>* ReportTasks(
      grpc::CallbackServerContext* context) override;
  grpc::Status UploadArtifact(
      grpc::ServerContext* context,
      grpc::ServerReader<v1::UploadArtifactRequest>* reader,
      v1::UploadArtifactResponse* response) override;

 private:
  Coordinator* coordinator_;
};

class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  explicit AdminServiceImpl(Coordinator* coordinator)
      : coordinator_(coordinator) {}

  grpc::Status ListWorkers(grpc::ServerContext* context,
                           const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;
  grpc::Status Purge(grpc::ServerContext* context,
                     const v1::PurgeRequest* request,
                     v1::PurgeResponse* response) override;
  grpc::Status RunAuditScan(grpc::ServerContext* context,
                            const v1::RunAuditScanRequest* request,
                            v1::Request* response) override;
  grpc::Status GetAuditReport(grpc::ServerContext* context,
                              const v1::GetAuditReportRequest* request,
                              v1::GetAuditReportResponse* response) override;
  grpc::Status RotateKeys(grpc::ServerContext* context,
                          const v1::RotateKeysRequest* request,
                          v1::RotateKeysResponse* response) override;

 private:
  Coordinator* coordinator_;
};

// OpenDSR status callbacks, forwarded by the gateway once it has checked
// them (gateway/opendsr/callback_route.h).
class OpenDsrCallbackServiceImpl final
    : public v1::OpenDsrCallbackService::Service {
 public:
  explicit OpenDsrCallbackServiceImpl(Coordinator* coordinator)
      : coordinator_(coordinator) {}

  grpc::Status RecordProcessorStatus(
      grpc::ServerContext* context,
      const v1::RecordProcessorStatusRequest* request,
      v1::RecordProcessorStatusResponse* response) override;

 private:
  Coordinator* coordinator_;
};

// dsar as an OpenDSR processor: the gateway's processor endpoints ask here
// for the controllers it authenticated (actor: the controller).
class OpenDsrProcessorServiceImpl final
    : public v1::OpenDsrProcessorService::Service {
 public:
  explicit OpenDsrProcessorServiceImpl(Coordinator* coordinator)
      : coordinator_(coordinator) {}

  grpc::Status CreateProcessorRequest(
      grpc::ServerContext* context,
      const v1::CreateProcessorRequestRequest* request,
      v1::ProcessorRequestStatus* response) override;
  grpc::Status GetProcessorRequest(
      grpc::ServerContext* context, const v1::ProcessorRequestRef* request,
      v1::ProcessorRequestStatus* response) override;
  grpc::Status CancelProcessorRequest(
      grpc::ServerContext* context, const v1::ProcessorRequestRef* request,
      v1::ProcessorRequestStatus* response) override;

 private:
  Coordinator* coordinator_;
};

// The caller an event is attributed to. Under mutual TLS: for the gateway the
// `x-dsar-actor` metadata it sets from the verified token, for any other
// certificate its role and CN ("operator:alice"; only the gateway may set the
// metadata, engine/caller_authorization.h). On a plaintext listener: the
// metadata, trusted as every caller is (empty when absent).
std::string ActorOf(const grpc::ServerContextBase& context);

class AuditServiceImpl final : public v1::AuditService::Service {
 public:
  explicit AuditServiceImpl(const AuditLog* log) : log_(log) {}

  grpc::Status GetCheckpoint(grpc::ServerContext* context,
                             const v1::GetCheckpointRequest* request,
                             v1::GetCheckpointResponse* response) override;
  grpc::Status GetEntries(grpc::ServerContext* context,
                          const v1::GetEntriesRequest* request,
                          v1::GetEntriesResponse* response) override;
  grpc::Status GetRequestEntries(
      grpc::ServerContext* context, const v1::GetRequestEntriesRequest* request,
      v1::GetRequestEntriesResponse* response) override;
  grpc::Status GetInclusionProof(
      grpc::ServerContext* context, const v1::GetInclusionProofRequest* request,
      v1::GetInclusionProofResponse* response) override;
  grpc::Status GetConsistencyProof(
      grpc::ServerContext* context,
      const v1::GetConsistencyProofRequest* request,
      v1::GetConsistencyProofResponse* response) override;

 private:
  const AuditLog* log_;
};

}  // namespace dsar

#endif  // DSAR_ENGINE_GRPC_SERVICES_H_
