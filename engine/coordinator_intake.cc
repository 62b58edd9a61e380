// Intake and operator actions on a request: create (idempotency keys,
// receipt, duplicates), cancel and retry. Part of Coordinator; see
// engine/coordinator.h.

#include <set>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/coordinator.h"
#include "engine/coordinator_internal.h"
#include "engine/deadlines.h"
#include "engine/identity.h"
#include "engine/identity_reach.h"
#include "engine/request_validation.h"
#include "model/event_kinds.h"
#include "model/regulation.h"

namespace dsar {
namespace {

// `default_phone_region` as at intake, so a repeated submission compares
// equal to what was stored.
bool SameRequest(const v1::Request& existing,
                 const v1::CreateRequestRequest& request,
                 std::string_view default_phone_region) {
  std::string regulation =
      request.regulation().empty() ? kDefaultRegulation : request.regulation();
  if (existing.type() != request.type() ||
      existing.regulation() != regulation ||
      existing.identities_size() != request.identities_size() ||
      (request.stores_size() > 0 &&
       !std::equal(existing.stores().begin(), existing.stores().end(),
                   request.stores().begin(), request.stores().end()))) {
    return false;
  }
  for (int i = 0; i < request.identities_size(); ++i) {
    v1::SubjectIdentity normalized =
        NormalizeIdentity(request.identities(i), default_phone_region);
    if (IdentityKey(existing.identities(i)) != IdentityKey(normalized) ||
        existing.identities(i).value() != normalized.value()) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<v1::Request> Coordinator::CreateRequest(
    const v1::CreateRequestRequest& request, const std::string& actor) {
  return CreateRequestFrom(request, actor, /*origin=*/nullptr,
                           /*created=*/nullptr);
}

absl::StatusOr<v1::Request> Coordinator::CreateRequestFrom(
    const v1::CreateRequestRequest& request, const std::string& actor,
    const v1::OpenDsrOrigin* origin, bool* created) {
  RETURN_IF_ERROR(CheckCreateRequest(request));
  return RunInLoop<v1::Request>(
      [this, request, actor, origin, created](Txn& txn) {
        return CreateInLoop(txn, request, actor, origin, created);
      });
}

void Coordinator::CreateRequestAsync(
    const v1::CreateRequestRequest& request, const std::string& actor,
    std::function<void(absl::StatusOr<v1::Request>)> done) {
  if (absl::Status checked = CheckCreateRequest(request); !checked.ok()) {
    done(checked);
    return;
  }
  RunInLoopAsync<v1::Request>(
      [this, request, actor](Txn& txn) {
        return CreateInLoop(txn, request, actor, /*origin=*/nullptr,
                            /*created=*/nullptr);
      },
      std::move(done));
}

absl::Status Coordinator::CheckCreateRequest(
    const v1::CreateRequestRequest& request) const {
  RETURN_IF_ERROR(ValidateCreateRequest(request, *options_.inventory));
  // Scope is honest: every store in it must be searchable with the
  // identities given (directly, or through the stores that supply them).
  std::vector<std::string> scope(request.stores().begin(),
                                 request.stores().end());
  if (scope.empty()) {
    for (const StoreSpec& spec : options_.inventory->stores())
      scope.push_back(spec.name);
  }
  std::set<std::string> kinds;
  for (const v1::SubjectIdentity& identity : request.identities())
    kinds.insert(IdentityKey(identity));
  RETURN_IF_ERROR(CheckEveryStoreReachable(*options_.inventory, scope, kinds));
  return CheckRoomForNewWork("new request refused");
}

absl::StatusOr<v1::Request> Coordinator::CreateInLoop(
    Txn& txn, const v1::CreateRequestRequest& request, const std::string& actor,
    const v1::OpenDsrOrigin* origin, bool* created) {
  if (created != nullptr) *created = false;
  const std::string& key = request.idempotency_key();
  if (!key.empty()) {
    std::optional<std::string> existing_id;
    auto pending = txn.new_idempotency_keys.find(key);
    if (pending != txn.new_idempotency_keys.end()) {
      existing_id = pending->second;
    } else {
      ASSIGN_OR_RETURN(existing_id, store_->GetIdempotencyKey(key));
    }
    if (existing_id) {
      v1::Request existing;
      auto live = live_.find(*existing_id);
      if (live != live_.end()) {
        existing = ToPublicRequest(live->second.record);
      } else {
        ASSIGN_OR_RETURN(internal::RequestRecord stored,
                         store_->GetRequest(*existing_id));
        existing = ToPublicRequest(stored);
      }
      if (!SameRequest(existing, request,
                       options_.inventory->default_phone_region())) {
        return absl::AlreadyExistsError(
            "idempotency_key: already used for a different request");
      }
      return existing;
    }
  }
  char id_bytes[12];
  for (char& byte : id_bytes)
    byte = static_cast<char>(absl::Uniform<int>(random_, 0, 256));
  std::string id = absl::StrCat(
      "dsr_",
      absl::BytesToHexString(absl::string_view(id_bytes, sizeof(id_bytes))));

  // The statutory clock starts at receipt, now.
  ASSIGN_OR_RETURN(
      absl::Time deadline,
      StatutoryDeadline(request.regulation().empty() ? kDefaultRegulation
                                                     : request.regulation(),
                        absl::FromUnixMillis(txn.now_ms), zone_));
  LiveRequest live;
  live.definition = options_.definition;
  v1::Request* stored = live.record.mutable_request();
  stored->set_id(id);
  stored->set_type(request.type());
  stored->set_regulation(request.regulation().empty() ? kDefaultRegulation
                                                      : request.regulation());
  for (const v1::SubjectIdentity& identity : request.identities()) {
    *stored->add_identities() =
        NormalizeIdentity(identity, options_.inventory->default_phone_region());
  }
  stored->set_status(v1::RECEIVED);
  stored->set_definition_version(options_.definition->version());
  SetTimestampMillis(txn.now_ms, stored->mutable_created_at());
  stored->set_idempotency_key(key);
  if (origin != nullptr) *stored->mutable_opendsr_origin() = *origin;
  if (created != nullptr) *created = true;
  SetTimestampMillis(absl::ToUnixMillis(deadline), stored->mutable_deadline());
  *stored->mutable_original_deadline() = stored->deadline();
  *stored->mutable_corrections() = request.corrections();
  if (request.stores().empty()) {
    for (const StoreSpec& spec : options_.inventory->stores())
      stored->add_stores(spec.name);
  } else {
    *stored->mutable_stores() = request.stores();
  }
  if (!key.empty()) {
    txn.batch.PutIdempotencyKey(key, id);
    txn.new_idempotency_keys[key] = id;
  }
  auto [it, inserted] = live_.emplace(id, std::move(live));
  LiveRequest& entry = it->second;
  EventDraft received;
  received.kind = kEventReceived;
  received.detail =
      absl::StrCat("type=", v1::RequestType_Name(request.type()),
                   " regulation=", entry.record.request().regulation(),
                   " identities=", request.identities_size(),
                   " stores=", entry.record.request().stores_size());
  for (const v1::SubjectIdentity& identity :
       entry.record.request().identities()) {
    received.subject_hmacs.push_back(
        audit_->SubjectHmac(IdentityKey(identity), identity.value()));
    txn.batch.PutSubject(received.subject_hmacs.back(), id);
  }
  received.actor = actor;
  AppendEvents(txn, entry, {received});
  ReceiveRequest(txn, entry, request);
  std::optional<std::string> original = OpenDuplicateOf(entry.record);
  if (original) {
    LinkDuplicate(txn, entry, live_.at(*original));
    return ToPublicRequest(entry.record);
  }
  IndexOpenRequest(entry.record);
  Mutate(txn, entry,
         [](Interpreter& interpreter, internal::RequestRecord* record) {
           interpreter.Advance(record);
         });
  return ToPublicRequest(entry.record);
}

absl::StatusOr<Coordinator::LiveRequest*> Coordinator::FindUnfinished(
    const std::string& id) {
  auto it = live_.find(id);
  if (it != live_.end()) return &it->second;
  ASSIGN_OR_RETURN(internal::RequestRecord stored, store_->GetRequest(id));
  return absl::FailedPreconditionError(
      absl::StrCat("request ", id, " is already ",
                   v1::RequestStatus_Name(stored.request().status())));
}

absl::StatusOr<Coordinator::LiveRequest*> Coordinator::FindForEvents(
    Txn& txn, const std::string& id) {
  auto it = live_.find(id);
  if (it != live_.end()) return &it->second;
  ASSIGN_OR_RETURN(internal::RequestRecord stored, store_->GetRequest(id));
  LiveRequest& loaded = live_[id];
  loaded.persisted_status = stored.request().status();
  loaded.record = std::move(stored);
  // Written and dropped by this group's CommitGroup even if no event is
  // appended after all.
  txn.dirty.insert(id);
  return &loaded;
}

absl::StatusOr<v1::Request> Coordinator::CancelRequest(
    const v1::CancelRequestRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateIdAndReason(request.id(), request.reason(), ""));
  return RunInLoop<v1::Request>([this, request, actor](
                                    Txn& txn) -> absl::StatusOr<v1::Request> {
    ASSIGN_OR_RETURN(LiveRequest * unfinished, FindUnfinished(request.id()));
    LiveRequest& live = *unfinished;
    std::string reason =
        request.reason().empty() ? "cancelled by caller" : request.reason();
    Mutate(txn, live,
           [&](Interpreter& interpreter, internal::RequestRecord* record) {
             interpreter.set_actor(actor);
             interpreter.Cancel(record, reason);
           });
    return ToPublicRequest(live.record);
  });
}

absl::StatusOr<v1::Request> Coordinator::RetryRequest(
    const v1::RetryRequestRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateIdAndReason(request.id(), request.reason(), ""));
  for (int i = 0; i < request.stores_size(); ++i) {
    if (options_.inventory->Find(request.stores(i)) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("stores[", i, "]: unknown store \"", request.stores(i),
                       "\" (not in the data inventory)"));
    }
  }
  return RunInLoop<v1::Request>([this, request, actor](
                                    Txn& txn) -> absl::StatusOr<v1::Request> {
    // A request that needs attention is still live; a FAILED one is
    // read back from the archive.
    LiveRequest candidate;
    auto open = live_.find(request.id());
    if (open != live_.end()) {
      if (open->second.record.request().status() != v1::NEEDS_ATTENTION) {
        return absl::FailedPreconditionError(absl::StrCat(
            "request ", request.id(), " is still ",
            v1::RequestStatus_Name(open->second.record.request().status()),
            "; only requests that need attention or failed can be "
            "retried"));
      }
      candidate = open->second;
    } else {
      ASSIGN_OR_RETURN(internal::RequestRecord stored,
                       store_->GetRequest(request.id()));
      candidate.persisted_status = stored.request().status();
      ASSIGN_OR_RETURN(candidate.definition,
                       DefinitionFor(stored.request().definition_version()));
      candidate.record = std::move(stored);
    }
    // Try on a copy: a refused retry must leave nothing behind.
    std::vector<EventDraft> drafts;
    Interpreter interpreter(
        *candidate.definition, *options_.inventory, txn.now_ms,
        [this] { return UnitRandom(); }, &drafts);
    interpreter.set_actor(actor);
    std::vector<std::string> stores(request.stores().begin(),
                                    request.stores().end());
    v1::RequestStatus before = candidate.record.request().status();
    RETURN_IF_ERROR(
        interpreter.Retry(&candidate.record, stores, request.reason()));
    LiveRequest& entry = live_[request.id()];
    entry = std::move(candidate);
    AppendEvents(txn, entry, std::move(drafts));
    NotifyStatusChange(txn, entry, before);
    Schedule(txn, entry);
    return ToPublicRequest(entry.record);
  });
}

}  // namespace dsar
