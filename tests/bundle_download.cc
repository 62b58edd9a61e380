#include "tests/bundle_download.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/sha256.h"
#include "tests/dsar_cluster.h"

namespace dsar::testing {

v1::DownloadBundleRequest DownloadRequestFromUrl(const std::string& url) {
  v1::DownloadBundleRequest request;
  size_t query = url.find('?');
  std::string path = url.substr(0, query);
  request.set_id(path.substr(path.rfind('/') + 1));
  if (query == std::string::npos) return request;
  for (absl::string_view pair :
       absl::StrSplit(url.substr(query + 1), '&', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first == "expires") {
      int64_t expires = 0;
      if (absl::SimpleAtoi(kv.second, &expires)) request.set_expires(expires);
    } else if (kv.first == "generation") {
      uint32_t generation = 0;
      if (absl::SimpleAtoi(kv.second, &generation)) {
        request.set_generation(generation);
      }
    } else if (kv.first == "nonce") {
      request.set_nonce(kv.second);
    } else if (kv.first == "sig") {
      request.set_sig(kv.second);
    }
  }
  return request;
}

absl::StatusOr<std::string> DownloadBundleBytes(v1::DsarService::Stub& stub,
                                                const std::string& id) {
  v1::CreateDownloadUrlRequest create;
  create.set_id(id);
  v1::CreateDownloadUrlResponse url;
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    grpc::Status status = stub.CreateDownloadUrl(&context, create, &url);
    if (!status.ok()) return ToAbsl(status);
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
  std::unique_ptr<grpc::ClientReader<v1::DownloadBundleResponse>> reader =
      stub.DownloadBundle(&context, DownloadRequestFromUrl(url.url()));
  v1::DownloadBundleResponse message;
  v1::DownloadBundleHeader header;
  std::string bytes;
  bool first = true;
  while (reader->Read(&message)) {
    if (first) {
      header = message.header();
      first = false;
      continue;
    }
    bytes += message.chunk();
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return ToAbsl(status);
  if (static_cast<int64_t>(bytes.size()) != header.size_bytes() ||
      Sha256Hex(bytes) != header.sha256()) {
    return absl::DataLossError(
        absl::StrCat("bundle of ", id, ": ", bytes.size(), " bytes, header ",
                     header.size_bytes(), " bytes ", header.sha256()));
  }
  return bytes;
}

}  // namespace dsar::testing
