#ifndef DSAR_ENGINE_CALLER_AUTHORIZATION_H_
#define DSAR_ENGINE_CALLER_AUTHORIZATION_H_

// Who may call what on dsard, decided from the client certificate of a
// mutual-TLS connection (docs/transport-security.md):
//
//   OU=worker    WorkerService only; its worker_id is the certificate's CN and
//                it may poll only the stores its certificate names
//                (SAN URIs "dsar:store:NAME", or "dsar:store:*").
//   OU=gateway   DsarService and AuditService on behalf of its caller; the
//                only role that may set the x-dsar-actor metadata.
//   OU=operator  every service except WorkerService.
//   OU=service   an internal service: DsarService and AuditService as itself,
//                except DownloadBundle (the gateway serves the URL's holder)
//                and RevokeDownloadUrls (operators, or the gateway for a
//                dsar.admin token).
//
// A plaintext listener (loopback only, unless told otherwise) has no
// certificates and checks nothing: every caller is trusted as before.

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace dsar {

enum class CallerRole { kWorker, kGateway, kOperator, kService };

// The authenticated peer of a call.
struct Caller {
  CallerRole role = CallerRole::kService;
  std::string name;  // The certificate's CN.
  // Stores a worker certificate names; `any_store` for "dsar:store:*".
  std::vector<std::string> stores;
  bool any_store = false;

  // "worker:worker-1": how events caused by this caller name it.
  std::string Describe() const;
};

// The caller behind `auth` (the auth context of a TLS connection with a
// verified client certificate). PERMISSION_DENIED when the certificate has no
// CN or its OU is none of worker, gateway, operator, service.
absl::StatusOr<Caller> CallerFromAuthContext(const grpc::AuthContext& auth);

// The caller of `context`'s call; std::nullopt on a plaintext connection.
// PERMISSION_DENIED as CallerFromAuthContext.
absl::StatusOr<std::optional<Caller>> CallerOf(
    const grpc::ServerContextBase& context);

// OK when `caller` may call `method` ("/dsar.v1.DsarService/GetRequest"),
// setting the x-dsar-actor metadata when `sets_actor`; PERMISSION_DENIED
// naming the role and the method otherwise.
absl::Status AuthorizeMethod(const Caller& caller, absl::string_view method,
                             bool sets_actor);

// OK unless `request` sets a field marked (dsar.v1.field_scope) and `caller`
// is neither the gateway (which checks the end user's scopes itself) nor an
// operator (who holds every scope); then PERMISSION_DENIED naming the field.
// No caller (plaintext): OK.
absl::Status AuthorizeScopedFields(const std::optional<Caller>& caller,
                                   const google::protobuf::Message& request);

// OK when the worker `caller` may poll every store in `stores`;
// PERMISSION_DENIED naming the first one its certificate does not list.
absl::Status AuthorizeStores(
    const Caller& caller,
    const google::protobuf::RepeatedPtrField<std::string>& stores);

// Server credentials for mutual TLS: the server's certificate and key, the
// CA whose certificates clients must present (required and verified), and
// AuthorizeMethod run on every call before it reaches a service. Errors:
// the files' read errors.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
MutualTlsServerCredentials(const std::string& cert_file,
                           const std::string& key_file,
                           const std::string& client_ca_file);

}  // namespace dsar

#endif  // DSAR_ENGINE_CALLER_AUTHORIZATION_H_
