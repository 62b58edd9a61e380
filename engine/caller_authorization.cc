#include "engine/caller_authorization.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/grpc_status.h"
#include "dsar/v1/auth.pb.h"

namespace dsar {

namespace {

constexpr char kActorMetadataKey[] = "x-dsar-actor";
constexpr absl::string_view kStoreUriPrefix = "dsar:store:";
constexpr absl::string_view kDownloadBundleMethod =
    "/dsar.v1.DsarService/DownloadBundle";
constexpr absl::string_view kRevokeDownloadUrlsMethod =
    "/dsar.v1.DsarService/RevokeDownloadUrls";
// Manual stores' work items are answered by people: operators, or the
// gateway for a token with dsar.admin.
bool IsWorkItemMethod(absl::string_view method) {
  return method == "/dsar.v1.DsarService/ListWorkItems" ||
         method == "/dsar.v1.DsarService/CompleteWorkItem" ||
         method == "/dsar.v1.DsarService/FailWorkItem";
}

const char* RoleName(CallerRole role) {
  switch (role) {
    case CallerRole::kWorker:
      return "worker";
    case CallerRole::kGateway:
      return "gateway";
    case CallerRole::kOperator:
      return "operator";
    case CallerRole::kService:
      return "service";
  }
  return "unknown";
}

std::optional<CallerRole> RoleFromName(absl::string_view name) {
  for (CallerRole role : {CallerRole::kWorker, CallerRole::kGateway,
                          CallerRole::kOperator, CallerRole::kService}) {
    if (name == RoleName(role)) return role;
  }
  return std::nullopt;
}

std::string NameEntry(X509_NAME* name, int nid) {
  char text[256] = {0};
  int length = X509_NAME_get_text_by_NID(name, nid, text, sizeof(text));
  return length > 0 ? std::string(text, length) : "";
}

// The SAN URIs of `cert`.
std::vector<std::string> UriNames(X509* cert) {
  std::vector<std::string> uris;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return uris;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      ASN1_STRING_length(uri));
  }
  GENERAL_NAMES_free(names);
  return uris;
}

}  // namespace

std::string Caller::Describe() const {
  return absl::StrCat(RoleName(role), ":", name);
}

absl::StatusOr<Caller> CallerFromAuthContext(const grpc::AuthContext& auth) {
  std::vector<grpc::string_ref> pems =
      auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pems.empty()) {
    return absl::PermissionDeniedError(
        "the connection carries no client certificate");
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pems[0].data(), static_cast<int>(pems[0].size())),
      &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (cert == nullptr) {
    return absl::PermissionDeniedError("unreadable client certificate");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  Caller caller;
  caller.name = NameEntry(subject, NID_commonName);
  std::string unit = NameEntry(subject, NID_organizationalUnitName);
  std::optional<CallerRole> role = RoleFromName(unit);
  if (caller.name.empty() || !role.has_value()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "client certificate \"", caller.name, "\" (OU=", unit,
        "): the subject needs a CN and an OU naming the role (worker, "
        "gateway, operator or service)"));
  }
  caller.role = *role;
  for (const std::string& uri : UriNames(cert.get())) {
    if (!absl::StartsWith(uri, kStoreUriPrefix)) continue;
    std::string store = uri.substr(kStoreUriPrefix.size());
    if (store == "*") {
      caller.any_store = true;
    } else if (!store.empty()) {
      caller.stores.push_back(std::move(store));
    }
  }
  return caller;
}

absl::StatusOr<std::optional<Caller>> CallerOf(
    const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return std::optional<Caller>();
  }
  absl::StatusOr<Caller> caller = CallerFromAuthContext(*auth);
  if (!caller.ok()) return caller.status();
  return std::optional<Caller>(std::move(*caller));
}

absl::Status AuthorizeMethod(const Caller& caller, absl::string_view method,
                             bool sets_actor) {
  if (sets_actor && caller.role != CallerRole::kGateway) {
    return absl::PermissionDeniedError(
        absl::StrCat(caller.Describe(), ": only the gateway may set ",
                     kActorMetadataKey, " (the actor is the certificate)"));
  }
  // Reflection and health checks describe the API, not the data: any
  // certificate of the deployment may use them.
  if (absl::StartsWith(method, "/grpc.reflection.") ||
      absl::StartsWith(method, "/grpc.health.")) {
    return absl::OkStatus();
  }
  bool worker_service = absl::StartsWith(method, "/dsar.v1.WorkerService/");
  bool allowed = false;
  switch (caller.role) {
    case CallerRole::kWorker:
      allowed = worker_service;
      break;
    case CallerRole::kOperator:
      // Operators run the deployment: every service but the worker protocol
      // (an operator leasing tasks would impersonate a worker).
      allowed = !worker_service;
      break;
    case CallerRole::kGateway:
      // The gateway also forwards OpenDSR callbacks it has verified, the
      // requests of OpenDSR controllers it authenticated, and audit scans
      // asked for over REST by tokens with the dsar.admin scope (the route's
      // required scope, checked by the gateway).
      allowed = absl::StartsWith(method, "/dsar.v1.DsarService/") ||
                method == "/dsar.v1.AdminService/RunAuditScan" ||
                method == "/dsar.v1.AdminService/GetAuditReport" ||
                absl::StartsWith(method, "/dsar.v1.AuditService/") ||
                absl::StartsWith(method, "/dsar.v1.OpenDsrCallbackService/") ||
                absl::StartsWith(method, "/dsar.v1.OpenDsrProcessorService/");
      break;
    case CallerRole::kService:
      // A service acts as itself: it may hand a subject a download URL,
      // not fetch the bundle (the gateway does that for the URL's holder)
      // nor revoke URLs (an operator's decision), nor answer manual stores'
      // work items (people do).
      allowed = (absl::StartsWith(method, "/dsar.v1.DsarService/") ||
                 absl::StartsWith(method, "/dsar.v1.AuditService/")) &&
                method != kDownloadBundleMethod &&
                method != kRevokeDownloadUrlsMethod &&
                !IsWorkItemMethod(method);
      break;
  }
  if (allowed) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(caller.Describe(), ": role ",
                                                  RoleName(caller.role),
                                                  " may not call ", method));
}

absl::Status AuthorizeScopedFields(const std::optional<Caller>& caller,
                                   const google::protobuf::Message& request) {
  if (!caller.has_value() || caller->role == CallerRole::kGateway ||
      caller->role == CallerRole::kOperator) {
    return absl::OkStatus();
  }
  const google::protobuf::Descriptor* descriptor = request.GetDescriptor();
  const google::protobuf::Reflection* reflection = request.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    const std::string& scope = field->options().GetExtension(v1::field_scope);
    if (scope.empty()) continue;
    bool set = field->is_repeated() ? reflection->FieldSize(request, field) > 0
                                    : reflection->HasField(request, field);
    if (set) {
      return absl::PermissionDeniedError(absl::StrCat(
          caller->Describe(), ": ", field->name(), ": needs scope ", scope,
          "; only the gateway (for a caller holding it) or an operator may "
          "set it"));
    }
  }
  return absl::OkStatus();
}

absl::Status AuthorizeStores(
    const Caller& caller,
    const google::protobuf::RepeatedPtrField<std::string>& stores) {
  if (caller.any_store) return absl::OkStatus();
  for (const std::string& store : stores) {
    if (std::find(caller.stores.begin(), caller.stores.end(), store) ==
        caller.stores.end()) {
      return absl::PermissionDeniedError(
          absl::StrCat(caller.Describe(), ": store \"", store,
                       "\" is not among the certificate's stores (SAN URI ",
                       kStoreUriPrefix, store, ")"));
    }
  }
  return absl::OkStatus();
}

namespace {

// Runs AuthorizeMethod on every call of a mutual-TLS listener before the
// call reaches a service, so a service added later is closed to the roles
// not listed for it.
class MethodAuthorizer final : public grpc::AuthMetadataProcessor {
 public:
  // Cheap and non-blocking: run it on the transport thread.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& metadata,
                       grpc::AuthContext* context,
                       OutputMetadata* consumed_metadata,
                       OutputMetadata* response_metadata) override {
    absl::StatusOr<Caller> caller = CallerFromAuthContext(*context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    auto path = metadata.find(":path");
    if (path == metadata.end()) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "call without a method path");
    }
    absl::string_view method(path->second.data(), path->second.size());
    bool sets_actor = metadata.find(kActorMetadataKey) != metadata.end();
    return ToGrpcStatus(AuthorizeMethod(*caller, method, sets_actor));
  }
};

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
MutualTlsServerCredentials(const std::string& cert_file,
                           const std::string& key_file,
                           const std::string& client_ca_file) {
  absl::StatusOr<std::string> cert = ReadFile(cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(key_file);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> ca = ReadFile(client_ca_file);
  if (!ca.ok()) return ca.status();
  grpc::SslServerCredentialsOptions ssl(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = std::move(*ca);
  ssl.pem_key_cert_pairs.push_back({std::move(*key), std::move(*cert)});
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::SslServerCredentials(ssl);
  credentials->SetAuthMetadataProcessor(std::make_shared<MethodAuthorizer>());
  return credentials;
}

}  // namespace dsar
