// Nothing kept longer than needed (docs/retention.md): the retention purge,
// crypto-shredding of a request's personal data, the erasure that destroys
// the person's earlier answers, and key rotation. Part of Coordinator; see
// engine/coordinator.h.

#include <cstdio>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "engine/coordinator.h"
#include "engine/coordinator_internal.h"
#include "engine/identity.h"
#include "model/event_kinds.h"

namespace dsar {

using coordinator_internal::BundleOwner;
namespace {

bool HasLiveBundle(const v1::Request& request) {
  return request.has_bundle() && !request.bundle().path().empty() &&
         !request.bundle().has_purged_at();
}

// The bundle file of `request` when it is its own, not the one of the
// request it was linked to (that one's purge removes it).
bool OwnsBundleFile(const v1::Request& request) {
  return BundleOwner(request) == request.id();
}

}  // namespace

void Coordinator::SchedulePurge(int64_t from_ms) {
  if (options_.purge_interval <= absl::ZeroDuration() ||
      options_.purge_interval == absl::InfiniteDuration()) {
    return;
  }
  PushTimer({from_ms + absl::ToInt64Milliseconds(options_.purge_interval),
             TimerKind::kPurge, "", 0, 0});
}

void Coordinator::PurgeBundle(Txn& txn, LiveRequest& live,
                              const std::string& reason,
                              const std::string& actor) {
  v1::Request* request = live.record.mutable_request();
  const std::string path = request->bundle().path();
  SetTimestampMillis(txn.now_ms,
                     request->mutable_bundle()->mutable_purged_at());
  EventDraft purged;
  purged.kind = kEventBundlePurged;
  purged.detail = reason;
  purged.actor = actor;
  AppendEvents(txn, live, {purged});
  if (OwnsBundleFile(*request)) {
    txn.replies.push_back([path] { ::unlink(path.c_str()); });
  }
}

void Coordinator::DestroyPersonalData(Txn& txn, LiveRequest& live,
                                      const std::string& reason,
                                      const std::string& actor) {
  internal::RequestRecord& record = live.record;
  v1::Request* request = record.mutable_request();
  const std::string id = request->id();
  if (request->has_personal_data_destroyed_at()) return;
  // The index entries go with the identities they were made from.
  for (const v1::SubjectIdentity& identity : request->identities()) {
    txn.batch.DropSubject(
        audit_->SubjectHmac(IdentityKey(identity), identity.value()), id);
  }
  if (IsTerminalStatus(request->status())) {
    txn.batch.DropClosed(TimestampMillis(request->completed_at()), id);
  }
  txn.batch.DestroyDataKey(id);
  request->clear_identities();
  request->clear_corrections();
  record.clear_discovered();
  record.clear_notes();
  if (request->has_verification())
    request->mutable_verification()->clear_evidence_ref();
  request->clear_extension_reason();
  request->clear_cause();
  SetTimestampMillis(txn.now_ms, request->mutable_personal_data_destroyed_at());
  if (HasLiveBundle(*request)) {
    SetTimestampMillis(txn.now_ms,
                       request->mutable_bundle()->mutable_purged_at());
  }
  EventDraft destroyed;
  destroyed.kind = kEventPersonalDataDestroyed;
  destroyed.detail = reason;
  destroyed.actor = actor;
  AppendEvents(txn, live, {destroyed});
  // Encrypted under the destroyed key, the files are unreadable already;
  // they go too.
  std::string bundle =
      OwnsBundleFile(*request) ? request->bundle().path() : std::string();
  txn.replies.push_back([bundle, exports = ArtifactDir(id)] {
    if (!bundle.empty()) ::unlink(bundle.c_str());
    (void)RemoveTree(exports);
  });
  txn.scrub = true;
}

void Coordinator::DestroyEarlierCopies(Txn& txn,
                                       const std::string& erasure_id) {
  auto it = live_.find(erasure_id);
  if (it == live_.end()) return;
  const internal::RequestRecord& erasure = it->second.record;
  const int64_t created_ms = TimestampMillis(erasure.request().created_at());
  std::set<std::string> hmacs;
  for (const v1::SubjectIdentity& identity : erasure.request().identities())
    hmacs.insert(audit_->SubjectHmac(IdentityKey(identity), identity.value()));
  for (const v1::SubjectIdentity& identity : erasure.discovered())
    hmacs.insert(audit_->SubjectHmac(IdentityKey(identity), identity.value()));
  std::set<std::string> earlier;
  for (const std::string& hmac : hmacs) {
    absl::StatusOr<std::vector<std::string>> ids =
        store_->RequestsOfSubject(hmac);
    if (!ids.ok()) {
      LogError(
          absl::StrCat("erasure ", erasure_id, ": ", ids.status().ToString()),
          ForRequest(erasure_id));
      continue;
    }
    earlier.insert(ids->begin(), ids->end());
  }
  earlier.erase(erasure_id);
  for (const std::string& id : earlier) {
    if (live_.contains(id) &&
        !IsTerminalStatus(live_.at(id).record.request().status())) {
      continue;  // Still open: its own completion is not ours to undo.
    }
    absl::StatusOr<LiveRequest*> other = FindForEvents(txn, id);
    if (!other.ok()) continue;
    const v1::Request& request = (*other)->record.request();
    if ((request.type() != v1::ACCESS && request.type() != v1::PORTABILITY) ||
        TimestampMillis(request.created_at()) > created_ms) {
      continue;
    }
    DestroyPersonalData(
        txn, **other,
        absl::StrCat("erasure ", erasure_id,
                     " of the same person: its answer and exports are "
                     "destroyed on the coordinator"),
        "");
  }
}

v1::PurgeResponse Coordinator::PurgeInLoop(Txn& txn, bool dry_run,
                                           const std::string& actor) {
  v1::PurgeResponse response;
  response.set_dry_run(dry_run);
  const int64_t bundle_ms =
      absl::ToInt64Milliseconds(options_.bundle_retention);
  const int64_t record_ms =
      absl::ToInt64Milliseconds(options_.record_retention);
  const int64_t report_ms =
      absl::ToInt64Milliseconds(options_.audit_report_retention);
  std::vector<std::pair<int64_t, std::string>> closed;
  absl::Status listed = store_->ListClosed(
      txn.now_ms - std::min({bundle_ms, record_ms, report_ms}),
      options_.purge_batch_limit + 1, &closed);
  if (!listed.ok()) {
    LogError(absl::StrCat("purge: ", listed.ToString()));
    return response;
  }
  if (static_cast<int>(closed.size()) > options_.purge_batch_limit) {
    closed.pop_back();
    response.set_more(true);
  }
  auto report = [&](const std::string& id, const char* what,
                    const std::string& reason) {
    v1::PurgedItem* item = response.add_items();
    item->set_request_id(id);
    item->set_what(what);
    item->set_reason(reason);
  };
  for (const auto& [closed_ms, id] : closed) {
    response.set_examined(response.examined() + 1);
    auto open = live_.find(id);
    absl::StatusOr<internal::RequestRecord> stored =
        open != live_.end()
            ? absl::StatusOr<internal::RequestRecord>(open->second.record)
            : store_->GetRequest(id);
    if (!stored.ok() && !absl::IsNotFound(stored.status())) {
      LogError(absl::StrCat("purge: ", stored.status().ToString()),
               ForRequest(id));
      continue;
    }
    const v1::Request* request = stored.ok() ? &stored->request() : nullptr;
    // A request re-opened since (or unknown) left a stale index entry.
    if (request == nullptr || !IsTerminalStatus(request->status()) ||
        TimestampMillis(request->completed_at()) != closed_ms ||
        request->has_personal_data_destroyed_at()) {
      if (!dry_run) txn.batch.DropClosed(closed_ms, id);
      continue;
    }
    if (request->type() == v1::AUDIT_SCAN) {
      // An audit report lives its own span (seed 002: 90 days); its
      // findings go with the run's data key.
      if (closed_ms + report_ms > txn.now_ms) continue;
      std::string reason =
          absl::StrCat("audit report retention ",
                       absl::FormatDuration(options_.audit_report_retention),
                       " since ", Rfc3339Millis(closed_ms));
      report(id, "audit_report", reason);
      if (dry_run) continue;
      absl::StatusOr<LiveRequest*> live = FindForEvents(txn, id);
      if (live.ok()) DestroyPersonalData(txn, **live, reason, actor);
      continue;
    }
    if (closed_ms + record_ms <= txn.now_ms) {
      std::string reason = absl::StrCat(
          "record retention ", absl::FormatDuration(options_.record_retention),
          " since ", Rfc3339Millis(closed_ms));
      report(id, "personal_data", reason);
      if (dry_run) continue;
      absl::StatusOr<LiveRequest*> live = FindForEvents(txn, id);
      if (live.ok()) DestroyPersonalData(txn, **live, reason, actor);
    } else if (HasLiveBundle(*request) && closed_ms + bundle_ms <= txn.now_ms) {
      std::string reason = absl::StrCat(
          "bundle retention ", absl::FormatDuration(options_.bundle_retention),
          " since ", Rfc3339Millis(closed_ms));
      report(id, "bundle", reason);
      if (dry_run) continue;
      absl::StatusOr<LiveRequest*> live = FindForEvents(txn, id);
      if (live.ok()) PurgeBundle(txn, **live, reason, actor);
    }
  }
  return response;
}

absl::StatusOr<v1::PurgeResponse> Coordinator::Purge(
    const v1::PurgeRequest& request, const std::string& actor) {
  return RunInLoop<v1::PurgeResponse>(
      [this, request, actor](Txn& txn) -> absl::StatusOr<v1::PurgeResponse> {
        return PurgeInLoop(txn, request.dry_run(), actor);
      });
}

absl::StatusOr<v1::RotateKeysResponse> Coordinator::RotateKeys(
    const v1::RotateKeysRequest& request) {
  return RunInLoop<v1::RotateKeysResponse>(
      [this, request](Txn&) -> absl::StatusOr<v1::RotateKeysResponse> {
        v1::RotateKeysResponse response;
        ASSIGN_OR_RETURN(std::string id, options_.key_ring->Rotate());
        response.set_active_key_id(id);
        if (request.rewrap()) {
          // On the loop, so no commit runs alongside (RewrapDataKeys).
          ASSIGN_OR_RETURN(int64_t rewrapped, store_->RewrapDataKeys());
          response.set_rewrapped(rewrapped);
        }
        return response;
      });
}

}  // namespace dsar
