#include "model/task_operation.h"

// Plain std::string operations: this Abseil build's absl::string_view is
// not std::string_view, and the model's interface is std::string_view.

namespace dsar {

std::string_view TaskOperationName(TaskOperation operation) {
  switch (operation) {
    case TaskOperation::kExport:
      return "export";
    case TaskOperation::kDiscover:
      return "discover";
    case TaskOperation::kErase:
      return "erase";
    case TaskOperation::kRectify:
      return "rectify";
    case TaskOperation::kRestrict:
      return "restrict";
    case TaskOperation::kObject:
      return "object";
    case TaskOperation::kScan:
      return "scan";
  }
  return "";  // Not reached: the switch names every operation.
}

std::optional<TaskOperation> ParseTaskOperation(std::string_view name) {
  for (TaskOperation operation : kAllTaskOperations) {
    if (TaskOperationName(operation) == name) return operation;
  }
  return std::nullopt;
}

std::string KnownTaskOperationNames() {
  std::string names;
  for (TaskOperation operation : kAllTaskOperations) {
    if (!names.empty()) names += ", ";
    names += TaskOperationName(operation);
  }
  return names;
}

std::string WorkerResource(TaskOperation operation) {
  std::string resource(kWorkerResourcePrefix);
  resource += TaskOperationName(operation);
  return resource;
}

std::optional<TaskOperation> TaskOperationOfResource(
    std::string_view resource) {
  if (resource.substr(0, kWorkerResourcePrefix.size()) !=
      kWorkerResourcePrefix) {
    return std::nullopt;
  }
  return ParseTaskOperation(resource.substr(kWorkerResourcePrefix.size()));
}

}  // namespace dsar
