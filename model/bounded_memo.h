#ifndef DSAR_MODEL_BOUNDED_MEMO_H_
#define DSAR_MODEL_BOUNDED_MEMO_H_

// A memo of a pure function's results, by key, for values that recur in a
// short time and are dear to compute (libphonenumber's parse of the phone
// numbers of the requests in flight, which every task and every candidate
// row asks for again). It holds at most `capacity` entries; when full it is
// emptied and fills again, so memory stays bounded without bookkeeping per
// entry, and what is in flight now is back in it after one computation.
//
// Thread-safe. The function runs outside the lock: two threads missing the
// same key both compute it, and either result is remembered (the function
// is pure, so they are equal). Guarded by a std::mutex, which
// ThreadSanitizer sees (Debian's absl::Mutex is not instrumented).

#include <cstddef>
#include <mutex>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace dsar {

template <typename Value>
class BoundedMemo {
 public:
  explicit BoundedMemo(size_t capacity) : capacity_(capacity) {}

  BoundedMemo(const BoundedMemo&) = delete;
  BoundedMemo& operator=(const BoundedMemo&) = delete;

  // The value remembered for `key`, or `compute()`'s, which is remembered.
  template <typename Compute>
  Value Get(std::string key, Compute compute) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = remembered_.find(key);
      if (it != remembered_.end()) return it->second;
    }
    Value value = compute();
    std::lock_guard<std::mutex> lock(mu_);
    if (remembered_.size() >= capacity_) remembered_.clear();
    remembered_.emplace(std::move(key), value);
    return value;
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, Value> remembered_;  // Guarded by mu_.
};

}  // namespace dsar

#endif  // DSAR_MODEL_BOUNDED_MEMO_H_
