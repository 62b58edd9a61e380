#ifndef DSAR_MODEL_WORKER_PROTOCOL_H_
#define DSAR_MODEL_WORKER_PROTOCOL_H_

// Facts of the worker protocol (proto/dsar/v1/worker.proto) that travel
// beside its messages, shared by dsard and dsar-worker.

#include <functional>
#include <vector>

#include "dsar/v1/worker.pb.h"

namespace dsar {

// Trailing metadata of a refused Heartbeat whose task's request has ended
// (cancelled, or finished without it), as against a lease another attempt
// holds: the worker then withdraws work it started elsewhere (an OpenDSR
// processor request, docs/opendsr.md). Value: the request's status name.
inline constexpr char kRequestEndedMetadataKey[] = "x-dsar-request-ended";

// At most this many tasks are leased to one poll (PollTaskRequest.max_tasks).
inline constexpr int kMaxTasksPerPoll = 16;
// At most this many reports in one ReportTasks message: a TaskReport and
// those in its `more`.
inline constexpr int kMaxReportsPerBatch = 64;

// Tasks leased together travel as a first task in one field
// (PollTaskResponse.task, CompleteTaskResponse.next_task,
// TaskReportAnswer.next_task) and the others in its `more` twin.
//
// Puts `tasks` there: the first in the field `first` returns, which is not
// called when there are none (the field stays absent), the others in
// `more`.
void PutLeasedTasks(std::vector<v1::Task> tasks,
                    const std::function<v1::Task*()>& first,
                    google::protobuf::RepeatedPtrField<v1::Task>* more);
// Moves them out, in order: `first`, whose caller checked that it is set,
// then `more`.
std::vector<v1::Task> TakeLeasedTasks(
    v1::Task& first, google::protobuf::RepeatedPtrField<v1::Task>& more);

}  // namespace dsar

#endif  // DSAR_MODEL_WORKER_PROTOCOL_H_
