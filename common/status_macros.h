#ifndef DSAR_COMMON_STATUS_MACROS_H_
#define DSAR_COMMON_STATUS_MACROS_H_

// Abseil 20220623 (Debian 12) ships Status/StatusOr but no RETURN_IF_ERROR or
// ASSIGN_OR_RETURN. These are the project's single definitions of both.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DSAR_STATUS_CONCAT_INNER_(a, b) a##b
#define DSAR_STATUS_CONCAT_(a, b) DSAR_STATUS_CONCAT_INNER_(a, b)

// RETURN_IF_ERROR(expr): evaluates `expr` (an absl::Status) and returns it
// from the enclosing function when it is not OK.
#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status dsar_status_ = (expr);        \
    if (!dsar_status_.ok()) return dsar_status_; \
  } while (false)

// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>); on
// error returns its status, otherwise moves the value into `lhs`, which may be
// a declaration such as `auto x`.
#define ASSIGN_OR_RETURN(lhs, expr)                                          \
  DSAR_ASSIGN_OR_RETURN_IMPL_(DSAR_STATUS_CONCAT_(dsar_statusor_, __LINE__), \
                              lhs, expr)

#define DSAR_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                \
  if (!statusor.ok()) return statusor.status();          \
  lhs = std::move(statusor).value()

#endif  // DSAR_COMMON_STATUS_MACROS_H_
