#ifndef DSAR_TESTS_TESTING_OPENDSR_PROCESSOR_H_
#define DSAR_TESTS_TESTING_OPENDSR_PROCESSOR_H_

// A test OpenDSR 2.0 processor on loopback HTTPS (docs/opendsr.md): it
// serves /v1/discovery, /v1/cert.pem, /v1/requests, /v1/requests/{id} and
// /v1/results/{id}, signs every answer with a signing certificate from a
// test CA, and answers asynchronously: a new request is "pending", then
// "in_progress", and "completed" on the status poll after
// polls_before_completion polls (so two requests finish in whichever order
// their poll counts say, not the order they were made). It can fail once
// (a 503 to the first POST), deny (a 400 error object or a "denied"
// status with a reason), tamper with its answers and call back.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tests/testing/test_pki.h"

namespace httplib {
class SSLServer;
}

namespace dsar::testing {

class OpenDsrProcessor {
 public:
  enum class Denial {
    kNone,
    kAtCreation,  // POST /requests answers 400 with an error object.
    kAsStatus,    // The request goes to status "denied" with a reason.
  };

  struct Options {
    std::string domain = "opendsr.processor.test";
    std::vector<std::string> request_types = {"access", "portability",
                                              "erasure"};
    // identity_type values accepted, format "raw".
    std::vector<std::string> identity_types = {"email",
                                               "controller_customer_id"};
    // Status polls answered "pending"/"in_progress" before "completed".
    int polls_before_completion = 1;
    // From the second poll on, a request still working is "in_progress";
    // false: it stays "pending" (which a controller may still cancel).
    bool report_in_progress = true;
    // Called (without the processor's lock) on every status poll of a known
    // request with its id and the poll's number (1, 2, ...), before the
    // answer is made: tests act at a precise point of the protocol.
    std::function<void(const std::string& id, int poll)> on_status_poll;
    // The first POST /requests answers 503 (nothing is created).
    bool fail_first_post = false;
    // How erasure requests are denied, and the reason given.
    Denial deny_erasure = Denial::kNone;
    std::string deny_reason = "legal hold on the subject's invoices";
    // A request is finished by a thread of the processor once its status
    // was first polled (and answered "pending"): completed, or denied as
    // deny_erasure says; then its status_callback_urls are called back.
    // Status polls do not finish it.
    bool complete_in_background = false;
    // CA file that callbacks' HTTPS endpoints must chain to.
    std::string callback_ca_file;
    // When set, clients must present a certificate chaining to this CA
    // (mutual TLS).
    std::string client_ca_file;
    // The subject's records, by identity_value: results of access requests,
    // and the count an erasure reports.
    std::map<std::string, std::vector<nlohmann::json>> records;
  };

  // Starts on 127.0.0.1 (any free port) with a TLS certificate and a
  // signing certificate for options.domain from `pki`, files in `dir`.
  static absl::StatusOr<std::unique_ptr<OpenDsrProcessor>> Start(
      Options options, TestPki& pki, const std::string& dir);
  ~OpenDsrProcessor();

  // "https://127.0.0.1:<port>/v1".
  std::string base_url() const;
  int port() const { return port_; }
  const std::string& signing_cert_pem() const { return signing_.cert_pem; }

  // --- Misbehaviour for tests. ---
  // Answers carry a body changed after signing.
  void TamperWithAnswers(bool tamper);
  // Signs with `other` (a certificate of another domain) from now on,
  // published at /cert.pem too.
  void SignWith(const IssuedCertificate& other);
  // The domain named in X-OpenDSR-Processor-Domain from now on.
  void ClaimDomain(const std::string& domain);

  // --- What happened. Thread-safe. ---
  int posts() const;             // POST /requests received, duplicates too.
  int requests_created() const;  // Distinct requests made.
  std::vector<std::string> request_ids() const;  // In creation order.
  std::vector<std::string> deletes() const;      // DELETE targets.
  std::string status_of(const std::string& id) const;
  // HTTP statuses the controller answered callbacks with, in order (0: no
  // answer).
  std::vector<int> callback_answers() const;
  // The PEM private key answers are signed with.
  std::string signing_key_pem() const;
  // The last POST /requests body received.
  nlohmann::json last_request() const;

 private:
  struct Entry {
    std::string type;
    std::string status = "pending";
    int polls = 0;
    nlohmann::json identities;
    std::vector<std::string> callbacks;
    bool finishing = false;  // Queued for the background thread.
  };
  OpenDsrProcessor() = default;
  void Serve();
  // The background thread of complete_in_background.
  void FinishInBackground();
  // Posts the signed callback of request `id` to each of its URLs.
  // REQUIRES: mu_ not held.
  void CallBack(const std::string& id);
  // Finishes `entry` (completed or denied). REQUIRES: mu_ held.
  void Finish(Entry& entry);
  // The status body of request `id`. REQUIRES: mu_ held.
  nlohmann::json StatusBody(const std::string& id, const Entry& entry) const;
  // Signs `body` as the processor does and sets it on `response`.
  template <typename Response>
  void Answer(Response& response, int status, const nlohmann::json& body);
  std::vector<nlohmann::json> RecordsOf(const nlohmann::json& identities) const;

  Options options_;
  IssuedCertificate tls_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;

  mutable std::mutex mu_;
  IssuedCertificate signing_;              // GUARDED_BY(mu_)
  std::string claimed_domain_;             // GUARDED_BY(mu_)
  bool tamper_ = false;                    // GUARDED_BY(mu_)
  bool failed_once_ = false;               // GUARDED_BY(mu_)
  int posts_ = 0;                          // GUARDED_BY(mu_)
  std::vector<std::string> order_;         // GUARDED_BY(mu_)
  std::map<std::string, Entry> requests_;  // GUARDED_BY(mu_)
  std::vector<std::string> deletes_;       // GUARDED_BY(mu_)
  nlohmann::json last_request_;            // GUARDED_BY(mu_)
  std::vector<int> callback_answers_;      // GUARDED_BY(mu_)
  std::vector<std::string> to_finish_;     // GUARDED_BY(mu_)
  bool stopping_ = false;                  // GUARDED_BY(mu_)
  std::condition_variable finish_cv_;
  std::thread finisher_;
};

}  // namespace dsar::testing

#endif  // DSAR_TESTS_TESTING_OPENDSR_PROCESSOR_H_
