#ifndef DSAR_MODEL_CONNECTOR_ERRORS_H_
#define DSAR_MODEL_CONNECTOR_ERRORS_H_

// The error names a worker reports when a store operation fails; workflow
// definitions match them in Retry and Catch (docs/errors.md).
//
// Transient (worth a retry):
//   Connector.Unavailable  the store cannot be reached now: the file cannot
//                          be opened, it is locked (SQLITE_BUSY/LOCKED), an
//                          I/O error; codes UNAVAILABLE, DEADLINE_EXCEEDED,
//                          ABORTED, RESOURCE_EXHAUSTED.
//   Connector.Failed       anything not classified below.
// Permanent (a retry fails the same way):
//   Connector.InvalidValue         INVALID_ARGUMENT: a value the store or
//                                  its declared field type refuses.
//   Connector.ConstraintViolation  the store's constraints refuse the change
//                                  (SQLITE_CONSTRAINT, e.g. UNIQUE).
//   Connector.PermissionDenied     PERMISSION_DENIED: the store is read-only
//                                  to the worker (SQLITE_READONLY, EACCES).
//   Connector.SchemaMismatch       NOT_FOUND: a table or field the inventory
//                                  names does not exist.
//   Connector.Corrupt              DATA_LOSS: the store's file is damaged or
//                                  is not a database (SQLITE_CORRUPT/NOTADB);
//                                  a person has to restore it.
//   Identity.Conflict              the subject's identities match different
//                                  records of one collection.
//   Connector.Denied               an OpenDSR processor refused or cancelled
//                                  the request (its reason in the cause).
//   Connector.Unsupported          the service does not offer the right or
//                                  the identity types asked for.
//   Connector.Unverified           a service's answer failed its signature or
//                                  certificate check.
//   Erasure.Residue                an erasure reported success, yet the
//                                  subject is still found in the store
//                                  (ERASURE_RESIDUE).
//
// Codes stay google.rpc codes; where one code covers several names
// (FAILED_PRECONDITION), the connector attaches the name to the status.

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace dsar {

inline constexpr std::string_view kErrorUnavailable = "Connector.Unavailable";
inline constexpr std::string_view kErrorFailed = "Connector.Failed";
inline constexpr std::string_view kErrorInvalidValue = "Connector.InvalidValue";
inline constexpr std::string_view kErrorConstraintViolation =
    "Connector.ConstraintViolation";
inline constexpr std::string_view kErrorPermissionDenied =
    "Connector.PermissionDenied";
inline constexpr std::string_view kErrorSchemaMismatch =
    "Connector.SchemaMismatch";
inline constexpr std::string_view kErrorCorrupt = "Connector.Corrupt";
inline constexpr std::string_view kErrorIdentityConflict = "Identity.Conflict";
inline constexpr std::string_view kErrorDenied = "Connector.Denied";
inline constexpr std::string_view kErrorUnsupported = "Connector.Unsupported";
inline constexpr std::string_view kErrorUnverified = "Connector.Unverified";
inline constexpr std::string_view kErrorResidue = "Erasure.Residue";

// `status` (not OK) carrying `name`, which ConnectorErrorName returns ahead
// of the code's default name.
absl::Status WithErrorName(absl::Status status, std::string_view name);

// The error name of a failed operation: the name attached by WithErrorName,
// else the default name of its code (see above).
std::string ConnectorErrorName(const absl::Status& status);

// True for the transient names: Connector.Unavailable and Connector.Failed.
bool IsTransientErrorName(std::string_view name);

}  // namespace dsar

#endif  // DSAR_MODEL_CONNECTOR_ERRORS_H_
