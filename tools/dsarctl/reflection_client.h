#ifndef DSAR_TOOLS_DSARCTL_REFLECTION_CLIENT_H_
#define DSAR_TOOLS_DSARCTL_REFLECTION_CLIENT_H_

// A client of gRPC server reflection (grpc.reflection.v1alpha, the version
// Debian's libgrpc++_reflection serves) that feeds a protobuf DescriptorPool:
// services, methods and messages of any server become descriptors that
// DynamicMessageFactory can build messages from.
//
// Not thread-safe: one command uses one client from one thread.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tools/dsarctl/cli.h"

namespace dsarctl {

class ReflectionClient : public google::protobuf::DescriptorDatabase {
 public:
  ReflectionClient(std::shared_ptr<grpc::Channel> channel,
                   const Options& options);
  ~ReflectionClient() override;

  // The services the server lists, sorted. On failure returns the call's
  // status (UNIMPLEMENTED when the server has no reflection).
  grpc::Status ListServices(std::vector<std::string>* services);

  // A pool whose descriptors are fetched from the server on first use.
  const google::protobuf::DescriptorPool& pool() { return pool_; }

  // The service named `name`, which may be a unique suffix of a listed
  // service ("DsarService" for "dsar.v1.DsarService"). nullptr when there
  // is none; then status() says why (NOT_FOUND, or the transport error).
  const google::protobuf::ServiceDescriptor* FindService(
      const std::string& name);

  // The method named "Service/Method" or "Service.Method" (Service as for
  // FindService); nullptr as FindService.
  const google::protobuf::MethodDescriptor* FindMethod(const std::string& name);

  // Why the last lookup failed: OK after a success, NOT_FOUND when the
  // server does not know the symbol, else the error of the reflection call.
  const grpc::Status& status() const { return status_; }

  // google::protobuf::DescriptorDatabase: each answers from the files
  // received so far or asks the server. They return false on a miss or an
  // error, recording it in status().
  bool FindFileByName(const std::string& filename,
                      google::protobuf::FileDescriptorProto* output) override;
  bool FindFileContainingSymbol(
      const std::string& symbol_name,
      google::protobuf::FileDescriptorProto* output) override;
  bool FindFileContainingExtension(
      const std::string& containing_type, int field_number,
      google::protobuf::FileDescriptorProto* output) override;

 private:
  using Request = grpc::reflection::v1alpha::ServerReflectionRequest;
  using Response = grpc::reflection::v1alpha::ServerReflectionResponse;

  // Sends one request on the (lazily opened) stream and reads its answer.
  // An error_response becomes a non-OK status with its code and message.
  grpc::Status Exchange(const Request& request, Response* response);
  // Stores the files of a file_descriptor_response; sets `*first` to the
  // name of the first one (the file the request asked about).
  bool AddFiles(const Response& response, std::string* first);

  std::shared_ptr<grpc::Channel> channel_;
  const Options& options_;
  std::unique_ptr<grpc::reflection::v1alpha::ServerReflection::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<Request, Response>> stream_;
  grpc::Status stream_status_;  // Set once the stream has broken.

  std::map<std::string, google::protobuf::FileDescriptorProto> files_;
  std::set<std::string> missing_symbols_;
  std::vector<std::string> services_;  // Filled by ListServices.
  grpc::Status status_;
  google::protobuf::DescriptorPool pool_;
};

}  // namespace dsarctl

#endif  // DSAR_TOOLS_DSARCTL_REFLECTION_CLIENT_H_
