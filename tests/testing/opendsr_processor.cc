#include "tests/testing/opendsr_processor.h"

#include <httplib.h>  // CPPHTTPLIB_* come from its pkg-config file.

#include "absl/strings/str_cat.h"
#include "opendsr/signature.h"

namespace dsar::testing {

using nlohmann::json;

absl::StatusOr<std::unique_ptr<OpenDsrProcessor>> OpenDsrProcessor::Start(
    Options options, TestPki& pki, const std::string& dir) {
  std::unique_ptr<OpenDsrProcessor> processor(new OpenDsrProcessor());
  const std::string stem = options.domain;
  absl::StatusOr<IssuedCertificate> tls =
      pki.Issue(stem + "-tls", {options.domain, "localhost"});
  if (!tls.ok()) return tls.status();
  absl::StatusOr<IssuedCertificate> signing =
      pki.Issue(stem + "-signing", {options.domain});
  if (!signing.ok()) return signing.status();
  processor->tls_ = *tls;
  processor->signing_ = *signing;
  processor->claimed_domain_ = options.domain;
  processor->options_ = std::move(options);
  processor->server_ = std::make_unique<httplib::SSLServer>(
      processor->tls_.cert_file.c_str(), processor->tls_.key_file.c_str(),
      processor->options_.client_ca_file.empty()
          ? nullptr
          : processor->options_.client_ca_file.c_str());
  if (!processor->server_->is_valid()) {
    return absl::InternalError("test processor: TLS server setup failed");
  }
  processor->Serve();
  processor->port_ = processor->server_->bind_to_any_port("127.0.0.1");
  if (processor->port_ <= 0) {
    return absl::InternalError("test processor: cannot bind 127.0.0.1");
  }
  OpenDsrProcessor* raw = processor.get();
  processor->thread_ =
      std::thread([raw] { raw->server_->listen_after_bind(); });
  // Connections queue on the bound socket meanwhile, but stop() ends only
  // a running accept loop: wait for it so that the destructor cannot miss it.
  while (!processor->server_->is_running()) std::this_thread::yield();
  if (processor->options_.complete_in_background) {
    processor->finisher_ = std::thread([raw] { raw->FinishInBackground(); });
  }
  return processor;
}

OpenDsrProcessor::~OpenDsrProcessor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  finish_cv_.notify_all();
  if (finisher_.joinable()) finisher_.join();
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::vector<int> OpenDsrProcessor::callback_answers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return callback_answers_;
}

std::string OpenDsrProcessor::signing_key_pem() const {
  std::lock_guard<std::mutex> lock(mu_);
  return signing_.key_pem;
}

void OpenDsrProcessor::Finish(Entry& entry) {
  entry.status =
      entry.type == "erasure" && options_.deny_erasure == Denial::kAsStatus
          ? "denied"
          : "completed";
}

json OpenDsrProcessor::StatusBody(const std::string& id,
                                  const Entry& entry) const {
  json body = {{"controller_id", "dsar-test-controller"},
               {"expected_completion_time", "2030-01-01T00:00:00Z"},
               {"subject_request_id", id},
               {"request_status", entry.status},
               {"api_version", "2.0"}};
  if (entry.status == "completed") {
    body["results_count"] = RecordsOf(entry.identities).size();
    if (entry.type != "erasure") {
      body["results_url"] = absl::StrCat(base_url(), "/results/", id);
    }
  }
  if (entry.status == "denied") body["reason"] = options_.deny_reason;
  return body;
}

void OpenDsrProcessor::FinishInBackground() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    finish_cv_.wait(lock, [this] { return stopping_ || !to_finish_.empty(); });
    if (stopping_) return;
    std::string id = to_finish_.front();
    to_finish_.erase(to_finish_.begin());
    auto it = requests_.find(id);
    if (it == requests_.end() || it->second.status != "pending") continue;
    Finish(it->second);
    lock.unlock();
    CallBack(id);
    lock.lock();
  }
}

void OpenDsrProcessor::CallBack(const std::string& id) {
  std::vector<std::string> urls;
  json status;
  std::string key;
  std::string domain;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Entry& entry = requests_.at(id);
    urls = entry.callbacks;
    status = StatusBody(id, entry);
    key = signing_.key_pem;
    domain = claimed_domain_;
  }
  for (const std::string& url : urls) {
    // https://host:port/path
    size_t host_start = url.find("://") + 3;
    size_t path_start = url.find('/', host_start);
    std::string authority = url.substr(host_start, path_start - host_start);
    size_t colon = authority.rfind(':');
    httplib::SSLClient client(authority.substr(0, colon),
                              std::stoi(authority.substr(colon + 1)));
    client.set_ca_cert_path(options_.callback_ca_file.c_str());
    client.enable_server_certificate_verification(true);
    json body = status;
    body["status_callback_url"] = url;
    const std::string text = body.dump();
    absl::StatusOr<std::string> signature = opendsr::SignBody(text, key);
    httplib::Headers headers = {
        {opendsr::kSignatureHeader, signature.ok() ? *signature : ""},
        {opendsr::kDomainHeader, domain}};
    // Section 8.5: at least once, retried while it fails (a processor's
    // own back-off; the controller's answer is what tests look at).
    int answer = 0;
    for (int attempt = 0; attempt < 50; ++attempt) {
      httplib::Result result = client.Post(url.substr(path_start).c_str(),
                                           headers, text, "application/json");
      answer = result ? result->status : 0;
      if (answer != 0 && answer != 503) break;
      std::unique_lock<std::mutex> lock(mu_);
      if (finish_cv_.wait_for(lock, std::chrono::milliseconds(200),
                              [this] { return stopping_; })) {
        break;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    callback_answers_.push_back(answer);
  }
}

std::string OpenDsrProcessor::base_url() const {
  return absl::StrCat("https://127.0.0.1:", port_, "/v1");
}

void OpenDsrProcessor::TamperWithAnswers(bool tamper) {
  std::lock_guard<std::mutex> lock(mu_);
  tamper_ = tamper;
}

void OpenDsrProcessor::SignWith(const IssuedCertificate& other) {
  std::lock_guard<std::mutex> lock(mu_);
  signing_ = other;
}

void OpenDsrProcessor::ClaimDomain(const std::string& domain) {
  std::lock_guard<std::mutex> lock(mu_);
  claimed_domain_ = domain;
}

int OpenDsrProcessor::posts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return posts_;
}

int OpenDsrProcessor::requests_created() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(requests_.size());
}

std::vector<std::string> OpenDsrProcessor::request_ids() const {
  std::lock_guard<std::mutex> lock(mu_);
  return order_;
}

std::vector<std::string> OpenDsrProcessor::deletes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return deletes_;
}

std::string OpenDsrProcessor::status_of(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = requests_.find(id);
  return it == requests_.end() ? "" : it->second.status;
}

json OpenDsrProcessor::last_request() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_request_;
}

template <typename Response>
void OpenDsrProcessor::Answer(Response& response, int status,
                              const json& body) {
  // REQUIRES: mu_ held.
  std::string text = body.dump();
  absl::StatusOr<std::string> signature =
      opendsr::SignBody(text, signing_.key_pem);
  if (tamper_) text.insert(text.size() - 1, " ");
  response.status = status;
  response.set_header(opendsr::kSignatureHeader,
                      signature.ok() ? *signature : "");
  response.set_header(opendsr::kDomainHeader, claimed_domain_);
  response.set_content(text, "application/json");
}

std::vector<json> OpenDsrProcessor::RecordsOf(const json& identities) const {
  std::vector<json> found;
  for (const json& identity : identities) {
    auto it = options_.records.find(identity.value("identity_value", ""));
    if (it == options_.records.end()) continue;
    for (const json& record : it->second) {
      if (std::find(found.begin(), found.end(), record) == found.end()) {
        found.push_back(record);
      }
    }
  }
  return found;
}

void OpenDsrProcessor::Serve() {
  server_->Get("/v1/discovery", [this](const httplib::Request&,
                                       httplib::Response& response) {
    std::lock_guard<std::mutex> lock(mu_);
    json identities = json::array();
    for (const std::string& type : options_.identity_types) {
      identities.push_back(
          {{"identity_type", type}, {"identity_format", "raw"}});
    }
    Answer(response, 200,
           {{"api_version", "2.0"},
            {"supported_identities", identities},
            {"supported_subject_request_types", options_.request_types},
            {"processor_certificate", base_url() + "/cert.pem"}});
  });
  server_->Get("/v1/cert.pem", [this](const httplib::Request&,
                                      httplib::Response& response) {
    std::lock_guard<std::mutex> lock(mu_);
    response.set_content(signing_.cert_pem, "application/x-pem-file");
  });
  server_->Post("/v1/requests", [this](const httplib::Request& request,
                                       httplib::Response& response) {
    std::lock_guard<std::mutex> lock(mu_);
    ++posts_;
    if (options_.fail_first_post && !failed_once_) {
      failed_once_ = true;
      response.status = 503;
      response.set_content("busy", "text/plain");
      return;
    }
    json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    auto error = [&](int code, const std::string& message,
                     const std::string& reason) {
      Answer(response, code,
             {{"error",
               {{"code", code},
                {"message", message},
                {"errors", json::array({{{"domain", "Validation"},
                                         {"reason", reason},
                                         {"message", message}}})}}}});
    };
    if (!body.is_object() || !body.contains("subject_request_id") ||
        !body.contains("subject_request_type") ||
        !body.contains("submitted_time") || !body.contains("regulation")) {
      error(400,
            "subject_request_id, subject_request_type, submitted_time "
            "and regulation are required",
            "IllegalArgumentException");
      return;
    }
    last_request_ = body;
    const std::string id = body["subject_request_id"].get<std::string>();
    if (requests_.count(id) > 0) {
      error(409, "a request with this subject_request_id exists",
            "DuplicateRequest");
      return;
    }
    const std::string type = body["subject_request_type"].get<std::string>();
    if (type == "erasure" && options_.deny_erasure == Denial::kAtCreation) {
      Answer(
          response, 400,
          {{"error",
            {{"code", 400},
             {"message", options_.deny_reason},
             {"errors", json::array({{{"domain", "Fulfillment"},
                                      {"reason", "Denied"},
                                      {"message", options_.deny_reason}}})}}}});
      return;
    }
    Entry entry;
    entry.type = type;
    entry.identities = body.value("subject_identities", json::array());
    if (body.contains("status_callback_urls")) {
      entry.callbacks =
          body["status_callback_urls"].get<std::vector<std::string>>();
    }
    requests_[id] = std::move(entry);
    order_.push_back(id);
    Answer(response, 201,
           {{"controller_id", "dsar-test-controller"},
            {"expected_completion_time", "2030-01-01T00:00:00Z"},
            {"received_time", "2026-01-01T00:00:00Z"},
            {"encoded_request", "(not kept)"},
            {"subject_request_id", id}});
  });
  server_->Get(
      R"(/v1/requests/([0-9a-f-]+))",
      [this](const httplib::Request& request, httplib::Response& response) {
        const std::string id = request.matches[1];
        if (options_.on_status_poll) {
          int poll = 0;
          {
            std::lock_guard<std::mutex> lock(mu_);
            auto it = requests_.find(id);
            if (it != requests_.end()) poll = it->second.polls + 1;
          }
          if (poll > 0) options_.on_status_poll(id, poll);
        }
        std::lock_guard<std::mutex> lock(mu_);
        auto it = requests_.find(id);
        if (it == requests_.end()) {
          Answer(response, 404,
                 {{"error", {{"code", 404}, {"message", "no such request"}}}});
          return;
        }
        Entry& entry = it->second;
        if (!options_.complete_in_background &&
            (entry.status == "pending" || entry.status == "in_progress")) {
          ++entry.polls;
          if (entry.polls > options_.polls_before_completion) {
            Finish(entry);
          } else if (entry.polls > 1 && options_.report_in_progress) {
            entry.status = "in_progress";
          }
        }
        json body = StatusBody(id, entry);
        if (options_.complete_in_background && entry.status == "pending" &&
            !entry.finishing) {
          // Finished once the controller has seen it pending, so that only
          // the callback can tell it that it is done.
          entry.finishing = true;
          to_finish_.push_back(id);
          finish_cv_.notify_all();
        }
        Answer(response, 200, body);
      });
  server_->Delete(
      R"(/v1/requests/([0-9a-f-]+))",
      [this](const httplib::Request& request, httplib::Response& response) {
        std::lock_guard<std::mutex> lock(mu_);
        const std::string id = request.matches[1];
        deletes_.push_back(id);
        auto it = requests_.find(id);
        if (it == requests_.end() || it->second.status != "pending") {
          Answer(response, 400,
                 {{"error",
                   {{"code", 400},
                    {"message",
                     "only a pending request can be "
                     "cancelled"}}}});
          return;
        }
        it->second.status = "cancelled";
        Answer(response, 202,
               {{"controller_id", "dsar-test-controller"},
                {"subject_request_id", id},
                {"received_time", "2026-01-01T00:00:00Z"},
                {"api_version", "2.0"}});
      });
  server_->Get(
      R"(/v1/results/([0-9a-f-]+))",
      [this](const httplib::Request& request, httplib::Response& response) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = requests_.find(request.matches[1]);
        if (it == requests_.end() || it->second.status != "completed") {
          response.status = 404;
          return;
        }
        Answer(response, 200, RecordsOf(it->second.identities));
      });
}

}  // namespace dsar::testing
