#include "gateway/bundle_download.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"

namespace dsar::gateway {
namespace {

// How downloads through a signed URL are attributed in the audit log: the
// gateway knows only that the URL's holder fetched it.
constexpr char kDownloadActor[] = "signed-url";

HttpReply DownloadError(const absl::Status& status) {
  HttpReply reply = ErrorReply(status);
  reply.status = DownloadHttpStatus(status.code());
  return reply;
}

// The rest of a DownloadBundle stream, handed to the HTTP side. Owns the
// call: the context must outlive the reader.
class BundleStream final : public StreamedBody {
 public:
  BundleStream(
      std::unique_ptr<grpc::ClientContext> context,
      std::unique_ptr<v1::DsarService::Stub> stub,
      std::unique_ptr<grpc::ClientReader<v1::DownloadBundleResponse>> reader,
      std::string id, int64_t size)
      : context_(std::move(context)),
        stub_(std::move(stub)),
        reader_(std::move(reader)),
        id_(std::move(id)),
        size_(size) {}

  int64_t size() const override { return size_; }

  bool Next(std::string* piece) override {
    v1::DownloadBundleResponse message;
    if (!reader_->Read(&message)) {
      Fail(absl::StrCat("stream ended after ", received_, " of ", size_,
                        " bytes"));
      return false;
    }
    if (!message.has_chunk() || message.chunk().empty() ||
        received_ + static_cast<int64_t>(message.chunk().size()) > size_) {
      Fail("unexpected message in the stream");
      return false;
    }
    received_ += static_cast<int64_t>(message.chunk().size());
    *piece = std::move(*message.mutable_chunk());
    if (received_ == size_) {
      // The last piece goes out only after dsard ended the call with OK, so
      // a client never holds a complete body that dsard did not vouch for.
      v1::DownloadBundleResponse extra;
      if (reader_->Read(&extra)) {
        Fail("more bytes than the header announced");
        return false;
      }
      finished_ = true;
      grpc::Status status = reader_->Finish();
      if (!status.ok()) {
        std::fprintf(stderr, "dsar-gateway: download of %s failed: %s\n",
                     id_.c_str(), status.error_message().c_str());
        return false;
      }
    }
    return true;
  }

  void Finish(bool complete) override {
    if (finished_) return;
    // The client went away (or a piece failed): end the call.
    context_->TryCancel();
    finished_ = true;
    reader_->Finish();
  }

 private:
  void Fail(const std::string& what) {
    std::fprintf(stderr, "dsar-gateway: download of %s: %s\n", id_.c_str(),
                 what.c_str());
  }

  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<v1::DsarService::Stub> stub_;
  std::unique_ptr<grpc::ClientReader<v1::DownloadBundleResponse>> reader_;
  std::string id_;
  int64_t size_;
  int64_t received_ = 0;
  bool finished_ = false;
};

absl::Status MissingParameter(absl::string_view name) {
  return absl::InvalidArgumentError(
      absl::StrCat(name, ": missing from the download URL"));
}

// The DownloadBundle request a download URL's query names.
absl::StatusOr<v1::DownloadBundleRequest> RequestFromUrl(
    const std::string& id, const HttpRequest& http) {
  v1::DownloadBundleRequest request;
  request.set_id(id);
  std::optional<std::string> expires = http.Query("expires");
  std::optional<std::string> generation = http.Query("generation");
  std::optional<std::string> nonce = http.Query("nonce");
  std::optional<std::string> sig = http.Query("sig");
  if (!expires) return MissingParameter("expires");
  if (!generation) return MissingParameter("generation");
  if (!nonce) return MissingParameter("nonce");
  if (!sig) return MissingParameter("sig");
  int64_t expires_value = 0;
  if (!absl::SimpleAtoi(*expires, &expires_value)) {
    return absl::InvalidArgumentError("expires: not a unix time in seconds");
  }
  uint32_t generation_value = 0;
  if (!absl::SimpleAtoi(*generation, &generation_value)) {
    return absl::InvalidArgumentError("generation: not a whole number");
  }
  request.set_expires(expires_value);
  request.set_generation(generation_value);
  request.set_nonce(*nonce);
  request.set_sig(*sig);
  return request;
}

}  // namespace

int DownloadHttpStatus(absl::StatusCode code) {
  if (code == absl::StatusCode::kFailedPrecondition) return 410;
  return HttpStatusForCode(code);
}

absl::StatusOr<std::unique_ptr<BundleDownloadRoutes>>
BundleDownloadRoutes::Create(std::shared_ptr<const BackendClient> backend,
                             absl::Duration download_timeout) {
  const google::protobuf::MethodDescriptor* method =
      v1::DownloadBundleRequest::descriptor()->file()->pool()->FindMethodByName(
          "dsar.v1.DsarService.DownloadBundle");
  if (method == nullptr || !method->options().HasExtension(google::api::http) ||
      method->options().GetExtension(google::api::http).get().empty()) {
    return absl::FailedPreconditionError(
        "dsar.v1.DsarService.DownloadBundle: no google.api.http GET route");
  }
  absl::StatusOr<PathTemplate> path = PathTemplate::Parse(
      method->options().GetExtension(google::api::http).get());
  if (!path.ok()) return path.status();
  return std::unique_ptr<BundleDownloadRoutes>(new BundleDownloadRoutes(
      std::move(backend), download_timeout, *std::move(path)));
}

std::optional<RouteProvider::Match> BundleDownloadRoutes::Find(
    const std::string& method, const std::string& path) const {
  if (method != "GET") return std::nullopt;
  std::optional<std::vector<PathBinding>> bindings = path_.Match(path);
  if (!bindings || bindings->size() != 1) return std::nullopt;
  Match match;
  match.bindings = *std::move(bindings);
  match.authenticates_itself = true;
  match.path_template = path_.text();
  return match;
}

HttpReply BundleDownloadRoutes::Serve(const Match& match,
                                      const HttpRequest& http,
                                      const Caller& caller) const {
  const std::string& id = match.bindings[0].value;
  absl::StatusOr<v1::DownloadBundleRequest> request = RequestFromUrl(id, http);
  if (!request.ok()) return DownloadError(request.status());

  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + download_timeout_));
  context->AddMetadata(kActorMetadataKey, kDownloadActor);
  auto stub = v1::DsarService::NewStub(backend_->channel());
  std::unique_ptr<grpc::ClientReader<v1::DownloadBundleResponse>> reader =
      stub->DownloadBundle(context.get(), *request);
  v1::DownloadBundleResponse first;
  if (!reader->Read(&first)) {
    // dsard refuses before it sends anything: the status says why.
    grpc::Status status = reader->Finish();
    if (status.ok()) {
      return DownloadError(
          absl::InternalError(absl::StrCat("dsard sent no header for ", id)));
    }
    return DownloadError(FromGrpcStatus(status));
  }
  if (!first.has_header()) {
    context->TryCancel();
    reader->Finish();
    return DownloadError(absl::InternalError(
        absl::StrCat("dsard's download of ", id, " began without a header")));
  }
  const v1::DownloadBundleHeader& header = first.header();
  HttpReply reply;
  reply.status = 200;
  reply.content_type =
      header.content_type().empty() ? "application/zip" : header.content_type();
  reply.headers.push_back(
      {"Content-Disposition",
       absl::StrCat("attachment; filename=\"", header.filename(), "\"")});
  // The hex SHA-256 of the body, to check the download against.
  reply.headers.push_back({"X-Bundle-Sha256", header.sha256()});
  reply.streamed_body = std::make_shared<BundleStream>(
      std::move(context), std::move(stub), std::move(reader), id,
      header.size_bytes());
  return reply;
}

}  // namespace dsar::gateway
