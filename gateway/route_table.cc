#include "gateway/route_table.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "dsar/v1/auth.pb.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"

namespace dsar::gateway {
namespace {

using google::protobuf::MethodDescriptor;

// Appends the route of `rule` (not its additional bindings) for `method`.
absl::Status AddRule(const google::api::HttpRule& rule,
                     const MethodDescriptor* method, const std::string& scope,
                     std::vector<Route>* routes) {
  Route route;
  std::string path;
  switch (rule.pattern_case()) {
    case google::api::HttpRule::kGet:
      route.http_method = "GET";
      path = rule.get();
      break;
    case google::api::HttpRule::kPut:
      route.http_method = "PUT";
      path = rule.put();
      break;
    case google::api::HttpRule::kPost:
      route.http_method = "POST";
      path = rule.post();
      break;
    case google::api::HttpRule::kDelete:
      route.http_method = "DELETE";
      path = rule.delete_();
      break;
    case google::api::HttpRule::kPatch:
      route.http_method = "PATCH";
      path = rule.patch();
      break;
    case google::api::HttpRule::kCustom:
      route.http_method = rule.custom().kind();
      path = rule.custom().path();
      break;
    case google::api::HttpRule::PATTERN_NOT_SET:
      return absl::FailedPreconditionError(absl::StrCat(
          method->full_name(), ": google.api.http rule has no pattern"));
  }
  absl::StatusOr<PathTemplate> tmpl = PathTemplate::Parse(path);
  if (!tmpl.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(method->full_name(), ": ", tmpl.status().message()));
  }
  route.path = *std::move(tmpl);
  route.body = rule.body();
  if (!route.body.empty() && route.body != "*" &&
      method->input_type()->FindFieldByName(route.body) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(method->full_name(), ": body field \"", route.body,
                     "\" not in ", method->input_type()->full_name()));
  }
  route.response_body = rule.response_body();
  if (!route.response_body.empty() &&
      method->output_type()->FindFieldByName(route.response_body) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        method->full_name(), ": response_body field \"", route.response_body,
        "\" not in ", method->output_type()->full_name()));
  }
  route.method = method;
  route.grpc_path =
      absl::StrCat("/", method->service()->full_name(), "/", method->name());
  route.required_scope = scope;
  routes->push_back(std::move(route));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RouteTable> RouteTable::Build(
    const std::vector<std::string>& service_names,
    const google::protobuf::DescriptorPool& pool) {
  RouteTable table;
  for (const std::string& name : service_names) {
    const google::protobuf::ServiceDescriptor* service =
        pool.FindServiceByName(name);
    if (service == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("service ", name, " is not linked into the gateway"));
    }
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      if (method->client_streaming()) {
        return absl::FailedPreconditionError(
            absl::StrCat(method->full_name(),
                         ": client-streaming methods cannot be transcoded"));
      }
      // A stream is not one JSON answer: a route provider serves it (e.g.
      // DownloadBundle, gateway/bundle_download.cc), reading its route from
      // the same annotation. It gets no route here.
      if (method->server_streaming()) continue;
      const google::protobuf::MethodOptions& options = method->options();
      if (!options.HasExtension(google::api::http)) {
        return absl::FailedPreconditionError(absl::StrCat(
            method->full_name(), ": no google.api.http annotation"));
      }
      const std::string& scope = options.GetExtension(dsar::v1::required_scope);
      if (scope.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            method->full_name(), ": no (dsar.v1.required_scope) option"));
      }
      const google::api::HttpRule& rule =
          options.GetExtension(google::api::http);
      RETURN_IF_ERROR(AddRule(rule, method, scope, &table.routes_));
      for (const google::api::HttpRule& extra : rule.additional_bindings()) {
        RETURN_IF_ERROR(AddRule(extra, method, scope, &table.routes_));
      }
    }
  }
  // More literal segments first, so "/v1/requests/{id}:cancel" is tried
  // before a catch-all such as "/v1/{name=**}". Stable: ties keep proto order.
  std::stable_sort(table.routes_.begin(), table.routes_.end(),
                   [](const Route& a, const Route& b) {
                     return a.path.LiteralCount() > b.path.LiteralCount();
                   });
  for (size_t i = 0; i < table.routes_.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (table.routes_[i].http_method == table.routes_[j].http_method &&
          table.routes_[i].path.text() == table.routes_[j].path.text()) {
        return absl::FailedPreconditionError(absl::StrCat(
            table.routes_[i].http_method, " ", table.routes_[i].path.text(),
            " is bound by both ", table.routes_[j].method->full_name(), " and ",
            table.routes_[i].method->full_name()));
      }
    }
  }
  return table;
}

absl::StatusOr<RouteMatch> RouteTable::Find(const std::string& http_method,
                                            const std::string& path) const {
  bool path_matched = false;
  for (const Route& route : routes_) {
    std::optional<std::vector<PathBinding>> bindings = route.path.Match(path);
    if (!bindings) continue;
    if (route.http_method != http_method) {
      path_matched = true;
      continue;
    }
    return RouteMatch{&route, *std::move(bindings)};
  }
  if (path_matched) {
    return absl::UnimplementedError(
        absl::StrCat("method ", http_method, " not allowed on ", path));
  }
  return absl::NotFoundError(absl::StrCat("no route for ", path));
}

}  // namespace dsar::gateway
