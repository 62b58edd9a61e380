#ifndef DSAR_GATEWAY_OPENDSR_CALLBACK_ROUTE_H_
#define DSAR_GATEWAY_OPENDSR_CALLBACK_ROUTE_H_

// POST /opendsr/v1/callbacks: OpenDSR 2.0 status callbacks from processors
// (specification section 8.6-8.8, security_guidelines.md "Callback
// validation"; docs/opendsr.md). The route carries its own credential, the
// processor's signature, so the gateway asks for no token. Checks, in the
// guidelines' order, answering:
//   401  X-OpenDSR-Processor-Domain is not the processor_domain of an
//        opendsr store in the inventory (the allowlist), or the processor's
//        signing certificate (from its /discovery) does not chain to the
//        store's signing_ca or is not issued to that domain;
//   400  the X-OpenDSR-Signature does not verify over the raw body (checked
//        before the body is parsed), or the body is not a JSON callback;
//   403  its status_callback_url is not the one this store sends (the
//        callback was meant for another controller endpoint);
//   503  the processor's discovery or dsard cannot be reached now (the
//        processor retries, section 8.5);
//   202  accepted: forwarded to dsard, which records it on the task it
//        concerns (a callback about no task in progress is accepted too,
//        and dropped: a late or repeated callback).
// A certificate is cached per domain; a signature that fails against a
// cached certificate is checked once more against a freshly fetched one
// (guidelines 2.v: a rotated certificate), at most once a minute per domain
// so that bad callbacks cannot make the gateway hammer a processor.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "dsar/v1/opendsr.pb.h"
#include "gateway/route_provider.h"
#include "inventory/inventory.h"
#include "opendsr/signature.h"

namespace dsar::gateway::opendsr {

inline constexpr char kCallbackPath[] = "/opendsr/v1/callbacks";

class CallbackRoute : public RouteProvider {
 public:
  // Hands a checked callback to dsard: OK, or its error (NOT_FOUND: no
  // task has that processor request).
  using Forward =
      std::function<absl::Status(const v1::RecordProcessorStatusRequest&)>;

  // The allowlist and trust come from the opendsr stores of `inventory`.
  CallbackRoute(std::shared_ptr<const Inventory> inventory, Forward forward);

  std::optional<Match> Find(const std::string& method,
                            const std::string& path) const override;
  HttpReply Serve(const Match& match, const HttpRequest& request,
                  const Caller& caller) const override;

 private:
  // The store's checked signing certificate, from the cache or its
  // discovery (`refresh`: ignore the cache).
  absl::StatusOr<dsar::opendsr::ProcessorCertificate> CertificateFor(
      const StoreSpec& store, bool refresh) const;

  std::shared_ptr<const Inventory> inventory_;
  Forward forward_;
  mutable std::mutex mu_;
  // By lowercase domain.
  mutable std::map<std::string, dsar::opendsr::ProcessorCertificate>
      certificates_;                                      // GUARDED_BY(mu_)
  mutable std::map<std::string, absl::Time> fetched_at_;  // GUARDED_BY(mu_)
};

}  // namespace dsar::gateway::opendsr

#endif  // DSAR_GATEWAY_OPENDSR_CALLBACK_ROUTE_H_
