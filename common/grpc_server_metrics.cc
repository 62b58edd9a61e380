#include "common/grpc_server_metrics.h"

#include <google/protobuf/descriptor.h>

#include <chrono>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/admin_server.h"
#include "prometheus/histogram.h"

namespace dsar {
namespace {

using prometheus::Family;
using prometheus::Histogram;

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  int index = static_cast<int>(code);
  if (index < 0 || index >= static_cast<int>(std::size(kNames))) {
    return "UNKNOWN";
  }
  return kNames[index];
}

// Times one call, server or client side, from its creation to the hook
// point where its status is known, into `family`{service,method,code}.
class LatencyInterceptor : public grpc::experimental::Interceptor {
 public:
  LatencyInterceptor(Family<Histogram>* family, const char* path,
                     grpc::experimental::InterceptionHookPoints status_point)
      : family_(family),
        path_(path == nullptr ? "" : path),
        status_point_(status_point),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(status_point_)) {
      double seconds = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - start_)
                           .count();
      std::string service, method;
      GrpcMethodLabels(path_, &service, &method);
      family_
          ->Add({{"service", service},
                 {"method", method},
                 {"code", CodeName(StatusCodeAt(methods))}},
                LatencyBuckets())
          .Observe(seconds);
    }
    methods->Proceed();
  }

 private:
  grpc::StatusCode StatusCodeAt(
      grpc::experimental::InterceptorBatchMethods* methods) const {
    if (status_point_ ==
        grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS) {
      return methods->GetSendStatus().error_code();
    }
    grpc::Status* status = methods->GetRecvStatus();
    return status == nullptr ? grpc::StatusCode::UNKNOWN : status->error_code();
  }

  Family<Histogram>* family_;
  std::string path_;
  grpc::experimental::InterceptionHookPoints status_point_;
  std::chrono::steady_clock::time_point start_;
};

class LatencyInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit LatencyInterceptorFactory(Family<Histogram>* family)
      : family_(family) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new LatencyInterceptor(
        family_, info->method(),
        grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS);
  }

 private:
  Family<Histogram>* family_;
};

class ClientLatencyInterceptorFactory
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit ClientLatencyInterceptorFactory(Family<Histogram>* family)
      : family_(family) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    return new LatencyInterceptor(
        family_, info->method(),
        grpc::experimental::InterceptionHookPoints::POST_RECV_STATUS);
  }

 private:
  Family<Histogram>* family_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>
MakeGrpcClientMetrics(prometheus::Registry& registry, const std::string& name,
                      const std::string& help) {
  Family<Histogram>& family =
      prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
  return std::make_unique<ClientLatencyInterceptorFactory>(&family);
}

void GrpcMethodLabels(const std::string& path, std::string* service,
                      std::string* method) {
  *service = "unknown";
  *method = "unknown";
  if (path.size() < 4 || path[0] != '/') return;
  size_t slash = path.find('/', 1);
  if (slash == std::string::npos || slash + 1 >= path.size()) return;
  std::string service_name = path.substr(1, slash - 1);
  std::string method_name = path.substr(slash + 1);
  if (method_name.find('/') != std::string::npos) return;
  bool known =
      (service_name == "grpc.health.v1.Health" &&
       (method_name == "Check" || method_name == "Watch")) ||
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          absl::StrCat(service_name, ".", method_name)) != nullptr;
  if (!known) return;
  *service = service_name;
  *method = method_name;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeGrpcServerMetrics(prometheus::Registry& registry) {
  Family<Histogram>& family =
      prometheus::BuildHistogram()
          .Name("dsar_grpc_server_handling_seconds")
          .Help(
              "Time from a gRPC call's arrival to its status being sent, "
              "by service, method and status code.")
          .Register(registry);
  return std::make_unique<LatencyInterceptorFactory>(&family);
}

}  // namespace dsar
