#ifndef DSAR_ENGINE_COORDINATOR_INTERNAL_H_
#define DSAR_ENGINE_COORDINATOR_INTERNAL_H_

// Shared by the files that make up Coordinator (engine/coordinator*.cc):
// task ids, the long-poll hand-over slot and RunInLoop. Not for other
// callers.

#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/coordinator.h"

namespace dsar {
namespace coordinator_internal {

// "<request id>/<map run>/<item>": names a Map item's task.
std::string TaskId(const std::string& request_id, int map, int item);

struct ParsedTaskId {
  std::string request_id;
  int map = 0;
  int item = 0;
};

// INVALID_ARGUMENT naming task_id when it is not a TaskId.
absl::StatusOr<ParsedTaskId> ParseTaskId(const std::string& task_id);

// What `store` keeps of a subject's records when it erases them (fields
// masked with `keep`, CollectionSpec::masks), one exemption per field with
// its legal reason, for the Art. 15 answer (BundleInput::retained).
std::vector<BundleExemption> RetainedOnErasure(const StoreSpec& store);

// The request whose bundle `request` carries, under whose data key it is
// encrypted: the request itself, or the one it was linked to as a duplicate
// and completed with.
inline const std::string& BundleOwner(const v1::Request& request) {
  return request.linked_to().empty() ? request.id() : request.linked_to();
}

}  // namespace coordinator_internal

struct Coordinator::PollSlot {
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;                   // GUARDED_BY(mu)
  bool abandoned = false;              // GUARDED_BY(mu)
  absl::StatusOr<LeasedTasks> result;  // GUARDED_BY(mu)
  // Set for a poll nobody waits for (ReportTasksAsync): Fulfil hands the
  // result to it instead of `result`.
  std::function<void(absl::StatusOr<LeasedTasks>)> on_done;

  // Hands the result over; false when the poller already left.
  bool Fulfil(absl::StatusOr<LeasedTasks> value) {
    std::function<void(absl::StatusOr<LeasedTasks>)> callback;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (abandoned || done) return false;
      done = true;
      if (on_done == nullptr) {
        result = std::move(value);
        done_cv.notify_all();
        return true;
      }
      callback = std::move(on_done);
    }
    callback(std::move(value));
    return true;
  }
  bool Abandoned() {
    std::lock_guard<std::mutex> lock(mu);
    return abandoned;
  }
  // The poller left: DispatchToPollers leases it nothing and its callback,
  // if any, is never called. No effect once fulfilled.
  void Abandon() {
    std::lock_guard<std::mutex> lock(mu);
    if (done) return;
    abandoned = true;
    on_done = nullptr;
  }
};

namespace coordinator_internal {

// Calls `done` once: with Give's value, or, when dropped without one (a
// command the stopping loop never ran), with UNAVAILABLE.
template <typename T>
class AnswerOnce {
 public:
  explicit AnswerOnce(std::function<void(absl::StatusOr<T>)> done)
      : done_(std::move(done)) {}
  ~AnswerOnce() {
    if (done_ != nullptr) {
      done_(absl::UnavailableError("coordinator is shutting down"));
    }
  }
  AnswerOnce(const AnswerOnce&) = delete;
  AnswerOnce& operator=(const AnswerOnce&) = delete;

  void Give(absl::StatusOr<T> value) {
    std::function<void(absl::StatusOr<T>)> done = std::move(done_);
    done_ = nullptr;
    if (done != nullptr) done(std::move(value));
  }
  // The answer comes from elsewhere from now on (a poll's slot, which has
  // its own copy of `done`): dropping this one says nothing.
  void HandOver() { done_ = nullptr; }

 private:
  std::function<void(absl::StatusOr<T>)> done_;
};

}  // namespace coordinator_internal

template <typename T>
absl::StatusOr<T> Coordinator::RunInLoop(
    std::function<absl::StatusOr<T>(Txn&)> fn) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<T>>>();
  std::future<absl::StatusOr<T>> future = promise->get_future();
  RunInLoopAsync<T>(std::move(fn), [promise](absl::StatusOr<T> result) {
    promise->set_value(std::move(result));
  });
  return future.get();
}

template <typename T>
void Coordinator::RunInLoopAsync(std::function<absl::StatusOr<T>(Txn&)> fn,
                                 std::function<void(absl::StatusOr<T>)> done) {
  auto answer =
      std::make_shared<coordinator_internal::AnswerOnce<T>>(std::move(done));
  bool queued = Enqueue([fn = std::move(fn), answer](Txn& txn) {
    auto result = std::make_shared<absl::StatusOr<T>>(fn(txn));
    txn.replies.push_back(
        [answer, result] { answer->Give(std::move(*result)); });
  });
  if (!queued) {
    answer->Give(absl::UnavailableError("coordinator is shutting down"));
  }
}

}  // namespace dsar

#endif  // DSAR_ENGINE_COORDINATOR_INTERNAL_H_
