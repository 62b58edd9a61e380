#ifndef DSAR_TOOLS_DSARCTL_AUDIT_H_
#define DSAR_TOOLS_DSARCTL_AUDIT_H_

// Checking a request's history against the audit log with only the
// checkpoint public key; shared by `audit events` and `events --pubkey`.

#include <cstdint>
#include <string>
#include <vector>

#include "dsar/v1/requests.pb.h"
#include "storage/audit/checkpoint.h"
#include "tools/dsarctl/cli.h"

namespace dsarctl {

struct AuditedEvent {
  uint64_t log_index = 0;
  dsar::v1::Event event;  // Parsed from the audit entry's bytes.
  // True when its inclusion in the checkpoint was proven; false when the
  // entry is newer than the checkpoint and cannot be proven yet.
  bool proven = false;
};

struct RequestAudit {
  dsar::audit::Checkpoint checkpoint;  // Signature verified.
  std::vector<AuditedEvent> events;    // In chain order.
};

// The public key path: --pubkey, else the config file's pubkey; "" if none.
std::string PublicKeyPath(const Options& options);

// Fetches the latest checkpoint and verifies its signature with
// `public_key_pem`, then every audit entry of `request_id`: each must chain
// to the previous one and, when the checkpoint covers it, carry a valid
// inclusion proof. Returns kExitOk with `*audit` filled, or prints the
// problem to stderr and returns its exit code (kExitError for a failed
// verification, the call's code for an RPC error).
int AuditRequest(const Options& options, const std::string& request_id,
                 const std::string& public_key_pem, RequestAudit* audit);

// Reads the PEM file at `path` into `*pem`; prints the error and returns
// false when it cannot.
bool ReadPublicKey(const std::string& path, std::string* pem);

}  // namespace dsarctl

#endif  // DSAR_TOOLS_DSARCTL_AUDIT_H_
