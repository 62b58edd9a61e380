#include "model/worker_protocol.h"

#include <utility>

namespace dsar {

void PutLeasedTasks(std::vector<v1::Task> tasks,
                    const std::function<v1::Task*()>& first,
                    google::protobuf::RepeatedPtrField<v1::Task>* more) {
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (i == 0) {
      *first() = std::move(tasks[0]);
    } else {
      *more->Add() = std::move(tasks[i]);
    }
  }
}

std::vector<v1::Task> TakeLeasedTasks(
    v1::Task& first, google::protobuf::RepeatedPtrField<v1::Task>& more) {
  std::vector<v1::Task> tasks;
  tasks.reserve(1 + more.size());
  tasks.push_back(std::move(first));
  for (v1::Task& task : more) tasks.push_back(std::move(task));
  return tasks;
}

}  // namespace dsar
