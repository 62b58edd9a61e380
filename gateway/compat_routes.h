#ifndef DSAR_GATEWAY_COMPAT_ROUTES_H_
#define DSAR_GATEWAY_COMPAT_ROUTES_H_

// The routes the seed designs show, kept working on top of the v1 API:
//
//   POST /dsar {"user_id", "action": "export"|"delete"}  → 200 {"jobId"}
//   GET  /dsar/{jobId}                                   → job metadata
//   GET  /dsar/{jobId}/events                            → the audit events
//   GET  /dsar/{jobId}/download                          → 302 to the bundle
//   POST /api/dsar/submit {email, fullName, requestType}
//        → 400 {errors: [...]} | 403 | 202 {requestId, message, deadline}
//
// Each is a translation onto DsarService calls; they share the gateway's
// authentication, the actor metadata and the google.rpc.Status errors (the
// submit route answers its validation errors in the seed's own shape).

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gateway/backend_client.h"
#include "gateway/http_reply.h"
#include "gateway/path_template.h"
#include "gateway/request_auth.h"

namespace dsar::gateway {

class CompatRoutes {
 public:
  enum class Kind { kCreateJob, kGetJob, kJobEvents, kDownload, kSubmit };
  struct Match {
    Kind kind;
    std::string required_scope;
    std::vector<PathBinding> bindings;
  };

  // Calls go to the coordinator through `backend`, which must outlive this.
  explicit CompatRoutes(const BackendClient* backend);

  // The compatibility route for `http_method` and `path`, if any.
  std::optional<Match> Find(const std::string& http_method,
                            const std::string& path) const;

  // Serves a request that Find matched, for an authorized `caller`.
  // `idempotency_key` is the Idempotency-Key header ("" when absent).
  HttpReply Serve(const Match& match, const std::string& body,
                  const std::string& idempotency_key, const Caller& caller,
                  absl::Time now) const;

 private:
  struct Entry {
    Kind kind;
    std::string http_method;
    PathTemplate path;
    std::string required_scope;
  };

  HttpReply CreateJob(const std::string& body,
                      const std::string& idempotency_key,
                      const Caller& caller) const;
  HttpReply GetJob(const std::string& id, const Caller& caller) const;
  HttpReply JobEvents(const std::string& id, const Caller& caller) const;
  HttpReply Download(const std::string& id, const Caller& caller) const;
  HttpReply Submit(const std::string& body, const std::string& idempotency_key,
                   const Caller& caller) const;

  const BackendClient* backend_;
  std::vector<Entry> entries_;
};

// The seed-003 checks of POST /api/dsar/submit, exposed for tests: an
// address validator.js's isEmail would accept (without its rarely used
// options).
bool LooksLikeEmail(const std::string& email);

}  // namespace dsar::gateway

#endif  // DSAR_GATEWAY_COMPAT_ROUTES_H_
