#ifndef DSAR_WORKERS_CONNECTORS_OPENDSR_H_
#define DSAR_WORKERS_CONNECTORS_OPENDSR_H_

// The connector of "opendsr" stores: services that act as OpenDSR 2.0
// processors (docs/opendsr.md). dsar is the controller: it asks the
// service's /discovery what it supports, creates a request with POST
// /requests, polls GET /requests/{id} until the request is completed,
// cancelled or denied, and checks the signature of every answer against
// the processor's signing certificate (chain to the configured CA, domain in
// its SAN).
//
// Idempotency: the subject_request_id is derived from the dsar request, the
// store and the operation (SubjectRequestId), so a task that runs again
// re-attaches to the processor request the first run made: the service
// answers the repeated POST with 409 (or 201 again), and the status is
// polled from there.
//
// Operations:
//   export   -> "access" ("portability" for a portability request); the
//               results (results_url) become the export document's records.
//   erase    -> "erasure"; results_count is the record count.
//   discover -> no request at the processor (OpenDSR returns no identities,
//               and an access request is not what an erasure's subject asked
//               for): checks that the service offers the request's right and
//               one of the subject's identity types, returns 0 records.
//   rectify, restrict, object -> not in OpenDSR 2.0: Connector.Unsupported
//               unless the service's discovery lists "rectification",
//               "restriction" or "objection"; then sent as that type
//               (corrections in extensions.<processor_domain>.corrections).
//
// Errors (model/connector_errors.h): the service cannot be reached, 5xx, 429
// -> UNAVAILABLE (Connector.Unavailable, retried); a 400 error object, a
// "denied" status or a "cancelled" one -> Connector.Denied naming the
// service's reason; right or identities not offered ->
// Connector.Unsupported; a bad signature, a certificate that does not chain
// to signing_ca or is not issued to processor_domain, an answer naming
// another domain -> Connector.Unverified. Messages never hold identities.
//
// Cancellation: the connector's cancel flag (the worker stopping) ends the
// wait with CANCELLED and leaves the processor request alone: the task's
// lease expires and its next attempt re-attaches. A task's own `abandon`
// flag (the coordinator ended the request) also sends DELETE
// /requests/{id} when the request is still "pending" (the spec allows
// cancelling only then).
//
// Thread-safe: one connector serves a store's tasks concurrently; the
// discovery answer is cached (until a signature fails to verify).

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "inventory/inventory.h"
#include "model/task_operation.h"
#include "opendsr/processor.h"
#include "opendsr/signature.h"
#include "workers/connectors/connector.h"

namespace dsar {

// What an OpenDSR request needs to know about the dsar task.
struct OpenDsrTask {
  std::string request_id;  // The dsar request.
  TaskOperation operation = TaskOperation::kExport;
  bool portability = false;   // For export: the right is portability.
  std::string request_right;  // "erasure", "access", ...: for discover.
  std::string regulation = "gdpr";
  absl::Time submitted = absl::UnixEpoch();  // The subject's request.
  std::vector<Identity> identities;
  std::vector<FieldCorrection> corrections;
};

class OpenDsrConnector : public Connector {
 public:
  // INVALID_ARGUMENT when the store is not a valid opendsr store.
  static absl::StatusOr<std::unique_ptr<OpenDsrConnector>> Create(
      const StoreSpec& store, const std::atomic<bool>* cancel);

  // The processor request id of (request, store, operation); see
  // opendsr::SubjectRequestId.
  static std::string SubjectRequestId(std::string_view request_id,
                                      std::string_view store,
                                      TaskOperation operation) {
    return opendsr::SubjectRequestId(request_id, store, operation);
  }

  // Runs `task` at the processor and waits for its outcome (see the
  // header comment). For export, writes the export document to `sink`
  // (required then). `abandon` (may be null) is the task's own flag.
  // `wake` (may be null), when set, ends a wait between status polls at
  // once (a status callback arrived); Run clears it as it polls.
  absl::StatusOr<ConnectorResult> Run(const OpenDsrTask& task,
                                      const std::atomic<bool>* abandon,
                                      ByteSink* sink,
                                      std::atomic<bool>* wake = nullptr);

  // Connector: these carry no task, so the processor request cannot be
  // named: FAILED_PRECONDITION. The worker calls Run instead.
  absl::StatusOr<ConnectorResult> Export(const std::vector<Identity>&,
                                         ByteSink&) override;
  absl::StatusOr<ConnectorResult> Discover(
      const std::vector<Identity>&) override;
  absl::StatusOr<EraseResult> Erase(const std::vector<Identity>&) override;
  absl::StatusOr<int64_t> Rectify(const std::vector<Identity>&,
                                  const std::vector<FieldCorrection>&) override;
  absl::StatusOr<int64_t> SetProcessingFlag(const std::vector<Identity>&,
                                            const std::string&) override;

 private:
  using Discovery = opendsr::Discovery;
  using Answer = opendsr::HttpsAnswer;

  OpenDsrConnector(StoreSpec store, const std::atomic<bool>* cancel);

  // The cached discovery, fetched (and its certificate checked) if needed.
  absl::StatusOr<Discovery> GetDiscovery();
  void ForgetDiscovery();
  // opendsr::SendHttps, its errors named for the connector.
  absl::StatusOr<Answer> Send(const std::string& method, const std::string& url,
                              const std::string& body);
  // Send, then check the answer's domain header and signature.
  absl::StatusOr<Answer> SendVerified(const Discovery& discovery,
                                      const std::string& method,
                                      const std::string& url,
                                      const std::string& body);
  absl::Status Denied(const std::string& what) const;
  // Waits one poll interval, or until `wake` is set (clearing it); false
  // when a cancel flag was set meanwhile.
  bool WaitPollInterval(const std::atomic<bool>* abandon,
                        std::atomic<bool>* wake) const;

  StoreSpec store_;
  const std::atomic<bool>* cancel_;
  std::mutex mu_;
  std::optional<Discovery> discovery_;  // GUARDED_BY(mu_)
};

}  // namespace dsar

#endif  // DSAR_WORKERS_CONNECTORS_OPENDSR_H_
