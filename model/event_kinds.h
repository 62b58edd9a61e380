#ifndef DSAR_MODEL_EVENT_KINDS_H_
#define DSAR_MODEL_EVENT_KINDS_H_

// The kinds of the events dsard appends to a request's audit log
// (v1::Event.kind, docs/audit-log.md) and of the notifications it sends
// (the webhook payload's "kind"). Both are part of the public contract:
// operators filter logs and route alerts on them, so a kind is never
// renamed, only added.
//
// Character arrays, not string_views, so that a constant can stand wherever
// the kind was a string literal (std::string, const char*).

namespace dsar {

// --- Events -----------------------------------------------------------------
// Each line: what happened; which of the event's state / store / attempt /
// worker_id / actor fields are set; what detail holds.

// Lifecycle of the request.
inline constexpr char kEventReceived[] = "received";  // detail: type=...
inline constexpr char kEventIdentityVerified[] =
    "identity_verified";  // detail: method=...[ evidence_ref=...]
inline constexpr char kEventVerificationCodeIssued[] =
    "verification_code_issued";  // state; detail: expires=...
inline constexpr char kEventVerificationFailed[] =
    "verification_failed";  // detail: "wrong code, attempt N of M"
inline constexpr char kEventCompleted[] = "completed";  // state
inline constexpr char kEventFailed[] = "failed";        // state; error: cause
inline constexpr char kEventCancelled[] = "cancelled";  // state; cause
// Some store failed for good or was blocked; waits for an operator.
inline constexpr char kEventNeedsAttention[] = "needs_attention";
inline constexpr char kEventRetried[] = "retried";  // state; detail: stores=
inline constexpr char kEventPaused[] = "paused";    // actor; detail: reason=
inline constexpr char kEventResumed[] = "resumed";  // actor; detail: reason=
inline constexpr char kEventDeadlineExtended[] =
    "deadline_extended";  // actor; detail: deadline=... by=...
inline constexpr char kEventDeadlineNear[] = "deadline_near";  // deadline=
inline constexpr char kEventOverdue[] = "overdue";             // deadline=

// Duplicates: on the duplicate, on the request it repeats, and on the
// duplicate again when that request ended without answering it.
inline constexpr char kEventLinkedAsDuplicate[] =
    "linked_as_duplicate";  // detail: duplicate_of=<id>
inline constexpr char kEventDuplicateLinked[] =
    "duplicate_linked";                               // detail: duplicate=
inline constexpr char kEventUnlinked[] = "unlinked";  // detail: why

// Workflow states.
inline constexpr char kEventStateEntered[] = "state_entered";      // state
inline constexpr char kEventStateCompleted[] = "state_completed";  // state

// Tasks: a worker task (state, store, attempt) or a builtin one (state,
// attempt; no store).
inline constexpr char kEventTaskLeased[] = "task_leased";        // + worker_id
inline constexpr char kEventTaskStarted[] = "task_started";      // builtin only
inline constexpr char kEventTaskCompleted[] = "task_completed";  // records=
inline constexpr char kEventTaskFailed[] = "task_failed";        // error: cause
inline constexpr char kEventLeaseExpired[] = "lease_expired";    // + worker_id
inline constexpr char kEventRetryScheduled[] =
    "retry_scheduled";  // detail: "retry N of M in D ms"
inline constexpr char kEventErrorCaught[] =
    "error_caught";  // detail: error -> next state

// One store's part of a Map state, settled (state is the Map state).
inline constexpr char kEventStoreSucceeded[] = "store_succeeded";  // records=
inline constexpr char kEventStoreFailed[] = "store_failed";  // error: cause
inline constexpr char kEventStoreBlocked[] =
    "store_blocked";  // detail: the store it waited for and why
// A step READY too long with no live worker serving its store.
inline constexpr char kEventStoreUnserved[] = "store_unserved";
// Manual stores (docs/manual-stores.md). The owner answered the work item:
// actor; detail: outcome=completed|failed; note: the evidence.
inline constexpr char kEventWorkItemAnswered[] = "work_item_answered";
// The work item passed its due time unanswered; detail: owner= due=.
inline constexpr char kEventWorkItemOverdue[] = "work_item_overdue";
// An OpenDSR processor called back about a store's task (docs/opendsr.md);
// state, store, attempt; detail: status= subject_request_id= results_count=.
inline constexpr char kEventProcessorStatus[] = "processor_status";
// Executor groups (docs/opendsr.md): a store of a group failed and will be
// retried after the group's earlier members run again; state, store (the
// failed one), attempt; detail: group= stores= (those run again).
inline constexpr char kEventGroupRestarted[] = "group_restarted";

// An audit scan run ended (COMPLETED or NEEDS_ATTENTION): detail
// "digest=<hex> stores_scanned=<n> records_scanned=<n>"
// (docs/audit-scan-runs.md).
inline constexpr char kEventAuditReport[] = "audit_report";

// Retention (docs/retention.md), on a closed request. actor: the operator
// who ran the purge, "dsard:purge" for the daily run, empty when caused by
// an erasure; detail: why (the retention and since when, or the erasure).
inline constexpr char kEventBundlePurged[] = "bundle_purged";
inline constexpr char kEventPersonalDataDestroyed[] = "personal_data_destroyed";

// Delivery of the bundle (docs/delivery.md), on the COMPLETED request.
inline constexpr char kEventDownloadUrlIssued[] =
    "download_url_issued";  // actor; detail: expires= generation= nonce=
inline constexpr char kEventBundleDownloaded[] =
    "bundle_downloaded";  // actor; detail: generation= nonce= bytes= sha256=
inline constexpr char kEventDownloadUrlsRevoked[] =
    "download_urls_revoked";  // actor; detail: generation=; note: reason

// --- Notifications ----------------------------------------------------------
// Payload: id, kind, request_id, type, regulation, status, deadline, time,
// plus the fields named here.

inline constexpr char kNotificationReceived[] = "received";
// To the subject: the one-time code. + verification_code, expires.
inline constexpr char kNotificationVerificationNeeded[] = "verification_needed";
// RECEIVED or VERIFYING -> RUNNING, unless linked as a duplicate.
inline constexpr char kNotificationStarted[] = "started";
// + download (ACCESS, PORTABILITY): {method, path} of the route that issues
// a download URL, size_bytes, sha256. Never a URL itself.
inline constexpr char kNotificationCompleted[] = "completed";
inline constexpr char kNotificationFailed[] = "failed";        // + error, cause
inline constexpr char kNotificationCancelled[] = "cancelled";  // + cause
// To operators (audience=operator): + error, state, failed_stores (store,
// error), blocked_stores (store, cause).
inline constexpr char kNotificationNeedsAttention[] = "needs_attention";
inline constexpr char kNotificationExtended[] = "extended";  // + reason
inline constexpr char kNotificationDeadlineNear[] = "deadline_near";
inline constexpr char kNotificationOverdue[] = "overdue";
// To operators (audience=operator): + store, ready_since.
inline constexpr char kNotificationStoreUnserved[] = "store_unserved";
// To the store's owner and operators (audience=owner): + store, owner,
// operation, due, ready_since.
inline constexpr char kNotificationWorkItemOverdue[] = "work_item_overdue";
// To an OpenDSR controller only (docs/opendsr.md, "dsar as a processor"):
// the payload is the callback body itself, posted signed to its
// status_callback_url; the other sinks never see it.
inline constexpr char kNotificationOpenDsrCallback[] = "opendsr_callback";

}  // namespace dsar

#endif  // DSAR_MODEL_EVENT_KINDS_H_
