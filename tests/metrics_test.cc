// Metrics and health of the real programs (docs/operations.md, "Metrics and
// health"): dsard, a worker and the gateway run requests to completion with
// their admin listeners on loopback; Debian's `prometheus` scrapes them
// every second and its query API must show what happened (skipped when
// prometheus is not installed; tools/install-deps installs it). And the
// gateway's /healthz answers while all its request threads wait for a
// frozen dsard.

#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The prometheus binary on PATH (or Debian's path), or "".
std::string FindPrometheus() {
  const char* path = std::getenv("PATH");
  std::vector<std::string> dirs =
      absl::StrSplit(path == nullptr ? "" : path, ':', absl::SkipEmpty());
  dirs.push_back("/usr/bin");
  for (const std::string& dir : dirs) {
    std::string candidate = absl::StrCat(dir, "/prometheus");
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// A loopback port nothing listens on right now.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

struct HttpAnswer {
  int status = 0;  // 0: no answer.
  std::string body;
};

HttpAnswer HttpGet(int port, const std::string& path,
                   const httplib::Params& params = {}) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(5, 0);
  httplib::Result result = client.Get(path, params, httplib::Headers{});
  if (!result) return {};
  return {result->status, result->body};
}

// An instant query's result: label value of `by` (or "" for one series
// without it) -> value. An error when Prometheus does not answer yet or
// refuses the query.
absl::StatusOr<std::map<std::string, double>> PromQuery(
    int port, const std::string& query, const std::string& by = "") {
  HttpAnswer answer = HttpGet(port, "/api/v1/query", {{"query", query}});
  if (answer.status != 200) {
    return absl::UnavailableError(absl::StrCat(
        "query ", query, ": HTTP ", answer.status, " ", answer.body));
  }
  nlohmann::json parsed = nlohmann::json::parse(answer.body, nullptr, false);
  if (parsed.is_discarded() || parsed.value("status", "") != "success") {
    return absl::InternalError(
        absl::StrCat("query ", query, ": ", answer.body));
  }
  std::map<std::string, double> values;
  for (const nlohmann::json& sample : parsed["data"]["result"]) {
    std::string key =
        by.empty() ? "" : sample["metric"].value(by, std::string("?"));
    values[key] = std::stod(sample["value"][1].get<std::string>());
  }
  return values;
}

class MetricsTest : public ::testing::Test {
 protected:
  MetricsTest() : dir_("dsar-metrics") {}

  void SetUp() override {
    prometheus_binary_ = FindPrometheus();
    absl::StatusOr<std::string> inventory =
        GenerateSampleStores(dir_.Join("stores"), 20);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = *inventory;
  }

  // Waits for a program's --admin_port_file.
  int AdminPort(const std::string& name, Process* process) {
    absl::StatusOr<int> port =
        WaitForPortFile(dir_.Join(name + ".admin"), absl::Seconds(30), process);
    EXPECT_TRUE(port.ok()) << name << ": " << port.status() << "\n"
                           << ReadFileOrEmpty(process->log_path());
    return port.value_or(0);
  }

  std::vector<std::string> AdminFlags(const std::string& name) {
    return {"--admin_listen=127.0.0.1:0",
            absl::StrCat("--admin_port_file=", dir_.Join(name + ".admin")),
            "--log_format=json"};
  }

  // Starts the gateway (no authentication: --insecure_dev, loopback) in
  // front of dsard on `dsard_port` with `threads` request threads; returns
  // its HTTP port (0 on failure).
  int StartGateway(int dsard_port, int threads) {
    std::vector<std::string> args = {
        "--insecure_dev",
        "--listen=127.0.0.1:0",
        "--port_file=" + dir_.Join("gateway.port"),
        absl::StrCat("--coordinator=127.0.0.1:", dsard_port),
        absl::StrCat("--threads=", threads),
        "--backend_timeout_ms=20000"};
    for (const std::string& flag : AdminFlags("gateway")) args.push_back(flag);
    absl::StatusOr<std::unique_ptr<Process>> process =
        Process::Start(DSAR_TEST_GATEWAY_PATH, args, dir_.Join("gateway.log"));
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return 0;
    gateway_ = std::move(*process);
    absl::StatusOr<int> port = WaitForPortFile(
        dir_.Join("gateway.port"), absl::Seconds(30), gateway_.get());
    EXPECT_TRUE(port.ok()) << port.status() << "\n"
                           << ReadFileOrEmpty(dir_.Join("gateway.log"));
    return port.value_or(0);
  }

  // Starts prometheus scraping `targets` (job name -> admin port) every
  // second; returns its HTTP port.
  int StartPrometheus(const std::map<std::string, int>& targets) {
    std::string config =
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\nscrape_configs:\n";
    for (const auto& [job, port] : targets) {
      absl::StrAppend(
          &config, "  - job_name: ", job,
          "\n    static_configs:\n      - targets: ['127.0.0.1:", port, "']\n");
    }
    EXPECT_TRUE(WriteFileAtomically(dir_.Join("prometheus.yml"), config).ok());
    const int port = FreePort();
    absl::StatusOr<std::unique_ptr<Process>> process = Process::Start(
        prometheus_binary_,
        {absl::StrCat("--config.file=", dir_.Join("prometheus.yml")),
         absl::StrCat("--storage.tsdb.path=", dir_.Join("tsdb")),
         absl::StrCat("--web.listen-address=127.0.0.1:", port)},
        dir_.Join("prometheus.log"));
    EXPECT_TRUE(process.ok()) << process.status();
    if (process.ok()) prometheus_ = std::move(*process);
    return port;
  }

  TempDir dir_;
  std::string prometheus_binary_;
  std::string inventory_;
  std::unique_ptr<Process> gateway_;
  std::unique_ptr<Process> prometheus_;
  std::string last_id_;
};

TEST_F(MetricsTest, PrometheusScrapesDsardAWorkerAndTheGateway) {
  if (prometheus_binary_.empty()) {
    GTEST_SKIP() << "Debian's prometheus is not installed "
                    "(tools/install-deps installs package prometheus)";
  }
  DsardOptions dsard_options;
  dsard_options.data_dir = dir_.Join("data");
  dsard_options.inventory = inventory_;
  dsard_options.extra_args = AdminFlags("dsard");
  absl::StatusOr<RunningDsard> dsard = StartDsard(dsard_options, dir_.path());
  ASSERT_TRUE(dsard.ok()) << dsard.status();
  const int dsard_admin = AdminPort("dsard", dsard->process.get());

  WorkerOptions worker_options;
  worker_options.coordinator_port = dsard->port;
  worker_options.inventory = inventory_;
  worker_options.worker_id = "metrics-worker";
  worker_options.extra_args = AdminFlags("worker");
  absl::StatusOr<std::unique_ptr<Process>> worker =
      StartWorker(worker_options, dir_.path());
  ASSERT_TRUE(worker.ok()) << worker.status();
  const int worker_admin = AdminPort("worker", worker->get());
  ASSERT_GT(dsard_admin, 0);
  ASSERT_GT(worker_admin, 0);
  const int gateway_port = StartGateway(dsard->port, 4);
  ASSERT_GT(gateway_port, 0);
  const int gateway_admin = AdminPort("gateway", gateway_.get());
  ASSERT_GT(gateway_admin, 0);

  // Health answers on the admin port, apart from the gRPC port.
  EXPECT_EQ(HttpGet(dsard_admin, "/healthz").status, 200);
  EXPECT_EQ(HttpGet(dsard_admin, "/readyz").status, 200);
  EXPECT_EQ(HttpGet(worker_admin, "/healthz").status, 200);

  auto stub = v1::DsarService::NewStub(LoopbackChannel(dsard->port));
  const std::vector<std::string> emails = {"person1@example.com",
                                           "person2@example.com"};
  for (const std::string& email : emails) {
    v1::Request created;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    ASSERT_TRUE(stub->CreateRequest(&context,
                                    RequestForEmail(v1::ACCESS, email, ""),
                                    &created)
                    .ok());
    absl::StatusOr<v1::Request> done =
        WaitUntilTerminal(*stub, created.id(), absl::Seconds(60));
    ASSERT_TRUE(done.ok()) << done.status();
    ASSERT_EQ(done->status(), v1::COMPLETED);
    // Read back through the gateway too (its route template is a label).
    EXPECT_EQ(HttpGet(gateway_port, "/v1/requests/" + created.id()).status,
              200);
    last_id_ = created.id();
  }
  // A worker connected to dsard is ready (polled: the channel may still be
  // settling right after start).
  const absl::Time ready_deadline = absl::Now() + absl::Seconds(30);
  while (HttpGet(worker_admin, "/readyz").status != 200 &&
         absl::Now() < ready_deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(HttpGet(worker_admin, "/readyz").status, 200);

  EXPECT_EQ(HttpGet(gateway_admin, "/healthz").status, 200);
  EXPECT_EQ(HttpGet(gateway_admin, "/readyz").status, 200);
  const int prometheus_port =
      StartPrometheus({{"dsard", dsard_admin},
                       {"dsar-worker", worker_admin},
                       {"dsar-gateway", gateway_admin}});
  ASSERT_NE(prometheus_, nullptr);
  // Poll the query API until the scrapes show both completions and every
  // job up (Prometheus starts, then scrapes once a second).
  const std::string completed =
      "sum(dsar_requests_finished_total{outcome=\"COMPLETED\"})";
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  std::string last;
  bool seen = false;
  while (absl::Now() < deadline && prometheus_->Running()) {
    absl::StatusOr<std::map<std::string, double>> finished =
        PromQuery(prometheus_port, completed);
    absl::StatusOr<std::map<std::string, double>> up =
        PromQuery(prometheus_port, "up", "job");
    last = absl::StrCat(finished.ok() ? "" : finished.status().ToString(),
                        up.ok() ? "" : up.status().ToString());
    if (finished.ok() && up.ok() && finished->count("") != 0 &&
        (*finished)[""] == emails.size() && up->size() == 3 &&
        (*up)["dsard"] == 1 && (*up)["dsar-worker"] == 1 &&
        (*up)["dsar-gateway"] == 1) {
      seen = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  ASSERT_TRUE(seen) << "prometheus never showed " << emails.size()
                    << " completed requests with every job up; last: " << last
                    << "\n"
                    << ReadFileOrEmpty(dir_.Join("prometheus.log"));

  // More queries over the scraped series.
  absl::StatusOr<std::map<std::string, double>> creates =
      PromQuery(prometheus_port,
                "sum(dsar_grpc_server_handling_seconds_count{method="
                "\"CreateRequest\",code=\"OK\"})");
  ASSERT_TRUE(creates.ok()) << creates.status();
  EXPECT_EQ((*creates)[""], emails.size());
  absl::StatusOr<std::map<std::string, double>> tasks = PromQuery(
      prometheus_port,
      "sum by (operation) (dsar_worker_tasks_total{outcome=\"completed\"})",
      "operation");
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  EXPECT_GT((*tasks)["export"], 0);
  absl::StatusOr<std::map<std::string, double>> fsyncs =
      PromQuery(prometheus_port, "dsar_fsyncs_total");
  ASSERT_TRUE(fsyncs.ok()) << fsyncs.status();
  EXPECT_GT((*fsyncs)[""], 0);
  // The gateway's series name the route template, never the request id.
  absl::StatusOr<std::map<std::string, double>> reads = PromQuery(
      prometheus_port,
      "sum by (route) (dsar_http_requests_total{method=\"GET\",code=\"200\"})",
      "route");
  ASSERT_TRUE(reads.ok()) << reads.status();
  EXPECT_EQ((*reads)["/v1/requests/{id}"], emails.size());
  absl::StatusOr<std::map<std::string, double>> backend = PromQuery(
      prometheus_port,
      "sum(dsar_gateway_backend_seconds_count{method=\"GetRequest\"})");
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ((*backend)[""], emails.size());
  const std::string gateway_metrics = HttpGet(gateway_admin, "/metrics").body;
  EXPECT_THAT(gateway_metrics, HasSubstr("dsar_http_request_duration_seconds"));
  EXPECT_THAT(gateway_metrics, Not(HasSubstr(last_id_)));
  absl::StatusOr<std::map<std::string, double>> live = PromQuery(
      prometheus_port, "sum(dsar_requests)");  // Both finished: none live.
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->count("") ? (*live)[""] : 0, 0);

  // JSON logs: every line one object (the gateway's start-up lines too),
  // never a subject's email.
  for (const std::string& log : {dsard->process->log_path(),
                                 (*worker)->log_path(), gateway_->log_path()}) {
    std::string text = ReadFileOrEmpty(log);
    for (const std::string& email : emails) {
      EXPECT_THAT(text, Not(HasSubstr(email))) << log;
    }
    for (absl::string_view line :
         absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
      EXPECT_FALSE(parsed.is_discarded()) << log << ": " << line;
      if (!parsed.is_discarded()) {
        EXPECT_TRUE(parsed.contains("time") && parsed.contains("level") &&
                    parsed.contains("message"))
            << line;
      }
    }
  }
}

// Reported: the gateway's /healthz shared its request threads, so with dsard
// frozen and calls in flight it took seconds to answer. The admin listener
// has threads of its own.
TEST_F(MetricsTest, GatewayHealthAnswersWhileEveryRequestThreadWaits) {
  DsardOptions dsard_options;
  dsard_options.data_dir = dir_.Join("data");
  dsard_options.inventory = inventory_;
  dsard_options.extra_args = AdminFlags("dsard");
  absl::StatusOr<RunningDsard> dsard = StartDsard(dsard_options, dir_.path());
  ASSERT_TRUE(dsard.ok()) << dsard.status();
  const int threads = 4;
  const int gateway_port = StartGateway(dsard->port, threads);
  ASSERT_GT(gateway_port, 0);
  const int gateway_admin = AdminPort("gateway", gateway_.get());
  ASSERT_GT(gateway_admin, 0);
  // Connected before dsard freezes.
  const absl::Time ready_deadline = absl::Now() + absl::Seconds(30);
  while (HttpGet(gateway_admin, "/readyz").status != 200 &&
         absl::Now() < ready_deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(HttpGet(gateway_admin, "/readyz").status, 200);

  ASSERT_EQ(::kill(dsard->process->pid(), SIGSTOP), 0);
  // Twice as many calls as request threads: each waits for dsard (20 s).
  std::vector<std::future<HttpAnswer>> calls;
  for (int i = 0; i < 2 * threads; ++i) {
    calls.push_back(std::async(std::launch::async, [gateway_port] {
      httplib::Client client("127.0.0.1", gateway_port);
      client.set_read_timeout(60, 0);
      httplib::Result result = client.Get("/v1/requests/dsr_none");
      return result ? HttpAnswer{result->status, result->body} : HttpAnswer{};
    }));
  }
  // Every request thread is taken once the main port's /healthz gets no
  // answer within half a second.
  bool saturated = false;
  const absl::Time busy_deadline = absl::Now() + absl::Seconds(20);
  while (!saturated && absl::Now() < busy_deadline) {
    httplib::Client client("127.0.0.1", gateway_port);
    client.set_read_timeout(0, 500000);
    saturated = !client.Get("/healthz");
  }
  EXPECT_TRUE(saturated) << "the request threads never all waited";

  const absl::Time start = absl::Now();
  HttpAnswer health = HttpGet(gateway_admin, "/healthz");
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(health.status, 200);
  EXPECT_LT(took, absl::Seconds(1)) << "admin /healthz took " << took;
  EXPECT_EQ(HttpGet(gateway_admin, "/metrics").status, 200);
  // The calls were still waiting for dsard while it answered.
  EXPECT_EQ(calls[0].wait_for(std::chrono::seconds(0)),
            std::future_status::timeout);

  ASSERT_EQ(::kill(dsard->process->pid(), SIGCONT), 0);
  for (auto& call : calls) call.wait();
}

}  // namespace
}  // namespace dsar::testing
