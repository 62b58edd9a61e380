// The privacy lifecycle around the workflow: receipt (deadline, identity
// verification), one-time codes, deadline extension and notices, and the
// notification outbox. Part of Coordinator; see engine/coordinator.h.

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "engine/coordinator.h"
#include "engine/coordinator_internal.h"
#include "engine/deadlines.h"
#include "engine/identity.h"
#include "engine/notifier.h"
#include "engine/request_validation.h"
#include "model/event_kinds.h"
#include "model/regulation.h"
#include "storage/request_status.h"
#include "storage/sealed_box.h"

namespace dsar {
namespace {

std::string Rfc3339(const google::protobuf::Timestamp& time) {
  return absl::FormatTime(absl::RFC3339_sec,
                          absl::FromUnixSeconds(time.seconds()),
                          absl::UTCTimeZone());
}

// Where the outbox keeps a one-time code, sealed.
constexpr char kSealedCodeField[] = "verification_code_sealed";

// The operator alert of a request that stopped in NEEDS_ATTENTION: which
// stores failed (with the error name, never the connector's message, which
// may hold paths) and which are blocked.
nlohmann::json StoppedStores(const internal::RequestRecord& record) {
  nlohmann::json failed = nlohmann::json::array();
  nlohmann::json blocked = nlohmann::json::array();
  if (!record.maps().empty()) {
    for (const internal::MapItem& item : record.maps().rbegin()->items()) {
      if (item.phase() == internal::ITEM_FAILED) {
        failed.push_back({{"store", item.store()}, {"error", item.error()}});
      } else if (item.phase() == internal::ITEM_BLOCKED) {
        blocked.push_back({{"store", item.store()}, {"cause", item.cause()}});
      }
    }
  }
  return {{"audience", "operator"},
          {"error", record.request().error()},
          {"state", record.request().current_state()},
          {"failed_stores", std::move(failed)},
          {"blocked_stores", std::move(blocked)}};
}

}  // namespace

absl::Status Coordinator::StartNotifier() {
  std::vector<std::unique_ptr<NotificationSink>> sinks;
  if (!options_.notify_file.empty())
    sinks.push_back(MakeFileSink(options_.notify_file));
  if (!options_.webhook_url.empty()) {
    if (options_.webhook_secret.size() < 16) {
      return absl::InvalidArgumentError(
          "webhook secret: at least 16 bytes are needed to sign webhook "
          "bodies");
    }
    sinks.push_back(
        MakeWebhookSink(options_.webhook_url, options_.webhook_secret));
  }
  if (!options_.opendsr_processor_key_pem.empty()) {
    sinks.push_back(MakeOpenDsrCallbackSink(options_.opendsr_processor_key_pem,
                                            options_.opendsr_processor_domain,
                                            options_.opendsr_callback_ca_file));
  }
  ASSIGN_OR_RETURN(std::string outbox_key,
                   LoadOrCreateKeyFile(options_.keys_dir + "/outbox.key"));
  ASSIGN_OR_RETURN(SealedBox box, SealedBox::Create(std::move(outbox_key)));
  outbox_box_ = std::make_unique<SealedBox>(std::move(box));
  notifier_ = std::make_unique<Notifier>(
      std::move(sinks),
      [this](std::vector<std::string> ids) {
        // Delivered: leave the outbox in the next commit group (and with it
        // the sealed code, the only copy there was).
        Enqueue([ids = std::move(ids)](Txn& txn) {
          for (const std::string& id : ids) txn.batch.DeleteNotification(id);
        });
      },
      [box = outbox_box_.get()](const internal::Notification& stored)
          -> absl::StatusOr<internal::Notification> {
        nlohmann::json payload =
            nlohmann::json::parse(stored.payload_json(), nullptr, false);
        if (payload.is_discarded() || !payload.contains(kSealedCodeField)) {
          return stored;
        }
        std::string sealed;
        if (!absl::Base64Unescape(payload[kSealedCodeField].get<std::string>(),
                                  &sealed)) {
          return absl::DataLossError("sealed code is not base64");
        }
        ASSIGN_OR_RETURN(std::string code,
                         box->Open(sealed, stored.request_id()));
        payload.erase(kSealedCodeField);
        payload["verification_code"] = code;
        internal::Notification outgoing = stored;
        outgoing.set_payload_json(payload.dump());
        return outgoing;
      });
  // Whatever a crash left undelivered goes out again (same ids).
  return store_->ForEachNotification(
      [this](internal::Notification notification) {
        notifier_->Submit(std::move(notification));
        return absl::OkStatus();
      });
}

void Coordinator::QueueNotification(Txn& txn, const LiveRequest& live,
                                    const std::string& kind,
                                    const nlohmann::json& extra) {
  const v1::Request& request = live.record.request();
  // An audit scan has no subject to tell; its report is asked for.
  if (request.type() == v1::AUDIT_SCAN) return;
  internal::Notification notification;
  notification.set_id(absl::StrCat(
      request.id(), "/", live.record.next_event_sequence(), "/", kind));
  notification.set_request_id(request.id());
  notification.set_kind(kind);
  notification.set_created_ms(txn.now_ms);
  nlohmann::json payload = {
      {"id", notification.id()},
      {"kind", kind},
      {"request_id", request.id()},
      {"type", v1::RequestType_Name(request.type())},
      {"regulation", request.regulation()},
      {"status", v1::RequestStatus_Name(request.status())},
      {"deadline", Rfc3339(request.deadline())},
      {"time",
       absl::FormatTime(absl::RFC3339_full, absl::FromUnixMillis(txn.now_ms),
                        absl::UTCTimeZone())},
  };
  for (const auto& [key, value] : extra.items()) payload[key] = value;
  notification.set_payload_json(payload.dump());
  txn.batch.PutNotification(notification);
  txn.notifications.push_back(std::move(notification));
}

void Coordinator::NotifyStatusChange(Txn& txn, const LiveRequest& live,
                                     v1::RequestStatus before) {
  v1::RequestStatus after = live.record.request().status();
  if (after == before) return;
  QueueOpenDsrCallbacks(txn, live, before);
  switch (after) {
    case v1::COMPLETED:
      QueueNotification(txn, live, kNotificationCompleted,
                        DeliveryNotificationFields(live.record.request()));
      break;
    case v1::FAILED:
      QueueNotification(txn, live, kNotificationFailed,
                        {{"error", live.record.request().error()},
                         {"cause", live.record.request().cause()}});
      break;
    case v1::CANCELLED:
      QueueNotification(txn, live, kNotificationCancelled,
                        {{"cause", live.record.request().cause()}});
      break;
    case v1::NEEDS_ATTENTION:
      QueueNotification(txn, live, kNotificationNeedsAttention,
                        StoppedStores(live.record));
      break;
    case v1::RUNNING:
      if ((before == v1::VERIFYING || before == v1::RECEIVED) &&
          !live.record.waits_for_linked()) {
        QueueNotification(txn, live, kNotificationStarted);
      }
      break;
    default:
      break;
  }
}

void Coordinator::ReceiveRequest(Txn& txn, LiveRequest& live,
                                 const v1::CreateRequestRequest& request) {
  QueueNotification(txn, live, kNotificationReceived);
  if (!request.has_verified() && options_.verify_unattested) return;
  // Verified before it arrived: by the caller (audited with its evidence
  // reference), or by configuration.
  v1::IdentityVerification* verification =
      live.record.mutable_request()->mutable_verification();
  if (request.has_verified()) {
    verification->set_method(request.verified().method().empty()
                                 ? "caller_attested"
                                 : request.verified().method());
    verification->set_evidence_ref(request.verified().evidence_ref());
  } else {
    verification->set_method("not_required_by_configuration");
  }
  SetTimestampMillis(txn.now_ms, verification->mutable_verified_at());
  live.record.add_signals(kSignalIdentityVerified);
  EventDraft verified;
  verified.kind = kEventIdentityVerified;
  verified.detail = absl::StrCat("method=", verification->method());
  verified.note = verification->evidence_ref();  // Typed by the caller.
  AppendEvents(txn, live, {verified});
}

void Coordinator::IssueVerificationCode(Txn& txn, LiveRequest& live) {
  if (live.record.request().status() != v1::VERIFYING) return;
  uint32_t random = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&random), sizeof(random)) !=
      1) {
    Log(LogLevel::kFatal, "no randomness for a verification code");
    std::abort();
  }
  std::string code = absl::StrFormat("%08u", random % 100000000u);
  live.record.set_verification_code_hmac(audit_->SubjectHmac(
      absl::StrCat("verification:", live.record.request().id()), code));
  live.record.set_verification_attempts(0);
  live.record.set_timer_due_ms(
      txn.now_ms + absl::ToInt64Milliseconds(options_.verification_ttl));
  EventDraft issued;
  issued.kind = kEventVerificationCodeIssued;
  issued.state = live.record.request().current_state();
  issued.detail =
      absl::StrCat("expires=", Rfc3339Millis(live.record.timer_due_ms()),
                   " attempts=", options_.verification_attempts);
  AppendEvents(txn, live, {issued});
  // The code travels to the subject only through the notifier; at rest the
  // request keeps its HMAC and the outbox keeps it sealed (AES-256-GCM under
  // keys_dir/outbox.key) until it is delivered and dropped.
  absl::StatusOr<std::string> sealed =
      outbox_box_->Seal(code, live.record.request().id());
  if (!sealed.ok()) {
    Log(LogLevel::kFatal, sealed.status().ToString(),
        ForRequest(live.record.request().id()));
    std::abort();
  }
  QueueNotification(txn, live, kNotificationVerificationNeeded,
                    {{kSealedCodeField, absl::Base64Escape(*sealed)},
                     {"expires", Rfc3339Millis(live.record.timer_due_ms())}});
}

absl::StatusOr<v1::Request> Coordinator::VerifyIdentity(
    const v1::VerifyIdentityRequest& request) {
  if (request.id().empty()) return absl::InvalidArgumentError("id: required");
  if (request.code().empty() || request.code().size() > 32) {
    return absl::InvalidArgumentError(
        "code: required (the one-time code the subject received)");
  }
  return RunInLoop<v1::Request>([this, request](
                                    Txn& txn) -> absl::StatusOr<v1::Request> {
    ASSIGN_OR_RETURN(LiveRequest * unfinished, FindUnfinished(request.id()));
    LiveRequest& live = *unfinished;
    if (live.record.request().status() != v1::VERIFYING ||
        live.record.verification_code_hmac().empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "request ", request.id(), " is not waiting for verification"));
    }
    std::string presented = audit_->SubjectHmac(
        absl::StrCat("verification:", request.id()), request.code());
    const std::string& expected = live.record.verification_code_hmac();
    bool matches =
        presented.size() == expected.size() &&
        CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
    if (!matches) {
      uint32_t attempts = live.record.verification_attempts() + 1;
      live.record.set_verification_attempts(attempts);
      int left = options_.verification_attempts - static_cast<int>(attempts);
      EventDraft failed;
      failed.kind = kEventVerificationFailed;
      failed.detail = absl::StrCat("wrong code, attempt ", attempts, " of ",
                                   options_.verification_attempts);
      AppendEvents(txn, live, {failed});
      if (left <= 0) {
        Mutate(txn, live,
               [](Interpreter& interpreter, internal::RequestRecord* record) {
                 interpreter.Fail(record, "Identity.NotVerified",
                                  "too many wrong verification codes");
               });
        return absl::PermissionDeniedError(
            "code: wrong code; no attempts left, the request is closed");
      }
      return absl::PermissionDeniedError(
          absl::StrCat("code: wrong code (", left, " attempt",
                       left == 1 ? "" : "s", " left)"));
    }
    v1::IdentityVerification* verification =
        live.record.mutable_request()->mutable_verification();
    verification->set_method("one_time_code");
    SetTimestampMillis(txn.now_ms, verification->mutable_verified_at());
    live.record.add_signals(kSignalIdentityVerified);
    live.record.clear_verification_code_hmac();
    live.record.set_timer_due_ms(0);
    EventDraft verified;
    verified.kind = kEventIdentityVerified;
    verified.detail = "method=one_time_code";
    AppendEvents(txn, live, {verified});
    Mutate(txn, live,
           [](Interpreter& interpreter, internal::RequestRecord* record) {
             interpreter.Advance(record);
           });
    return ToPublicRequest(live.record);
  });
}

absl::StatusOr<v1::Request> Coordinator::ExtendDeadline(
    const v1::ExtendDeadlineRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateIdAndReason(request.id(), request.reason(),
                                      "the subject must be told why"));
  return RunInLoop<v1::Request>([this, request, actor](
                                    Txn& txn) -> absl::StatusOr<v1::Request> {
    ASSIGN_OR_RETURN(LiveRequest * unfinished, FindUnfinished(request.id()));
    LiveRequest& live = *unfinished;
    v1::Request* stored = live.record.mutable_request();
    absl::StatusOr<absl::Time> extended = ExtendedDeadline(
        stored->regulation(),
        absl::FromUnixMillis(TimestampMillis(stored->created_at())),
        absl::FromUnixMillis(TimestampMillis(stored->deadline())),
        request.extension(), absl::FromUnixMillis(txn.now_ms), zone_);
    if (!extended.ok()) {
      // Name the API field rather than the helper's parameter.
      std::string message(extended.status().message());
      if (message.rfind("extension_", 0) == 0) {
        message = absl::StrCat("extension", message.substr(message.find(':')));
      }
      return absl::Status(extended.status().code(), message);
    }
    SetTimestampMillis(absl::ToUnixMillis(*extended),
                       stored->mutable_deadline());
    stored->set_extension_reason(request.reason());
    live.record.set_deadline_near_notified(false);
    EventDraft event;
    event.kind = kEventDeadlineExtended;
    event.actor = actor;
    event.detail = absl::StrCat(
        "deadline=", Rfc3339(stored->deadline()), " by=", request.extension(),
        stored->regulation() == kRegulationGdpr ? " month(s)" : " day(s)");
    event.note = request.reason();
    AppendEvents(txn, live, {event});
    QueueNotification(txn, live, kNotificationExtended,
                      {{"reason", request.reason()}});
    Schedule(txn, live);
    return ToPublicRequest(live.record);
  });
}

void Coordinator::ScheduleDeadlineNotices(LiveRequest& live) {
  const internal::RequestRecord& record = live.record;
  if (!record.request().has_deadline()) return;
  int64_t deadline = TimestampMillis(record.request().deadline());
  const std::string& id = record.request().id();
  if (!record.deadline_near_notified()) {
    PushTimer({deadline - absl::ToInt64Milliseconds(options_.deadline_notice),
               TimerKind::kDeadline, id, 0, 0});
  }
  if (!record.overdue_notified())
    PushTimer({deadline, TimerKind::kDeadline, id, 0, 0});
}

void Coordinator::FireDeadlineNotice(Txn& txn, LiveRequest& live) {
  internal::RequestRecord& record = live.record;
  int64_t deadline = TimestampMillis(record.request().deadline());
  const char* event_kind;
  const char* notification_kind;
  if (txn.now_ms >= deadline && !record.overdue_notified()) {
    record.set_overdue_notified(true);
    record.set_deadline_near_notified(true);
    event_kind = kEventOverdue;
    notification_kind = kNotificationOverdue;
  } else if (txn.now_ms >= deadline - absl::ToInt64Milliseconds(
                                          options_.deadline_notice) &&
             txn.now_ms < deadline && !record.deadline_near_notified()) {
    record.set_deadline_near_notified(true);
    event_kind = kEventDeadlineNear;
    notification_kind = kNotificationDeadlineNear;
  } else {
    return;  // A stale timer (the deadline moved).
  }
  EventDraft event;
  event.kind = event_kind;
  event.detail =
      absl::StrCat("deadline=", Rfc3339(record.request().deadline()));
  AppendEvents(txn, live, {event});
  QueueNotification(txn, live, notification_kind);
}

namespace {

// What makes two requests the same: right, regulation, stores in scope and
// the identities (normalised), each as a set.
std::string DuplicateKey(const v1::Request& request) {
  std::vector<std::string> stores(request.stores().begin(),
                                  request.stores().end());
  std::sort(stores.begin(), stores.end());
  std::vector<std::string> identities;
  for (const v1::SubjectIdentity& identity : request.identities()) {
    identities.push_back(
        absl::StrCat(IdentityKey(identity), ":", identity.value()));
  }
  std::sort(identities.begin(), identities.end());
  identities.erase(std::unique(identities.begin(), identities.end()),
                   identities.end());
  return absl::StrCat(v1::RequestType_Name(request.type()), "|",
                      request.regulation(), "|", absl::StrJoin(stores, ","),
                      "|", absl::StrJoin(identities, "\x1f"));
}

bool Verified(const internal::RequestRecord& record) {
  return std::find(record.signals().begin(), record.signals().end(),
                   kSignalIdentityVerified) != record.signals().end();
}

}  // namespace

std::optional<std::string> Coordinator::OpenDuplicateOf(
    const internal::RequestRecord& record) const {
  auto it = open_by_subject_.find(DuplicateKey(record.request()));
  if (it == open_by_subject_.end() || it->second == record.request().id()) {
    return std::nullopt;
  }
  auto original = live_.find(it->second);
  if (original == live_.end()) return std::nullopt;
  const internal::RequestRecord& open = original->second.record;
  // A request that needs attention does not answer a new one (it may never
  // finish), and an unverified request never answers a verified one: that
  // would let anyone who can submit hold up a subject's request.
  if (open.request().status() == v1::NEEDS_ATTENTION) return std::nullopt;
  if (Verified(record) && !Verified(open)) return std::nullopt;
  return it->second;
}

void Coordinator::IndexOpenRequest(const internal::RequestRecord& record) {
  if (record.waits_for_linked()) {
    linked_waiting_[record.request().linked_to()].push_back(
        record.request().id());
    return;
  }
  open_by_subject_[DuplicateKey(record.request())] = record.request().id();
}

void Coordinator::UnindexOpenRequest(const v1::Request& request) {
  auto it = open_by_subject_.find(DuplicateKey(request));
  if (it != open_by_subject_.end() && it->second == request.id())
    open_by_subject_.erase(it);
}

void Coordinator::LinkDuplicate(Txn& txn, LiveRequest& duplicate,
                                LiveRequest& original) {
  const std::string& original_id = original.record.request().id();
  Mutate(txn, duplicate,
         [&](Interpreter& interpreter, internal::RequestRecord* record) {
           interpreter.LinkTo(record, original_id);
         });
  IndexOpenRequest(duplicate.record);  // Waits under original_id.
  EventDraft noted;
  noted.kind = kEventDuplicateLinked;
  noted.detail = absl::StrCat("duplicate=", duplicate.record.request().id());
  AppendEvents(txn, original, {noted});
}

void Coordinator::ResolveLinked(Txn& txn, const v1::Request& original) {
  auto waiting = linked_waiting_.find(original.id());
  if (waiting == linked_waiting_.end()) return;
  std::vector<std::string> ids = std::move(waiting->second);
  linked_waiting_.erase(waiting);
  for (const std::string& id : ids) {
    auto it = live_.find(id);
    if (it == live_.end() || !it->second.record.waits_for_linked()) continue;
    LiveRequest& duplicate = it->second;
    Mutate(txn, duplicate,
           [&](Interpreter& interpreter, internal::RequestRecord* record) {
             interpreter.LinkedEnded(record, original);
           });
    if (!duplicate.record.waits_for_linked() &&
        !IsTerminalStatus(duplicate.record.request().status())) {
      IndexOpenRequest(duplicate.record);  // Now on its own.
    }
  }
}

absl::StatusOr<v1::Request> Coordinator::PauseRequest(
    const v1::PauseRequestRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateIdAndReason(request.id(), request.reason(),
                                      "e.g. the legal hold's reference"));
  return RunInLoop<v1::Request>([this, request, actor](
                                    Txn& txn) -> absl::StatusOr<v1::Request> {
    ASSIGN_OR_RETURN(LiveRequest * unfinished, FindUnfinished(request.id()));
    LiveRequest& live = *unfinished;
    if (live.record.request().status() == v1::PAUSED) {
      return absl::FailedPreconditionError(
          absl::StrCat("request ", request.id(), " is already paused"));
    }
    Mutate(txn, live,
           [](Interpreter& interpreter, internal::RequestRecord* record) {
             interpreter.Pause(record);
           });
    EventDraft paused;
    paused.kind = kEventPaused;
    paused.actor = actor;
    paused.detail =
        absl::StrCat("the statutory clock keeps running (deadline ",
                     Rfc3339(live.record.request().deadline()), ")");
    paused.note = request.reason();
    AppendEvents(txn, live, {paused});
    return ToPublicRequest(live.record);
  });
}

absl::StatusOr<v1::Request> Coordinator::ResumeRequest(
    const v1::ResumeRequestRequest& request, const std::string& actor) {
  RETURN_IF_ERROR(ValidateIdAndReason(request.id(), request.reason(), ""));
  return RunInLoop<v1::Request>(
      [this, request, actor](Txn& txn) -> absl::StatusOr<v1::Request> {
        auto it = live_.find(request.id());
        if (it == live_.end() ||
            it->second.record.request().status() != v1::PAUSED) {
          return absl::FailedPreconditionError(
              absl::StrCat("request ", request.id(), " is not paused"));
        }
        LiveRequest& live = it->second;
        EventDraft resumed;
        resumed.kind = kEventResumed;
        resumed.actor = actor;
        resumed.note = request.reason();
        AppendEvents(txn, live, {resumed});
        Mutate(txn, live,
               [](Interpreter& interpreter, internal::RequestRecord* record) {
                 interpreter.Resume(record);
               });
        return ToPublicRequest(live.record);
      });
}

}  // namespace dsar
