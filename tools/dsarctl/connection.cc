// The channel to the server, and how a failed call becomes an exit code.

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "tools/dsarctl/cli.h"

namespace dsarctl {
namespace {

// Contents of `path`, or "" for no path. The files were checked by
// CheckConnectionSettings before any command ran.
std::string ReadPem(const std::string& path) {
  if (path.empty()) return "";
  absl::StatusOr<std::string> text = dsar::ReadFile(path);
  return text.ok() ? *text : "";
}

}  // namespace

std::shared_ptr<grpc::Channel> OpenChannel(const Options& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls || !options.ca_cert.empty() || !options.client_cert.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadPem(options.ca_cert);
    ssl.pem_cert_chain = ReadPem(options.client_cert);
    ssl.pem_private_key = ReadPem(options.client_key);
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  // Calls do not wait for the channel to become ready, so an unreachable
  // server fails fast with UNAVAILABLE.
  return grpc::CreateChannel(options.addr, credentials);
}

int ExitFor(const grpc::Status& status) {
  const char* kind = "error";
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      kind = "not found";
      break;
    case grpc::StatusCode::UNAVAILABLE:
      kind = "unavailable";
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      kind = "timed out";
      break;
    case grpc::StatusCode::UNIMPLEMENTED:
      kind = "not implemented by the server";
      break;
    case grpc::StatusCode::INVALID_ARGUMENT:
      kind = "invalid argument";
      break;
    case grpc::StatusCode::FAILED_PRECONDITION:
      kind = "refused";
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      kind = "denied";
      break;
    default:
      break;
  }
  std::fprintf(stderr, "dsarctl: %s: %s\n", kind,
               status.error_message().c_str());
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return kExitUsage;
    default:
      return kExitError;
  }
}

}  // namespace dsarctl
