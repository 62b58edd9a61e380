#ifndef DSAR_ENGINE_GRPC_SERVICES_H_
#define DSAR_ENGINE_GRPC_SERVICES_H_

// gRPC front of the coordinator: translates calls to Coordinator methods and
// absl::Status to grpc::Status (same codes). No logic of its own.

#include "dsar/v1/requests.grpc.pb.h"
#include "dsar/v1/worker.grpc.pb.h"
#include "engine/coordinator.h"

namespace dsar {

class DsarServiceImpl final : public v1::DsarService::Service {
 public:
  explicit DsarServiceImpl(Coordinator* coordinator)
      : coordinator_(coordinator) {}

  grpc::Status CreateRequest(grpc::ServerContext* context,
                             const v1::CreateRequestRequest* request,
                             v1::Request* response) override;
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

 private:
  Coordinator* coordinator_;
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
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
  grpc::Status UploadArtifact(
      grpc::ServerContext* context,
      grpc::ServerReader<v1::UploadArtifactRequest>* reader,
      v1::UploadArtifactResponse* response) override;

 private:
  Coordinator* coordinator_;
};

}  // namespace dsar

#endif  // DSAR_ENGINE_GRPC_SERVICES_H_
