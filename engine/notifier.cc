#include "engine/notifier.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

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
    int fd =
        ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::UnavailableError(
          absl::StrCat("open ", path_, ": ", std::strerror(errno)));
    }
    std::string line = absl::StrCat(notification.payload_json(), "\n");
    ssize_t written = ::write(fd, line.data(), line.size());
    bool ok = written == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return absl::UnavailableError(absl::StrCat("write ", path_));
    return absl::OkStatus();
  }

 private:
  std::string path_;
};

}  // namespace

std::unique_ptr<NotificationSink> MakeFileSink(std::string path) {
  return std::make_unique<FileSink>(std::move(path));
}

Notifier::Notifier(std::vector<std::unique_ptr<NotificationSink>> sinks,
                   std::function<void(const std::string& id)> delivered,
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
    Pending pending;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (true) {
        if (stopping_) return;
        if (!queue_.empty()) {
          auto due =
              std::min_element(queue_.begin(), queue_.end(),
                               [](const Pending& a, const Pending& b) {
                                 return a.next_attempt_ms < b.next_attempt_ms;
                               });
          int64_t wait_ms = due->next_attempt_ms - NowMillis();
          if (wait_ms <= 0) {
            pending = std::move(*due);
            queue_.erase(due);
            ++in_delivery_;
            break;
          }
          wake_.wait_for(lock, std::chrono::milliseconds(wait_ms));
        } else {
          wake_.wait(lock);
        }
      }
    }
    absl::StatusOr<internal::Notification> outgoing = pending.notification;
    if (unseal_) outgoing = unseal_(pending.notification);
    absl::Status status = outgoing.status();
    for (const auto& sink : sinks_) {
      if (!status.ok()) break;
      if (sink->Accepts(*outgoing)) status = sink->Deliver(*outgoing);
    }
    if (status.ok()) {
      delivered_(pending.notification.id());
      std::lock_guard<std::mutex> lock(mu_);
      --in_delivery_;
      continue;
    }
    ++pending.failures;
    int64_t delay = std::min(
        kMaxRetryMs, kFirstRetryMs << std::min(pending.failures - 1, 20));
    pending.next_attempt_ms = NowMillis() + delay;
    LogWarning(absl::StrCat("notification ", pending.notification.id(),
                            " not delivered (", status.ToString(),
                            "); retry in ", delay, " ms"),
               ForRequest(pending.notification.request_id()));
    std::lock_guard<std::mutex> lock(mu_);
    --in_delivery_;
    queue_.push_back(std::move(pending));
  }
}

}  // namespace dsar
