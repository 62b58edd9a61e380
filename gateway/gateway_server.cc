#include "gateway/gateway_server.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/admin_server.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "dsar/v1/auth.pb.h"
#include "dsar/v1/requests.pb.h"
#include "gateway/buffered_http_server.h"
#include "gateway/request_bounds.h"
#include "gateway/subject_access.h"
#include "gateway/transcoder.h"

namespace dsar::gateway {
namespace {

// A method httplib routes to us; anything else is labelled "other".
bool IsKnownHttpMethod(const std::string& method) {
  return method == "GET" || method == "POST" || method == "PUT" ||
         method == "PATCH" || method == "DELETE" || method == "OPTIONS" ||
         method == "HEAD";
}

// The google.rpc.Status body for errors httplib answers by itself.
absl::Status StatusForHttpError(int http_status, size_t max_body_bytes) {
  switch (http_status) {
    case 413:
      return absl::ResourceExhaustedError(
          absl::StrCat("request body larger than ", max_body_bytes, " bytes"));
    case 404:
      return absl::NotFoundError("no such route");
    case 408:
      return absl::DeadlineExceededError("request not received in time");
    case 414:
    case 431:
      return absl::InvalidArgumentError("request line or headers too large");
    case 400:
      return absl::InvalidArgumentError("malformed HTTP request");
    default:
      return absl::UnknownError(absl::StrCat("HTTP error ", http_status));
  }
}

bool IsJsonContentType(const std::string& content_type) {
  absl::string_view type = content_type;
  type = type.substr(0, type.find(';'));
  type = absl::StripAsciiWhitespace(type);
  return type.empty() || absl::EqualsIgnoreCase(type, "application/json");
}

HttpReply WithStatus(HttpReply reply, int status) {
  reply.status = status;
  return reply;
}

// The text of OpenSSL's oldest queued error (and clears the queue); a
// generic text when there is none.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

// The HTTP server: plain (buffered_http_server.h), or TLS with the
// certificate chain and key of `options` (TLS 1.2 or later, no compression,
// no renegotiation).
absl::StatusOr<std::unique_ptr<httplib::Server>> NewHttpServer(
    const GatewayOptions& options) {
  const std::string& cert = options.tls_cert_file;
  const std::string& key = options.tls_key_file;
  if (cert.empty() && key.empty()) {
    BufferedHttpServer::Options plain;
    plain.next_request_spin = options.next_request_spin;
    plain.max_spinning =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency() / 2));
    if (options.metrics != nullptr) {
      auto& spins =
          prometheus::BuildCounter()
              .Name("dsar_gateway_next_request_spins_total")
              .Help(
                  "Waits awake for a keep-alive connection's next request, "
                  "by whether it came during the wait (caught) or not "
                  "(missed).")
              .Register(*options.metrics);
      plain.spins_caught = &spins.Add({{"outcome", "caught"}});
      plain.spins_missed = &spins.Add({{"outcome", "missed"}});
    }
    return std::make_unique<BufferedHttpServer>(plain);
  }
  if (cert.empty() || key.empty()) {
    return absl::InvalidArgumentError(
        "the HTTPS listener needs both a certificate and its key");
  }
  // Read first, so that a missing or unreadable file is named with errno's
  // reason rather than as an OpenSSL error.
  for (const std::string* path : {&cert, &key}) {
    absl::StatusOr<std::string> read = ReadFile(*path);
    if (!read.ok()) return read.status();
    OPENSSL_cleanse(read->data(), read->size());
  }
  std::string error;
  auto setup = [&](SSL_CTX& context) {
    SSL_CTX_set_options(&context,
                        SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_set_min_proto_version(&context, TLS1_2_VERSION) != 1) {
      error = absl::StrCat("TLS 1.2: ", OpenSslError());
      return false;
    }
    if (SSL_CTX_use_certificate_chain_file(&context, cert.c_str()) != 1) {
      error = absl::StrCat(
          cert, ": cannot load a PEM certificate chain: ", OpenSslError());
      return false;
    }
    if (SSL_CTX_use_PrivateKey_file(&context, key.c_str(), SSL_FILETYPE_PEM) !=
            1 ||
        SSL_CTX_check_private_key(&context) != 1) {
      error = absl::StrCat(key, ": not a PEM private key of ", cert, ": ",
                           OpenSslError());
      return false;
    }
    return true;
  };
  auto server = std::make_unique<httplib::SSLServer>(setup);
  if (!server->is_valid()) {
    return absl::InvalidArgumentError(
        error.empty() ? absl::StrCat("cannot set up TLS: ", OpenSslError())
                      : error);
  }
  return server;
}

}  // namespace

GatewayServer::GatewayServer(
    const GatewayOptions& options, RouteTable routes,
    std::unique_ptr<httplib::Server> http,
    std::unique_ptr<RequestAuthenticator> authenticator,
    std::shared_ptr<const BackendClient> backend,
    std::vector<std::unique_ptr<RouteProvider>> providers)
    : options_(options),
      routes_(std::move(routes)),
      authenticator_(std::move(authenticator)),
      backend_(std::move(backend)),
      providers_(std::move(providers)),
      http_(std::move(http)) {}

GatewayServer::~GatewayServer() = default;

absl::StatusOr<std::unique_ptr<GatewayServer>> GatewayServer::Create(
    const GatewayOptions& options,
    std::unique_ptr<RequestAuthenticator> authenticator,
    std::shared_ptr<const BackendClient> backend,
    std::vector<std::unique_ptr<RouteProvider>> providers) {
  absl::StatusOr<RouteTable> routes = RouteTable::Build(
      options.services, *google::protobuf::DescriptorPool::generated_pool());
  if (!routes.ok()) return routes.status();
  absl::StatusOr<std::unique_ptr<httplib::Server>> http_server =
      NewHttpServer(options);
  if (!http_server.ok()) return http_server.status();
  std::unique_ptr<GatewayServer> server(new GatewayServer(
      options, *std::move(routes), *std::move(http_server),
      std::move(authenticator), std::move(backend), std::move(providers)));

  httplib::Server& http = *server->http_;
  GatewayServer* self = server.get();
  if (options.metrics != nullptr) {
    server->http_requests_ =
        &prometheus::BuildCounter()
             .Name("dsar_http_requests_total")
             .Help(
                 "HTTP requests answered, by route template, method and "
                 "status code.")
             .Register(*options.metrics);
    server->http_seconds_ =
        &prometheus::BuildHistogram()
             .Name("dsar_http_request_duration_seconds")
             .Help(
                 "Time to answer an HTTP request (a streamed body: until "
                 "its first byte), by route template and method.")
             .Register(*options.metrics);
  }
  auto handler = [self](const httplib::Request& request,
                        httplib::Response& response) {
    absl::Time start = absl::Now();
    std::string route;
    HttpReply reply = self->Handle(request, &route);
    response.status = reply.status;
    for (const auto& [name, value] : reply.headers) {
      response.set_header(name, value);
    }
    response.set_header("Cache-Control", "no-store");
    response.set_header("X-Content-Type-Options", "nosniff");
    if (reply.streamed_body != nullptr) {
      // httplib pulls a piece whenever the socket took the previous one:
      // one piece in memory, whatever the body's size.
      std::shared_ptr<StreamedBody> body = reply.streamed_body;
      response.set_content_provider(
          static_cast<size_t>(body->size()), reply.content_type,
          [body](size_t, size_t, httplib::DataSink& sink) {
            std::string piece;
            if (!body->Next(&piece)) return false;
            return sink.write(piece.data(), piece.size());
          },
          [body](bool success) { body->Finish(success); });
    } else {
      response.set_content(reply.body, reply.content_type.c_str());
    }
    const absl::Duration took = absl::Now() - start;
    // Labels and the access log name the route template, never the path:
    // paths hold request ids and whatever a client typed.
    const std::string method =
        IsKnownHttpMethod(request.method) ? request.method : "other";
    if (self->http_requests_ != nullptr) {
      self->http_requests_
          ->Add({{"route", route},
                 {"method", method},
                 {"code", std::to_string(reply.status)}})
          .Increment();
      self->http_seconds_
          ->Add({{"route", route}, {"method", method}}, LatencyBuckets())
          .Observe(absl::ToDoubleSeconds(took));
    }
    if (self->options_.access_log) {
      LogInfo(absl::StrCat(method, " ", route, " ", reply.status, " ",
                           absl::ToInt64Microseconds(took), "us"));
    }
  };
  // Routing is ours (route providers, RouteTable): every path goes to Handle.
  http.Get(".*", handler);
  http.Post(".*", handler);
  http.Put(".*", handler);
  http.Patch(".*", handler);
  http.Delete(".*", handler);
  http.Options(".*", handler);
  size_t max_body = options.max_body_bytes;
  // Errors httplib produces itself (413, malformed requests) get the same
  // google.rpc.Status body as ours.
  httplib::Server::HandlerWithResponse error_handler =
      [max_body](const httplib::Request&, httplib::Response& response) {
        if (!response.body.empty()) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        response.set_content(
            ErrorJson(StatusForHttpError(response.status, max_body)),
            "application/json");
        return httplib::Server::HandlerResponse::Handled;
      };
  http.set_error_handler(std::move(error_handler));
  http.set_exception_handler([](const httplib::Request&,
                                httplib::Response& response,
                                std::exception_ptr) {
    response.status = 500;
    response.set_content(ErrorJson(absl::InternalError("internal error")),
                         "application/json");
  });
  http.set_payload_max_length(options.max_body_bytes);
  // Over TLS (httplib's own stream) headers and body go out in separate
  // writes; with Nagle's algorithm the body would wait for the client's
  // delayed ACK (40 ms on Linux). A streamed body has several writes too.
  http.set_tcp_nodelay(true);
  auto seconds_usec = [](absl::Duration d, time_t* sec, time_t* usec) {
    int64_t micros = absl::ToInt64Microseconds(d);
    *sec = static_cast<time_t>(micros / 1000000);
    *usec = static_cast<time_t>(micros % 1000000);
  };
  time_t sec, usec;
  seconds_usec(options.read_timeout, &sec, &usec);
  http.set_read_timeout(sec, usec);
  seconds_usec(options.write_timeout, &sec, &usec);
  http.set_write_timeout(sec, usec);
  http.set_keep_alive_timeout(static_cast<time_t>(
      std::max<int64_t>(1, absl::ToInt64Seconds(options.keep_alive_timeout))));
  http.set_keep_alive_max_count(
      static_cast<size_t>(std::max(1, options.keep_alive_max_requests)));
  BindExclusively(http);
  int threads = std::max(1, options.threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  return server;
}

absl::StatusOr<int> GatewayServer::Bind() {
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(options_.host);
  } else if (!http_->bind_to_port(options_.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.host, ":", options_.port));
  }
  return port;
}

void GatewayServer::Serve() { http_->listen_after_bind(); }

void GatewayServer::Stop() { http_->stop(); }

HttpReply GatewayServer::Handle(const httplib::Request& request,
                                std::string* route_label) const {
  const std::string& method = request.method;
  const std::string& path = request.path;
  std::string ignored;
  if (route_label == nullptr) route_label = &ignored;
  *route_label = "unmatched";
  if (method == "GET" && path == "/healthz") {
    *route_label = "/healthz";
    // The gateway's own liveness; says nothing about the coordinator.
    return JsonReply(200, R"({"status":"SERVING"})");
  }
  if (!request.body.empty() &&
      !IsJsonContentType(request.get_header_value("Content-Type"))) {
    return WithStatus(ErrorReply(absl::InvalidArgumentError(
                          "the request body must be application/json")),
                      415);
  }
  // Bounded before anything parses it or copies it into a message.
  if (absl::Status bounded =
          CheckRequestBounds(path,
                             std::vector<std::pair<std::string, std::string>>(
                                 request.params.begin(), request.params.end()),
                             request.body);
      !bounded.ok()) {
    return ErrorReply(bounded);
  }

  const RouteProvider* provider = nullptr;
  std::optional<RouteProvider::Match> provided;
  for (const std::unique_ptr<RouteProvider>& candidate : providers_) {
    provided = candidate->Find(method, path);
    if (provided) {
      provider = candidate.get();
      break;
    }
  }
  absl::StatusOr<RouteMatch> route = absl::NotFoundError("");
  std::string scope;
  if (provided) {
    scope = provided->required_scope;
    *route_label = provided->path_template;
  } else {
    route = routes_.Find(method, path);
    if (route.ok()) *route_label = route->route->path.text();
    if (!route.ok()) {
      if (route.status().code() == absl::StatusCode::kUnimplemented) {
        return WithStatus(ErrorReply(route.status()), 405);
      }
      return ErrorReply(route.status());
    }
    scope = route->route->required_scope;
  }

  absl::StatusOr<Caller> caller =
      provided && provided->authenticates_itself
          ? absl::StatusOr<Caller>(Caller{})
          : authenticator_->Authorize(request.get_header_value("Authorization"),
                                      scope, absl::Now());
  if (!caller.ok()) {
    HttpReply reply = ErrorReply(caller.status());
    reply.headers.push_back(
        {"WWW-Authenticate", WwwAuthenticate(caller.status(), scope)});
    return reply;
  }
  if (provided) {
    HttpRequest provided_request{method, path, request.body, {}, {}};
    provided_request.headers.assign(request.headers.begin(),
                                    request.headers.end());
    provided_request.query.assign(request.params.begin(), request.params.end());
    return provider->Serve(*provided, provided_request, *caller);
  }
  return Transcode(*route, request, *caller);
}

namespace {

// Fields marked (dsar.v1.field_scope) may be set only by callers holding
// that scope; the check walks every set field, nested messages included.
absl::Status CheckFieldScopes(const google::protobuf::Message& message,
                              const Caller& caller, const std::string& prefix) {
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  message.GetReflection()->ListFields(message, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    std::string path = prefix.empty()
                           ? field->name()
                           : absl::StrCat(prefix, ".", field->name());
    const std::string& scope =
        field->options().GetExtension(dsar::v1::field_scope);
    if (!scope.empty() && !caller.HasScope(scope)) {
      return absl::PermissionDeniedError(absl::StrCat(
          path, ": setting this field requires the ", scope, " scope"));
    }
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE)
      continue;
    const google::protobuf::Reflection* reflection = message.GetReflection();
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
        RETURN_IF_ERROR(
            CheckFieldScopes(reflection->GetRepeatedMessage(message, field, i),
                             caller, absl::StrCat(path, "[", i, "]")));
      }
    } else {
      RETURN_IF_ERROR(CheckFieldScopes(reflection->GetMessage(message, field),
                                       caller, path));
    }
  }
  return absl::OkStatus();
}

}  // namespace

HttpReply GatewayServer::Transcode(const RouteMatch& match,
                                   const httplib::Request& request,
                                   const Caller& caller) const {
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> message =
      BuildRequestMessage(match, request.params, request.body);
  if (!message.ok()) return ErrorReply(message.status());
  absl::Status fields_allowed = CheckFieldScopes(**message, caller, "");
  if (!fields_allowed.ok()) return ErrorReply(fields_allowed);
  std::string serialized;
  if (!(*message)->SerializeToString(&serialized)) {
    return ErrorReply(absl::InternalError("cannot serialize the request"));
  }
  const bool subject = !ReachesEveryRequest(caller);
  SubjectMethodRule rule = SubjectRuleFor(match.route->method);
  if (subject) {
    absl::Status allowed = CheckSubjectCall(rule, **message, caller);
    if (!allowed.ok()) return ErrorReply(allowed);
  }
  absl::StatusOr<std::string> response =
      backend_->Call(match.route->grpc_path, serialized, caller.subject);
  if (!response.ok()) return ErrorReply(response.status());
  if (subject && rule.kind == SubjectMethodRule::kListOwn) {
    absl::Status kept = KeepSubjectsOwnRequests(caller, &*response);
    if (!kept.ok()) return ErrorReply(kept);
  }
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> answer =
      ParseResponse(*match.route, *response);
  if (!answer.ok()) return ErrorReply(answer.status());
  // A subject's answers hold only their own requests: not masked.
  if (!subject && HasReadScopedFields(match.route->method->output_type())) {
    MaskUnreadableFields(caller, answer->get());
  }
  absl::StatusOr<std::string> json = ResponseJson(*match.route, **answer);
  if (!json.ok()) return ErrorReply(json.status());
  return JsonReply(200, *std::move(json));
}

absl::Status GatewayServer::CheckSubjectCall(
    const SubjectMethodRule& rule, const google::protobuf::Message& message,
    const Caller& caller) const {
  ProvenSubject subject = ProvenSubjectOf(caller);
  switch (rule.kind) {
    case SubjectMethodRule::kUngoverned:
    case SubjectMethodRule::kOpen:
    case SubjectMethodRule::kListOwn:
      return absl::OkStatus();
    case SubjectMethodRule::kOperatorsOnly:
      return absl::PermissionDeniedError(
          "this method is for operators and services (dsar.admin or "
          "dsar.service), not for a data subject's token");
    case SubjectMethodRule::kCreateOwn: {
      const auto& create =
          static_cast<const v1::CreateRequestRequest&>(message);
      if (subject.empty()) {
        return absl::PermissionDeniedError(
            "a data subject's token must prove its identity (an email with "
            "email_verified: true, or a user_id) to submit a request");
      }
      for (int i = 0; i < create.identities_size(); ++i) {
        if (!subject.Matches(create.identities(i))) {
          return absl::PermissionDeniedError(absl::StrCat(
              "identities[", i,
              "].value: a data subject's token may only submit requests "
              "about its own verified email or user_id"));
        }
      }
      return absl::OkStatus();
    }
    case SubjectMethodRule::kOwnRequest: {
      const google::protobuf::FieldDescriptor* field =
          message.GetDescriptor()->FindFieldByName(rule.request_id_field);
      if (field == nullptr ||
          field->cpp_type() !=
              google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
        return absl::InternalError(
            absl::StrCat(message.GetDescriptor()->full_name(),
                         " has no string field ", rule.request_id_field));
      }
      std::string id = message.GetReflection()->GetString(message, field);
      v1::GetRequestRequest get;
      get.set_id(id);
      absl::StatusOr<std::string> found =
          backend_->Call("/dsar.v1.DsarService/GetRequest",
                         get.SerializeAsString(), caller.subject);
      if (!found.ok()) return found.status();
      v1::Request request;
      if (!request.ParseFromString(*found)) {
        return absl::InternalError("the backend's answer is not a Request");
      }
      if (subject.empty() || !subject.Owns(request)) {
        return RequestNotFound(id);
      }
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown subject rule");
}

absl::Status GatewayServer::KeepSubjectsOwnRequests(
    const Caller& caller, std::string* serialized) const {
  v1::ListRequestsResponse list;
  if (!list.ParseFromString(*serialized)) {
    return absl::InternalError(
        "the backend's answer is not a ListRequestsResponse");
  }
  ProvenSubject subject = ProvenSubjectOf(caller);
  v1::ListRequestsResponse own;
  own.set_next_page_token(list.next_page_token());
  for (v1::Request& request : *list.mutable_requests()) {
    if (!subject.empty() && subject.Owns(request)) {
      *own.add_requests() = std::move(request);
    }
  }
  *serialized = own.SerializeAsString();
  return absl::OkStatus();
}

}  // namespace dsar::gateway
