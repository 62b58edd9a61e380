#include "gateway/backend_client.h"

#include <grpcpp/create_channel.h>

#include <vector>

#include "absl/strings/str_format.h"
#include "common/grpc_server_metrics.h"
#include "common/grpc_status.h"
#include "gateway/spin_wait.h"

namespace dsar::gateway {

BackendClient::BackendClient(
    const std::string& target, absl::Duration call_timeout,
    std::shared_ptr<grpc::ChannelCredentials> credentials,
    prometheus::Registry* metrics, absl::Duration answer_spin)
    : call_timeout_(call_timeout), answer_spin_(answer_spin) {
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  // Reconnect quickly once the coordinator is back (default caps at 120 s).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  if (metrics != nullptr) {
    std::vector<
        std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(MakeGrpcClientMetrics(
        *metrics, "dsar_gateway_backend_seconds",
        "Time of the gateway's calls to dsard, by service, method and "
        "status code."));
    channel_ = grpc::experimental::CreateCustomChannelWithInterceptors(
        target, credentials, args, std::move(interceptors));
  } else {
    channel_ = grpc::CreateCustomChannel(target, credentials, args);
  }
  stub_ = std::make_unique<grpc::GenericStub>(channel_);
}

void BackendClient::PrepareContext(grpc::ClientContext* context,
                                   const std::string& actor) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + call_timeout_));
  if (!actor.empty()) {
    context->AddMetadata(kActorMetadataKey, MetadataSafe(actor));
  }
}

absl::StatusOr<std::string> BackendClient::Call(
    const std::string& grpc_path, const std::string& request,
    const std::string& actor) const {
  grpc::ClientContext context;
  PrepareContext(&context, actor);
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;

  // The call completes on a completion queue of its own that this thread
  // drains: no hand-off to a gRPC callback thread and back, which costs two
  // context switches per request on a loaded machine.
  grpc::CompletionQueue queue;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub_->PrepareUnaryCall(&context, grpc_path, request_buffer, &queue);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response_buffer, &status, nullptr);
  void* tag = nullptr;
  bool ok = false;
  if (!AwaitCompletion(queue, &tag, &ok) || !ok) {
    status = grpc::Status(grpc::StatusCode::INTERNAL,
                          "the gRPC call did not complete");
  }
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
  if (!status.ok()) return FromGrpcStatus(status);
  if (response_buffer.Length() == 0) return std::string();
  grpc::Slice joined;
  if (!response_buffer.TrySingleSlice(&joined).ok() &&
      !response_buffer.DumpToSingleSlice(&joined).ok()) {
    return absl::InternalError("cannot read the backend's answer");
  }
  return std::string(reinterpret_cast<const char*>(joined.begin()),
                     joined.size());
}

bool BackendClient::AwaitCompletion(grpc::CompletionQueue& queue, void** tag,
                                    bool* ok) const {
  const bool alone = calls_in_flight_.fetch_add(1) == 0;
  bool got = false;
  if (alone && answer_spin_ > absl::ZeroDuration()) {
    // A deadline already past: AsyncNext polls once and returns.
    const gpr_timespec poll_only = gpr_time_0(GPR_CLOCK_MONOTONIC);
    got = SpinWait(answer_spin_, [&] {
      return queue.AsyncNext(tag, ok, poll_only) ==
             grpc::CompletionQueue::GOT_EVENT;
    });
  }
  if (!got) got = queue.Next(tag, ok);
  calls_in_flight_.fetch_sub(1);
  return got;
}

std::string MetadataSafe(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '%') {
      out.push_back(c);
    } else {
      out += absl::StrFormat("%%%02X", u);
    }
  }
  return out;
}

}  // namespace dsar::gateway
