#include "tools/dsarctl/reflection_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace dsarctl {

using google::protobuf::DescriptorProto;
using google::protobuf::FileDescriptorProto;

namespace {

std::string Join(const std::string& scope, const std::string& name) {
  return scope.empty() ? name : absl::StrCat(scope, ".", name);
}

void AddMessageSymbols(const DescriptorProto& message, const std::string& scope,
                       std::set<std::string>* symbols) {
  const std::string name = Join(scope, message.name());
  symbols->insert(name);
  for (const auto& field : message.field())
    symbols->insert(Join(name, field.name()));
  for (const auto& field : message.extension()) {
    symbols->insert(Join(name, field.name()));
  }
  for (const auto& nested : message.nested_type()) {
    AddMessageSymbols(nested, name, symbols);
  }
  for (const auto& enumeration : message.enum_type()) {
    symbols->insert(Join(name, enumeration.name()));
    for (const auto& value : enumeration.value()) {
      symbols->insert(Join(name, value.name()));
    }
  }
}

// Every fully qualified name `file` defines.
std::set<std::string> SymbolsOf(const FileDescriptorProto& file) {
  std::set<std::string> symbols;
  const std::string& package = file.package();
  for (const auto& message : file.message_type()) {
    AddMessageSymbols(message, package, &symbols);
  }
  for (const auto& enumeration : file.enum_type()) {
    symbols.insert(Join(package, enumeration.name()));
    for (const auto& value : enumeration.value()) {
      symbols.insert(Join(package, value.name()));
    }
  }
  for (const auto& service : file.service()) {
    const std::string name = Join(package, service.name());
    symbols.insert(name);
    for (const auto& method : service.method()) {
      symbols.insert(Join(name, method.name()));
    }
  }
  for (const auto& field : file.extension()) {
    symbols.insert(Join(package, field.name()));
  }
  return symbols;
}

}  // namespace

ReflectionClient::ReflectionClient(std::shared_ptr<grpc::Channel> channel,
                                   const Options& options)
    : channel_(std::move(channel)),
      options_(options),
      stub_(grpc::reflection::v1alpha::ServerReflection::NewStub(channel_)),
      pool_(this) {}

ReflectionClient::~ReflectionClient() {
  if (stream_ != nullptr && stream_status_.ok()) {
    stream_->WritesDone();
    (void)stream_->Finish();
  }
}

grpc::Status ReflectionClient::Exchange(const Request& request,
                                        Response* response) {
  if (!stream_status_.ok()) return stream_status_;
  if (stream_ == nullptr) {
    context_ = std::make_unique<grpc::ClientContext>();
    options_.Prepare(context_.get());
    stream_ = stub_->ServerReflectionInfo(context_.get());
  }
  if (!stream_->Write(request) || !stream_->Read(response)) {
    stream_status_ = stream_->Finish();
    if (stream_status_.ok()) {
      stream_status_ = grpc::Status(grpc::StatusCode::UNKNOWN,
                                    "the reflection stream ended early");
    }
    return stream_status_;
  }
  if (response->has_error_response()) {
    return grpc::Status(
        static_cast<grpc::StatusCode>(response->error_response().error_code()),
        response->error_response().error_message());
  }
  return grpc::Status::OK;
}

grpc::Status ReflectionClient::ListServices(
    std::vector<std::string>* services) {
  if (services_.empty()) {
    Request request;
    request.set_list_services("");
    Response response;
    grpc::Status status = Exchange(request, &response);
    if (!status.ok()) {
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        status = grpc::Status(
            status.error_code(),
            absl::StrCat("the server does not offer grpc.reflection.v1alpha "
                         "server reflection (",
                         status.error_message(), ")"));
      }
      return status_ = status;
    }
    for (const auto& service : response.list_services_response().service()) {
      services_.push_back(service.name());
    }
    std::sort(services_.begin(), services_.end());
  }
  *services = services_;
  return status_ = grpc::Status::OK;
}

bool ReflectionClient::AddFiles(const Response& response, std::string* first) {
  const auto& protos =
      response.file_descriptor_response().file_descriptor_proto();
  for (int i = 0; i < protos.size(); ++i) {
    FileDescriptorProto file;
    if (!file.ParseFromString(protos[i])) {
      status_ = grpc::Status(grpc::StatusCode::INTERNAL,
                             "the server sent a malformed FileDescriptorProto");
      return false;
    }
    if (i == 0) *first = file.name();
    files_.emplace(file.name(), std::move(file));
  }
  if (protos.empty()) {
    status_ = grpc::Status(grpc::StatusCode::INTERNAL,
                           "the server answered with no file");
    return false;
  }
  return true;
}

bool ReflectionClient::FindFileByName(const std::string& filename,
                                      FileDescriptorProto* output) {
  auto it = files_.find(filename);
  if (it == files_.end()) {
    Request request;
    request.set_file_by_filename(filename);
    Response response;
    grpc::Status status = Exchange(request, &response);
    std::string first;
    if (!status.ok()) {
      status_ = status;
      return false;
    }
    if (!AddFiles(response, &first)) return false;
    it = files_.find(filename);
    if (it == files_.end()) {
      status_ = grpc::Status(grpc::StatusCode::NOT_FOUND,
                             absl::StrCat("no file ", filename));
      return false;
    }
  }
  *output = it->second;
  status_ = grpc::Status::OK;
  return true;
}

bool ReflectionClient::FindFileContainingSymbol(const std::string& symbol_name,
                                                FileDescriptorProto* output) {
  if (missing_symbols_.count(symbol_name) > 0) {
    status_ = grpc::Status(grpc::StatusCode::NOT_FOUND,
                           absl::StrCat("no symbol ", symbol_name));
    return false;
  }
  Request request;
  request.set_file_containing_symbol(symbol_name);
  Response response;
  grpc::Status status = Exchange(request, &response);
  if (!status.ok()) {
    // A server answers NOT_FOUND for an unknown symbol; other codes are a
    // broken stream or server and are not cached.
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
      missing_symbols_.insert(symbol_name);
      status = grpc::Status(status.error_code(),
                            absl::StrCat("no symbol ", symbol_name));
    }
    status_ = status;
    return false;
  }
  std::string first;
  if (!AddFiles(response, &first)) return false;
  // Servers built on gRPC 1.51 reuse one response message for the whole
  // stream, so an answer may also carry files sent for earlier requests:
  // pick the file that defines the symbol rather than trusting the order.
  for (const auto& [name, file] : files_) {
    if (SymbolsOf(file).count(symbol_name) > 0) {
      *output = file;
      status_ = grpc::Status::OK;
      return true;
    }
  }
  *output = files_[first];
  status_ = grpc::Status::OK;
  return true;
}

bool ReflectionClient::FindFileContainingExtension(
    const std::string& containing_type, int field_number,
    FileDescriptorProto* output) {
  Request request;
  request.mutable_file_containing_extension()->set_containing_type(
      containing_type);
  request.mutable_file_containing_extension()->set_extension_number(
      field_number);
  Response response;
  grpc::Status status = Exchange(request, &response);
  if (!status.ok()) {
    status_ = status;
    return false;
  }
  std::string first;
  if (!AddFiles(response, &first)) return false;
  *output = files_[first];
  return true;
}

const google::protobuf::ServiceDescriptor* ReflectionClient::FindService(
    const std::string& name) {
  if (const auto* service = pool_.FindServiceByName(name)) {
    status_ = grpc::Status::OK;
    return service;
  }
  if (status_.error_code() != grpc::StatusCode::NOT_FOUND &&
      status_.error_code() != grpc::StatusCode::OK) {
    return nullptr;  // The server could not be asked.
  }
  // A short name: the one listed service that ends with ".name".
  std::vector<std::string> services;
  if (!ListServices(&services).ok()) return nullptr;
  std::vector<std::string> matches;
  for (const std::string& service : services) {
    if (absl::EndsWith(service, absl::StrCat(".", name))) {
      matches.push_back(service);
    }
  }
  if (matches.size() == 1) {
    if (const auto* service = pool_.FindServiceByName(matches[0])) {
      status_ = grpc::Status::OK;
      return service;
    }
    return nullptr;
  }
  status_ = grpc::Status(
      grpc::StatusCode::NOT_FOUND,
      matches.empty()
          ? absl::StrCat("the server has no service \"", name, "\"")
          : absl::StrCat("\"", name, "\" matches more than one service"));
  return nullptr;
}

const google::protobuf::MethodDescriptor* ReflectionClient::FindMethod(
    const std::string& name) {
  size_t split = name.rfind('/');
  if (split == std::string::npos) split = name.rfind('.');
  if (split == std::string::npos || split == 0 || split + 1 == name.size()) {
    status_ = grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("\"", name, "\" is not a method: use Service/Method"));
    return nullptr;
  }
  const google::protobuf::ServiceDescriptor* service =
      FindService(name.substr(0, split));
  if (service == nullptr) return nullptr;
  const auto* method = service->FindMethodByName(name.substr(split + 1));
  if (method == nullptr) {
    status_ = grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("service ", service->full_name(), " has no method \"",
                     name.substr(split + 1), "\""));
  }
  return method;
}

}  // namespace dsarctl
