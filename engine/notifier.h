#ifndef DSAR_ENGINE_NOTIFIER_H_
#define DSAR_ENGINE_NOTIFIER_H_

// Delivers notifications from the durable outbox to their sinks: a JSON-lines
// file (the demo) and/or a webhook (HTTP POST with an HMAC-SHA256 signature
// over timestamp and body, against replay). Delivery is at least once: a
// notification leaves the outbox only after every sink accepted it, and a
// crash before that redelivers it with the same id, which receivers use to
// deduplicate. Failed deliveries are retried with exponential back-off.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dsar/internal/records.pb.h"

namespace dsar {

// A destination for notifications. Deliver must be safe to call again with
// the same notification (receivers deduplicate by id).
class NotificationSink {
 public:
  virtual ~NotificationSink() = default;
  // Whether this sink receives `notification`. By default every
  // notification but OpenDSR callbacks, which go to their controller only.
  virtual bool Accepts(const internal::Notification& notification) const;
  virtual absl::Status Deliver(const internal::Notification& notification) = 0;
  // Delivers `notifications` in order; returns one status per notification.
  // By default, Deliver on each in turn. A sink that can make several
  // durable at the cost of one (a file: one fsync) overrides it.
  virtual std::vector<absl::Status> DeliverAll(
      const std::vector<const internal::Notification*>& notifications);
};

// Appends one JSON object per line and fsyncs before returning; a batch is
// one write and one fsync.
std::unique_ptr<NotificationSink> MakeFileSink(std::string path);

// POSTs the payload to `url` (http:// or https://) with headers
//   X-DSAR-Delivery: <notification id>
//   X-DSAR-Timestamp: <unix seconds>
//   X-DSAR-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
// Receivers reject stale timestamps (replay) and bad signatures. Any 2xx is
// success; other answers and transport errors are retried.
std::unique_ptr<NotificationSink> MakeWebhookSink(std::string url,
                                                  std::string secret);

// POSTs OpenDSR callbacks (kind opendsr_callback, whose payload is the
// body) to the status_callback_url in their body over HTTPS, signed with
// the processor's PEM private key `key_pem` (X-OpenDSR-Signature) and
// naming `domain` (X-OpenDSR-Processor-Domain); the controller's
// certificate is checked against `ca_file` (empty: the system's CAs). A
// 4xx other than 408 and 429 is final (the controller refused it; it can
// still poll): logged and not retried. Accepts nothing else.
std::unique_ptr<NotificationSink> MakeOpenDsrCallbackSink(std::string key_pem,
                                                          std::string domain,
                                                          std::string ca_file);

class Notifier {
 public:
  // Turns a notification as stored in the outbox into what sinks receive
  // (e.g. opens a sealed one-time code); an error is retried like a failed
  // delivery.
  using Unseal = std::function<absl::StatusOr<internal::Notification>(
      const internal::Notification&)>;

  // The notifier thread takes every notification that is due (at most
  // kMaxBatch) and hands them to each sink together, in submission order.
  // `delivered` is then called (from the notifier thread) with the ids that
  // every sink accepted, once per batch; the owner removes them from the
  // outbox. `unseal` may be empty (stored form delivered as is).
  static constexpr size_t kMaxBatch = 256;
  Notifier(std::vector<std::unique_ptr<NotificationSink>> sinks,
           std::function<void(std::vector<std::string> ids)> delivered,
           Unseal unseal = nullptr);
  // Stops the thread; undelivered notifications stay in the outbox.
  ~Notifier();

  void Submit(internal::Notification notification);
  // Notifications submitted and not yet accepted by every sink (the ones
  // being delivered included). Thread-safe.
  int64_t Backlog();

 private:
  struct Pending {
    internal::Notification notification;
    int64_t next_attempt_ms = 0;
    int failures = 0;
  };
  void Run();
  // Delivers `batch` to every sink; puts what failed back on the queue.
  void DeliverBatch(std::vector<Pending> batch);

  std::vector<std::unique_ptr<NotificationSink>> sinks_;
  std::function<void(std::vector<std::string>)> delivered_;
  Unseal unseal_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;  // GUARDED_BY(mu_)
  int64_t in_delivery_ = 0;    // GUARDED_BY(mu_): taken off queue_.
  bool stopping_ = false;      // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace dsar

#endif  // DSAR_ENGINE_NOTIFIER_H_
