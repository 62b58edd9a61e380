#ifndef DSAR_MODEL_TASK_OPERATION_H_
#define DSAR_MODEL_TASK_OPERATION_H_

// What a worker does to one store for one request. On the wire
// (v1::Task.operation) an operation travels as its name, a string, so that a
// worker older or newer than dsard reports an operation it does not know
// instead of misreading it; each side parses it at its edge.
//
// In a workflow definition an operation is a Task state's Resource:
// "dsar:worker." followed by the name ("dsar:worker.export"); see
// docs/workflow-language.md and engine/workflow_definition.h.

#include <optional>
#include <string>
#include <string_view>

namespace dsar {

enum class TaskOperation {
  kExport,    // "export": the subject's records, uploaded as an artifact.
  kDiscover,  // "discover": further identities of the subject, no records.
  kErase,     // "erase": delete the subject's records.
  kRectify,   // "rectify": apply the request's field corrections.
  kRestrict,  // "restrict": set the store's restriction flag.
  kObject,    // "object": set the store's objection flag.
  // "scan": the store's audit scan for privacy signals (audit_scan/), its
  // findings uploaded as an artifact; no subject.
  kScan,
};

// Every operation, in declaration order.
inline constexpr TaskOperation kAllTaskOperations[] = {
    TaskOperation::kExport,  TaskOperation::kDiscover, TaskOperation::kErase,
    TaskOperation::kRectify, TaskOperation::kRestrict, TaskOperation::kObject,
    TaskOperation::kScan,
};

// The wire name: "export", "discover", "erase", "rectify", "restrict",
// "object" or "scan".
std::string_view TaskOperationName(TaskOperation operation);

// The operation named `name` (exactly, case-sensitive); nullopt for any
// other string, including "".
std::optional<TaskOperation> ParseTaskOperation(std::string_view name);

// The names ParseTaskOperation accepts, comma-separated, for error messages.
std::string KnownTaskOperationNames();

// The prefix of every worker resource in a workflow definition.
inline constexpr std::string_view kWorkerResourcePrefix = "dsar:worker.";

// The workflow Resource that runs `operation` on each store:
// "dsar:worker.<name>".
std::string WorkerResource(TaskOperation operation);

// The operation a workflow Resource runs; nullopt for a resource that is not
// a worker resource ("dsar:bundle", "dsar:worker.unknown").
std::optional<TaskOperation> TaskOperationOfResource(std::string_view resource);

}  // namespace dsar

#endif  // DSAR_MODEL_TASK_OPERATION_H_
