#include "engine/notifier.h"

#include <stdlib.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

internal::Notification MakeNotification(const std::string& id) {
  internal::Notification notification;
  notification.set_id(id);
  notification.set_request_id("dsr_test");
  notification.set_kind("completed");
  notification.set_payload_json(absl::StrCat(R"({"id":")", id, R"("})"));
  return notification;
}

// What a sink and the delivered callback saw, shared with the test thread.
struct Record {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<std::vector<std::string>> sink_calls;  // ids per DeliverAll.
  std::vector<std::vector<std::string>> delivered;   // ids per callback.
  bool gate_open = true;
  std::string fail_once;  // This id fails on its first attempt.

  size_t DeliveredCount() {
    size_t count = 0;
    for (const auto& ids : delivered) count += ids.size();
    return count;
  }
};

class RecordingSink : public NotificationSink {
 public:
  explicit RecordingSink(Record* record) : record_(record) {}

  absl::Status Deliver(const internal::Notification& notification) override {
    return DeliverAll({&notification}).front();
  }

  std::vector<absl::Status> DeliverAll(
      const std::vector<const internal::Notification*>& notifications)
      override {
    std::unique_lock<std::mutex> lock(record_->mu);
    std::vector<std::string> ids;
    std::vector<absl::Status> statuses;
    for (const internal::Notification* notification : notifications) {
      ids.push_back(notification->id());
      if (notification->id() == record_->fail_once) {
        record_->fail_once.clear();
        statuses.push_back(absl::UnavailableError("receiver is down"));
      } else {
        statuses.push_back(absl::OkStatus());
      }
    }
    record_->sink_calls.push_back(std::move(ids));
    record_->changed.notify_all();
    record_->changed.wait(lock, [&] { return record_->gate_open; });
    return statuses;
  }

 private:
  Record* record_;
};

std::unique_ptr<Notifier> StartNotifier(Record* record) {
  std::vector<std::unique_ptr<NotificationSink>> sinks;
  sinks.push_back(std::make_unique<RecordingSink>(record));
  return std::make_unique<Notifier>(
      std::move(sinks), [record](std::vector<std::string> ids) {
        std::lock_guard<std::mutex> lock(record->mu);
        record->delivered.push_back(std::move(ids));
        record->changed.notify_all();
      });
}

// Submits "n0" with the sink's gate closed and returns once the sink holds
// it: what is submitted next waits in the queue.
void HoldFirstDelivery(Record& record, Notifier& notifier) {
  {
    std::lock_guard<std::mutex> lock(record.mu);
    record.gate_open = false;
  }
  notifier.Submit(MakeNotification("n0"));
  std::unique_lock<std::mutex> lock(record.mu);
  record.changed.wait(lock, [&] { return record.sink_calls.size() == 1; });
}

TEST(NotifierTest, HandsWhatQueuedDuringADeliveryToTheSinkTogether) {
  Record record;
  std::unique_ptr<Notifier> notifier = StartNotifier(&record);
  HoldFirstDelivery(record, *notifier);
  for (int i = 1; i <= 5; ++i) {
    notifier->Submit(MakeNotification(absl::StrCat("n", i)));
  }
  EXPECT_EQ(notifier->Backlog(), 6);
  {
    std::unique_lock<std::mutex> lock(record.mu);
    record.gate_open = true;
    record.changed.notify_all();
    record.changed.wait(lock, [&] { return record.DeliveredCount() == 6; });
    ASSERT_EQ(record.sink_calls.size(), 2u);
    EXPECT_EQ(record.sink_calls[0], std::vector<std::string>{"n0"});
    EXPECT_EQ(record.sink_calls[1],
              (std::vector<std::string>{"n1", "n2", "n3", "n4", "n5"}));
    // One outbox clean-up per batch, with the ids in order.
    ASSERT_EQ(record.delivered.size(), 2u);
    EXPECT_EQ(record.delivered[1], record.sink_calls[1]);
  }
  notifier.reset();
}

TEST(NotifierTest, RetriesOnlyWhatTheSinkRefused) {
  Record record;
  record.fail_once = "n2";
  std::unique_ptr<Notifier> notifier = StartNotifier(&record);
  HoldFirstDelivery(record, *notifier);
  for (int i = 1; i <= 3; ++i) {
    notifier->Submit(MakeNotification(absl::StrCat("n", i)));
  }
  std::unique_lock<std::mutex> lock(record.mu);
  record.gate_open = true;
  record.changed.notify_all();
  record.changed.wait(lock, [&] { return record.DeliveredCount() == 4; });
  ASSERT_EQ(record.delivered.size(), 3u);
  EXPECT_EQ(record.delivered[1], (std::vector<std::string>{"n1", "n3"}));
  // n2 alone, after its back-off.
  EXPECT_EQ(record.delivered[2], std::vector<std::string>{"n2"});
  EXPECT_EQ(record.sink_calls.back(), std::vector<std::string>{"n2"});
}

TEST(NotifierTest, FileSinkAppendsABatchAsLinesInOrder) {
  std::string dir =
      (std::filesystem::temp_directory_path() / "notifier_test.XXXXXX")
          .string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/notify.jsonl";
  std::unique_ptr<NotificationSink> sink = MakeFileSink(path);
  ASSERT_TRUE(sink->Deliver(MakeNotification("a")).ok());
  internal::Notification b = MakeNotification("b");
  internal::Notification c = MakeNotification("c");
  std::vector<absl::Status> statuses = sink->DeliverAll({&b, &c});
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_TRUE(statuses[0].ok() && statuses[1].ok());
  absl::StatusOr<std::string> written = ReadFile(path);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n");

  // A file that cannot be opened fails every notification of the batch.
  std::unique_ptr<NotificationSink> broken =
      MakeFileSink(dir + "/missing/notify.jsonl");
  statuses = broken->DeliverAll({&b, &c});
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_EQ(statuses[0].code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kUnavailable);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dsar
