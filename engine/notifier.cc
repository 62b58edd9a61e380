#include "engine/notifier.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "model/event_kinds.h"

namespace dsar {
namespace {

constexpr int64_t kFirstRetryMs = 500;
constexpr int64_t kMaxRetryMs = 5 * 60 * 1000;

int64_t NowMillis() { return absl::ToUnixMillis(absl::Now()); }

class FileSink : public NotificationSink {
 public:
  explicit FileSink(std::string path) : path_(std::move(path)) {}

  absl::Status Deliver(const internal::Notification& notification) override {
    return Append(absl::StrCat(notification.payload_json(), "\n"));
  }

  std::vector<absl::Status> DeliverAll(
      const std::vector<const internal::Notification*>& notifications)
      override {
    std::string lines;
    for (const internal::Notification* notification : notifications) {
      absl::StrAppend(&lines, notification->payload_json(), "\n");
    }
    return std::vector<absl::Status>(notifications.size(), Append(lines));
  }

 private:
  // Appends `lines` and syncs them: all of them are on disk, or the error
  // says that some may not be (they are delivered again; readers
  // deduplicate by id).
  absl::Status Append(const std::string& lines) {
    int fd =
        ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::UnavailableError(
          absl::StrCat("open ", path_, ": ", std::strerror(errno)));
    }
    ssize_t written = ::write(fd, lines.data(), lines.size());
    bool ok = written == static_cast<ssize_t>(lines.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return absl::UnavailableError(absl::StrCat("write ", path_));
    return absl::OkStatus();
  }

  std::string path_;
};

}  // namespace

std::unique_ptr<NotificationSink> MakeFileSink(std::string path) {
  return std::make_unique<FileSink>(std::move(path));
}

Notifier::Notifier(std::vector<std::unique_ptr<NotificationSink>> sinks,
                   std::function<void(std::vector<std::string> ids)> delivered,
                   Unseal unseal)
    : sinks_(std::move(sinks)),
      delivered_(std::move(delivered)),
      unseal_(std::move(unseal)) {
  thread_ = std::thread([this] { Run(); });
}

Notifier::~Notifier() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::vector<absl::Status> NotificationSink::DeliverAll(
    const std::vector<const internal::Notification*>& notifications) {
  std::vector<absl::Status> statuses;
  statuses.reserve(notifications.size());
  for (const internal::Notification* notification : notifications) {
    statuses.push_back(Deliver(*notification));
  }
  return statuses;
}

bool NotificationSink::Accepts(
    const internal::Notification& notification) const {
  return notification.kind() != kNotificationOpenDsrCallback;
}

void Notifier::Submit(internal::Notification notification) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({std::move(notification), 0, 0});
  }
  wake_.notify_all();
}

int64_t Notifier::Backlog() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(queue_.size()) + in_delivery_;
}

void Notifier::Run() {
  while (true) {
    std::vector<Pending> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (true) {
        if (stopping_) return;
        if (queue_.empty()) {
          wake_.wait(lock);
          continue;
        }
        const int64_t now = NowMillis();
        int64_t first_due = INT64_MAX;
        for (auto it = queue_.begin();
             it != queue_.end() && batch.size() < kMaxBatch;) {
          if (it->next_attempt_ms <= now) {
            batch.push_back(std::move(*it));
            it = queue_.erase(it);
          } else {
            first_due = std::min(first_due, it->next_attempt_ms);
            ++it;
          }
        }
        if (!batch.empty()) {
          in_delivery_ += static_cast<int64_t>(batch.size());
          break;
        }
        wake_.wait_for(lock, std::chrono::milliseconds(first_due - now));
      }
    }
    DeliverBatch(std::move(batch));
  }
}

void Notifier::DeliverBatch(std::vector<Pending> batch) {
  std::vector<absl::Status> statuses(batch.size());
  std::vector<internal::Notification> outgoing(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!unseal_) {
      outgoing[i] = batch[i].notification;
      continue;
    }
    absl::StatusOr<internal::Notification> opened =
        unseal_(batch[i].notification);
    if (opened.ok()) {
      outgoing[i] = *std::move(opened);
    } else {
      statuses[i] = opened.status();
    }
  }
  for (const auto& sink : sinks_) {
    std::vector<size_t> indexes;
    std::vector<const internal::Notification*> accepted;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (statuses[i].ok() && sink->Accepts(outgoing[i])) {
        indexes.push_back(i);
        accepted.push_back(&outgoing[i]);
      }
    }
    if (accepted.empty()) continue;
    std::vector<absl::Status> results = sink->DeliverAll(accepted);
    for (size_t k = 0; k < indexes.size(); ++k) {
      statuses[indexes[k]] =
          k < results.size()
              ? results[k]
              : absl::InternalError("the sink gave no answer for it");
    }
  }
  std::vector<std::string> delivered;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (statuses[i].ok()) delivered.push_back(batch[i].notification.id());
  }
  if (!delivered.empty()) delivered_(std::move(delivered));
  std::lock_guard<std::mutex> lock(mu_);
  in_delivery_ -= static_cast<int64_t>(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (statuses[i].ok()) continue;
    Pending& pending = batch[i];
    ++pending.failures;
    int64_t delay = std::min(
        kMaxRetryMs, kFirstRetryMs << std::min(pending.failures - 1, 20));
    pending.next_attempt_ms = NowMillis() + delay;
    LogWarning(absl::StrCat("notification ", pending.notification.id(),
                            " not delivered (", statuses[i].ToString(),
                            "); retry in ", delay, " ms"),
               ForRequest(pending.notification.request_id()));
    queue_.push_back(std::move(pending));
  }
}

}  // namespace dsar
