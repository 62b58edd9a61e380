// `dsarctl download` and `dsarctl revoke-downloads`: the bundle of a
// completed request through a signed URL (docs/delivery.md).

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "tools/dsarctl/commands.h"
#include "tools/dsarctl/output.h"

namespace dsarctl {
namespace {

using dsar::v1::DsarService;

// The DownloadBundle request a download URL ("/v1/downloads/<id>?expires=..")
// names; false when it is not one.
bool ParseDownloadUrl(const std::string& url,
                      dsar::v1::DownloadBundleRequest* request) {
  size_t query = url.find('?');
  size_t slash = url.rfind('/', query);
  if (query == std::string::npos || slash == std::string::npos) return false;
  request->set_id(url.substr(slash + 1, query - slash - 1));
  for (absl::string_view pair :
       absl::StrSplit(url.substr(query + 1), '&', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first == "expires") {
      int64_t expires = 0;
      if (!absl::SimpleAtoi(kv.second, &expires)) return false;
      request->set_expires(expires);
    } else if (kv.first == "generation") {
      uint32_t generation = 0;
      if (!absl::SimpleAtoi(kv.second, &generation)) return false;
      request->set_generation(generation);
    } else if (kv.first == "nonce") {
      request->set_nonce(kv.second);
    } else if (kv.first == "sig") {
      request->set_sig(kv.second);
    }
  }
  return !request->id().empty();
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "dsarctl: %s\n", message.c_str());
  return kExitError;
}

}  // namespace

int RunDownload(const Options& options) {
  if (options.positional.size() != 1) {
    return Usage("download: takes one request id");
  }
  const std::string& id = options.positional[0];
  const std::string path = options.Flag("file", absl::StrCat(id, ".zip"));
  auto stub = DsarService::NewStub(OpenChannel(options));

  // An operator downloads as anyone would: through a URL, so that the issue
  // and the download are both in the audit log.
  dsar::v1::CreateDownloadUrlRequest create;
  create.set_id(id);
  dsar::v1::CreateDownloadUrlResponse url;
  {
    grpc::ClientContext context;
    options.Prepare(&context);
    grpc::Status status = stub->CreateDownloadUrl(&context, create, &url);
    if (!status.ok()) return ExitFor(status);
  }
  dsar::v1::DownloadBundleRequest download;
  if (!ParseDownloadUrl(url.url(), &download)) {
    return Fail(
        absl::StrCat("dsard answered a URL dsarctl cannot read: ", url.url()));
  }

  // The whole download may take longer than one --timeout: the deadline is
  // per call and this call lasts as long as the bundle takes.
  grpc::ClientContext context;
  for (const auto& [key, value] : options.headers) {
    context.AddMetadata(key, value);
  }
  std::unique_ptr<grpc::ClientReader<dsar::v1::DownloadBundleResponse>> reader =
      stub->DownloadBundle(&context, download);
  dsar::v1::DownloadBundleResponse message;
  if (!reader->Read(&message) || !message.has_header()) {
    grpc::Status status = reader->Finish();
    if (!status.ok()) return ExitFor(status);
    return Fail("dsard's download began without a header");
  }
  const dsar::v1::DownloadBundleHeader header = message.header();
  const std::string partial = absl::StrCat(path, ".part");
  int fd =
      ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    context.TryCancel();
    reader->Finish();
    return Fail(
        absl::StrCat("cannot create ", partial, ": ", std::strerror(errno)));
  }
  dsar::Sha256 hash;
  int64_t received = 0;
  bool written = true;
  while (written && reader->Read(&message)) {
    const std::string& chunk = message.chunk();
    hash.Update(chunk);
    received += static_cast<int64_t>(chunk.size());
    size_t done = 0;
    while (done < chunk.size()) {
      ssize_t n = ::write(fd, chunk.data() + done, chunk.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        written = false;
        break;
      }
      done += static_cast<size_t>(n);
    }
  }
  int write_errno = errno;
  bool synced = written && ::fsync(fd) == 0;
  ::close(fd);
  if (!written || !synced) {
    context.TryCancel();
    reader->Finish();
    ::unlink(partial.c_str());
    return Fail(absl::StrCat("cannot write ", partial, ": ",
                             std::strerror(write_errno)));
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    ::unlink(partial.c_str());
    return ExitFor(status);
  }
  std::string sha256 = hash.FinishHex();
  if (received != header.size_bytes() || sha256 != header.sha256() ||
      sha256 != url.sha256()) {
    ::unlink(partial.c_str());
    return Fail(absl::StrCat("download of ", id, " does not verify: ", received,
                             " bytes with SHA-256 ", sha256, ", expected ",
                             header.size_bytes(), " bytes, ", header.sha256()));
  }
  if (::rename(partial.c_str(), path.c_str()) != 0) {
    return Fail(absl::StrCat("cannot rename ", partial, " to ", path, ": ",
                             std::strerror(errno)));
  }
  if (options.output != "table") {
    dsar::v1::DownloadBundleHeader saved = header;
    saved.set_filename(path);
    PrintMessage(options, saved);
    return kExitOk;
  }
  std::printf("%s  %lld bytes  sha256 %s (verified)\n", path.c_str(),
              static_cast<long long>(received), sha256.c_str());
  return kExitOk;
}

int RunRevokeDownloads(const Options& options) {
  if (options.positional.size() != 1) {
    return Usage("revoke-downloads: takes one request id");
  }
  if (options.Flag("reason").empty()) {
    return Usage("revoke-downloads: --reason is required");
  }
  auto stub = DsarService::NewStub(OpenChannel(options));
  dsar::v1::RevokeDownloadUrlsRequest request;
  request.set_id(options.positional[0]);
  request.set_reason(options.Flag("reason"));
  grpc::ClientContext context;
  options.Prepare(&context);
  dsar::v1::RevokeDownloadUrlsResponse response;
  grpc::Status status = stub->RevokeDownloadUrls(&context, request, &response);
  if (!status.ok()) return ExitFor(status);
  if (options.output != "table") {
    PrintMessage(options, response);
    return kExitOk;
  }
  std::printf(
      "download URLs of %s issued so far are revoked (generation now %u)\n",
      request.id().c_str(), response.generation());
  return kExitOk;
}

}  // namespace dsarctl
