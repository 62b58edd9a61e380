#ifndef DSAR_GATEWAY_COMPAT_SEED_ROUTES_H_
#define DSAR_GATEWAY_COMPAT_SEED_ROUTES_H_

// The routes the seed designs show, kept working on top of the v1 API:
//
//   POST /dsar {"user_id", "action": "export"|"delete"}  → 200 {"jobId"}
//   GET  /dsar/{jobId}                                   → job metadata
//   GET  /dsar/{jobId}/events                            → the audit events
//   GET  /dsar/{jobId}/download                          → 302 to the bundle
//   POST /api/dsar/submit {email, fullName, requestType}
//        → 400 {errors: [...]} | 403 | 202 {requestId, message, deadline}
//
// Each is a translation onto DsarService calls. The rules stay dsard's: the
// identity's format is checked by the model's validator (the one dsard
// applies at intake), the deadline is the one dsard computed. These routes
// only reshape requests and answers into the seeds' JSON. dsar-gateway
// serves them through the RouteProvider interface (gateway_main.cc).

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dsar/v1/requests.pb.h"
#include "gateway/backend_client.h"
#include "gateway/route_provider.h"
#include "nlohmann/json.hpp"

namespace dsar::gateway::compat {

class SeedRoutes : public RouteProvider {
 public:
  // Route numbers of RouteProvider::Match::route.
  enum Route : int { kCreateJob, kGetJob, kJobEvents, kDownload, kSubmit };

  // Calls go to the coordinator through `backend`.
  explicit SeedRoutes(std::shared_ptr<const BackendClient> backend);

  std::optional<Match> Find(const std::string& method,
                            const std::string& path) const override;
  // The Idempotency-Key header, when given, becomes the request's
  // idempotency key on POST /dsar and POST /api/dsar/submit.
  HttpReply Serve(const Match& match, const HttpRequest& request,
                  const Caller& caller) const override;

 private:
  struct Entry {
    Route route;
    std::string http_method;
    PathTemplate path;
    std::string required_scope;
  };

  HttpReply CreateJob(const std::string& body,
                      const std::string& idempotency_key,
                      const Caller& caller) const;
  // The request `id` as `caller` may see it: NOT_FOUND (as for an unknown
  // id) when it is another subject's.
  absl::StatusOr<v1::Request> FetchVisible(const std::string& id,
                                           const Caller& caller) const;
  HttpReply GetJob(const std::string& id, const Caller& caller) const;
  HttpReply JobEvents(const std::string& id, const Caller& caller) const;
  HttpReply Download(const std::string& id, const Caller& caller) const;
  HttpReply Submit(const std::string& body, const std::string& idempotency_key,
                   const Caller& caller) const;

  std::shared_ptr<const BackendClient> backend_;
  std::vector<Entry> entries_;
};

// POST /api/dsar/submit's 400 answer for dsard's INVALID_ARGUMENT `error`:
// {"errors": [{type, msg, path, location}]} with dsard's field mapped onto
// the form's (identities[…] → email, type → requestType). Exposed for tests.
nlohmann::json SubmitErrorsForCoordinatorError(const absl::Status& error);

}  // namespace dsar::gateway::compat

#endif  // DSAR_GATEWAY_COMPAT_SEED_ROUTES_H_
