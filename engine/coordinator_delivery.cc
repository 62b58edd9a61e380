// Delivery of a request's bundle through signed, time-limited URLs
// (docs/delivery.md): issuing and revoking them through the commit loop (each
// is an audit event on the request, usually a closed one), and verifying one
// and opening the bundle for the download stream, which reads RocksDB
// directly. Part of Coordinator; see engine/coordinator.h.

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "engine/coordinator.h"
#include "engine/coordinator_internal.h"
#include "engine/request_validation.h"
#include "model/event_kinds.h"

namespace dsar {

using coordinator_internal::BundleOwner;
namespace {

constexpr char kBundleContentType[] = "application/zip";

std::string Rfc3339(absl::Time time) {
  return absl::FormatTime(absl::RFC3339_sec, time, absl::UTCTimeZone());
}

bool HasBundleType(v1::RequestType type) {
  return type == v1::ACCESS || type == v1::PORTABILITY;
}

DownloadToken TokenOf(const v1::DownloadBundleRequest& request) {
  DownloadToken token;
  token.request_id = request.id();
  token.expires = request.expires();
  token.generation = request.generation();
  token.nonce = request.nonce();
  token.signature = request.sig();
  return token;
}

}  // namespace

absl::Status Coordinator::CheckDeliverable(const v1::Request& request) {
  const std::string& id = request.id();
  if (!HasBundleType(request.type())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "request ", id, " is a ", v1::RequestType_Name(request.type()),
        " request: only ACCESS and PORTABILITY requests have a bundle"));
  }
  if (request.status() != v1::COMPLETED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "request ", id, " is ", v1::RequestStatus_Name(request.status()),
        ": its bundle is delivered once it is COMPLETED"));
  }
  if (request.bundle().path().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("request ", id, " has no bundle"));
  }
  if (request.bundle().has_purged_at()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "request ", id, ": its bundle was purged at ",
        Rfc3339(absl::FromUnixSeconds(request.bundle().purged_at().seconds())),
        " (retention)"));
  }
  return absl::OkStatus();
}

nlohmann::json Coordinator::DeliveryNotificationFields(
    const v1::Request& request) {
  if (!HasBundleType(request.type()) || request.bundle().path().empty()) {
    return nlohmann::json::object();
  }
  return {{"download",
           {{"method", "POST"},
            {"path",
             absl::StrCat("/v1/requests/", request.id(), ":createDownloadUrl")},
            {"size_bytes", request.bundle().size_bytes()},
            {"sha256", request.bundle().sha256()}}}};
}

absl::StatusOr<const DownloadUrlSigner*> Coordinator::DownloadSigner() const {
  std::lock_guard<std::mutex> lock(download_signer_mu_);
  if (download_signer_ == nullptr) {
    ASSIGN_OR_RETURN(DownloadUrlSigner signer,
                     DownloadUrlSigner::FromKeysDir(options_.keys_dir));
    download_signer_ = std::make_unique<DownloadUrlSigner>(std::move(signer));
  }
  return download_signer_.get();
}

absl::StatusOr<std::unique_ptr<BundleReader>> Coordinator::OpenBundleForRead(
    const internal::RequestRecord& record) const {
  const v1::Bundle& bundle = record.request().bundle();
  // Bundles are encrypted at rest under the data key of the request that
  // made them (storage/encrypted_file.h): a duplicate answered by the
  // request it was linked to reads that one's. The reader hands out
  // plaintext.
  const std::string id = BundleOwner(record.request());
  absl::StatusOr<std::string> data_key = RequestDataKey(id);
  if (!data_key.ok()) {
    if (absl::IsNotFound(data_key.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "request ", id,
          ": its data key was destroyed, so its bundle can no longer be "
          "read"));
    }
    return data_key.status();
  }
  absl::StatusOr<std::unique_ptr<BundleReader>> reader =
      OpenEncryptedBundle(bundle.path(), *std::move(data_key), id);
  if (!reader.ok()) {
    if (absl::IsNotFound(reader.status())) {
      return absl::DataLossError(absl::StrCat("request ", id,
                                              ": bundle missing on disk (",
                                              reader.status().message(), ")"));
    }
    return reader.status();
  }
  if ((*reader)->size() != bundle.size_bytes()) {
    return absl::DataLossError(
        absl::StrCat("request ", id, ": the bundle has ", (*reader)->size(),
                     " bytes, ", bundle.size_bytes(), " were recorded"));
  }
  return reader;
}

absl::StatusOr<v1::CreateDownloadUrlResponse> Coordinator::CreateDownloadUrl(
    const v1::CreateDownloadUrlRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateIdAndReason(request.id(), "", ""));
  ASSIGN_OR_RETURN(const DownloadUrlSigner* signer, DownloadSigner());
  return RunInLoop<v1::CreateDownloadUrlResponse>(
      [this, request, actor,
       signer](Txn& txn) -> absl::StatusOr<v1::CreateDownloadUrlResponse> {
        ASSIGN_OR_RETURN(LiveRequest * found, FindForEvents(txn, request.id()));
        LiveRequest& live = *found;
        const v1::Request& stored = live.record.request();
        RETURN_IF_ERROR(CheckDeliverable(stored));
        absl::Time expires_at =
            absl::FromUnixMillis(txn.now_ms) + options_.download_url_ttl;
        ASSIGN_OR_RETURN(
            DownloadToken token,
            signer->Issue(stored.id(), live.record.download_generation(),
                          expires_at));
        v1::CreateDownloadUrlResponse response;
        response.set_url(DownloadUrlPath(token));
        response.mutable_expires_at()->set_seconds(token.expires);
        response.set_sha256(stored.bundle().sha256());
        response.set_size_bytes(stored.bundle().size_bytes());
        EventDraft issued;
        issued.kind = kEventDownloadUrlIssued;
        issued.actor = actor;
        // The nonce ties the issue to its downloads; it is not the secret
        // (the signature is, and it never leaves the answer).
        issued.detail = absl::StrCat(
            "expires=", Rfc3339(absl::FromUnixSeconds(token.expires)),
            " generation=", token.generation, " nonce=", token.nonce);
        AppendEvents(txn, live, {issued});
        return response;
      });
}

absl::StatusOr<v1::RevokeDownloadUrlsResponse> Coordinator::RevokeDownloadUrls(
    const v1::RevokeDownloadUrlsRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateIdAndReason(request.id(), request.reason(),
                                      "e.g. \"link sent to a wrong address\""));
  return RunInLoop<v1::RevokeDownloadUrlsResponse>(
      [this, request,
       actor](Txn& txn) -> absl::StatusOr<v1::RevokeDownloadUrlsResponse> {
        ASSIGN_OR_RETURN(LiveRequest * found, FindForEvents(txn, request.id()));
        LiveRequest& live = *found;
        const v1::Request& stored = live.record.request();
        if (!HasBundleType(stored.type())) {
          return absl::FailedPreconditionError(
              absl::StrCat("request ", stored.id(), " is a ",
                           v1::RequestType_Name(stored.type()),
                           " request: it has no bundle, so no download URLs"));
        }
        uint32_t generation = live.record.download_generation() + 1;
        live.record.set_download_generation(generation);
        txn.dirty.insert(stored.id());
        EventDraft revoked;
        revoked.kind = kEventDownloadUrlsRevoked;
        revoked.actor = actor;
        revoked.detail = absl::StrCat("generation=", generation);
        revoked.note = request.reason();
        AppendEvents(txn, live, {revoked});
        v1::RevokeDownloadUrlsResponse response;
        response.set_generation(generation);
        return response;
      });
}

absl::StatusOr<Coordinator::BundleDownload> Coordinator::OpenDownload(
    const v1::DownloadBundleRequest& request) const {
  ASSIGN_OR_RETURN(const DownloadUrlSigner* signer, DownloadSigner());
  DownloadToken token = TokenOf(request);
  // A forged URL is refused before the request is looked up: it learns
  // nothing about which ids exist.
  RETURN_IF_ERROR(DownloadUrlStatus(signer->VerifySignature(token)));
  ASSIGN_OR_RETURN(internal::RequestRecord record,
                   store_->GetRequest(request.id()));
  absl::Time now = absl::FromUnixMillis(options_.clock->NowMillis());
  RETURN_IF_ERROR(DownloadUrlStatus(
      signer->Verify(token, now, record.download_generation())));
  RETURN_IF_ERROR(CheckDeliverable(record.request()));
  BundleDownload download;
  ASSIGN_OR_RETURN(download.reader, OpenBundleForRead(record));
  download.header.set_size_bytes(download.reader->size());
  download.header.set_sha256(record.request().bundle().sha256());
  download.header.set_filename(absl::StrCat(request.id(), ".zip"));
  download.header.set_content_type(kBundleContentType);
  return download;
}

absl::Status Coordinator::RecordDownload(
    const v1::DownloadBundleRequest& request, int64_t bytes,
    const std::string& actor) {
  absl::StatusOr<bool> recorded = RunInLoop<bool>(
      [this, request, bytes, actor](Txn& txn) -> absl::StatusOr<bool> {
        ASSIGN_OR_RETURN(LiveRequest * found, FindForEvents(txn, request.id()));
        LiveRequest& live = *found;
        EventDraft downloaded;
        downloaded.kind = kEventBundleDownloaded;
        downloaded.actor = actor;
        downloaded.detail =
            absl::StrCat("generation=", request.generation(),
                         " nonce=", request.nonce(), " bytes=", bytes,
                         " sha256=", live.record.request().bundle().sha256());
        AppendEvents(txn, live, {downloaded});
        return true;
      });
  return recorded.status();
}

}  // namespace dsar
