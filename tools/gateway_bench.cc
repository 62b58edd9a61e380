// dsar-gateway-bench: latency and throughput of GET /v1/requests/{id}
// through dsar-gateway (REST, one keep-alive connection) against the same
// call made directly over gRPC (DsarService.GetRequest). Starts nothing: run
// it against a live dsard and gateway (tools/bench-gateway does that).
//
//   dsar-gateway-bench --grpc_addr=127.0.0.1:50051 --http_addr=127.0.0.1:8080
//       [--id=REQUEST_ID] [--token=JWT] [--iterations=5000] [--runs=3]

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/mutex_mode.h"
#include "common/program_usage.h"
#include "dsar/v1/requests.grpc.pb.h"

ABSL_FLAG(std::string, grpc_addr, "127.0.0.1:50051", "dsard's gRPC address.");
ABSL_FLAG(std::string, http_addr, "127.0.0.1:8080",
          "dsar-gateway's HTTP address.");
ABSL_FLAG(std::string, id, "",
          "Request to read; empty: create an ACCESS request for "
          "--email over gRPC first.");
ABSL_FLAG(std::string, email, "person1@example.com",
          "Subject of the request created when --id is empty.");
ABSL_FLAG(std::string, token, "",
          "Bearer token with dsar.read for the gateway (empty: none, for a "
          "gateway run with --insecure_dev).");
ABSL_FLAG(int, iterations, 5000, "Calls per run and protocol.");
ABSL_FLAG(int, warmup, 500, "Calls before each run, not measured.");
ABSL_FLAG(int, runs, 3, "Runs per protocol; medians are reported.");

namespace {

struct RunResult {
  double p50_us = 0;
  double p99_us = 0;
  double per_second = 0;
};

// Times `iterations` sequential calls of `call` (false: failed, abort).
RunResult Measure(int warmup, int iterations,
                  const std::function<bool()>& call) {
  for (int i = 0; i < warmup; ++i) {
    if (!call()) std::exit(1);
  }
  std::vector<double> micros;
  micros.reserve(iterations);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) {
    auto before = std::chrono::steady_clock::now();
    if (!call()) std::exit(1);
    micros.push_back(std::chrono::duration<double, std::micro>(
                         std::chrono::steady_clock::now() - before)
                         .count());
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::sort(micros.begin(), micros.end());
  RunResult result;
  result.p50_us = micros[micros.size() / 2];
  result.p99_us = micros[std::min(micros.size() - 1, micros.size() * 99 / 100)];
  result.per_second = iterations / seconds;
  return result;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

RunResult Medians(const std::vector<RunResult>& runs) {
  std::vector<double> p50, p99, rate;
  for (const RunResult& run : runs) {
    p50.push_back(run.p50_us);
    p99.push_back(run.p99_us);
    rate.push_back(run.per_second);
  }
  return {Median(p50), Median(p99), Median(rate)};
}

}  // namespace

int main(int argc, char** argv) {
  dsar::UseReleaseMutexMode();
  dsar::SetProgramUsage(
      "Benchmarks GET /v1/requests/{id} via dsar-gateway against direct "
      "gRPC.\n"
      "  dsar-gateway-bench --grpc_addr=HOST:PORT --http_addr=HOST:PORT "
      "[--id=ID] [--token=JWT]",
      __FILE__);
  absl::ParseCommandLine(argc, argv);
  const int iterations = std::max(1, absl::GetFlag(FLAGS_iterations));
  const int warmup = std::max(0, absl::GetFlag(FLAGS_warmup));
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));

  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_grpc_addr),
                                     grpc::InsecureChannelCredentials());
  auto stub = dsar::v1::DsarService::NewStub(channel);
  std::string id = absl::GetFlag(FLAGS_id);
  if (id.empty()) {
    dsar::v1::CreateRequestRequest create;
    create.set_type(dsar::v1::ACCESS);
    auto* identity = create.add_identities();
    identity->set_type(dsar::v1::EMAIL);
    identity->set_value(absl::GetFlag(FLAGS_email));
    create.set_idempotency_key("dsar-gateway-bench");
    create.mutable_verified()->set_method("logged_in_session");
    create.mutable_verified()->set_evidence_ref("dsar-gateway-bench");
    dsar::v1::Request created;
    grpc::ClientContext context;
    grpc::Status status = stub->CreateRequest(&context, create, &created);
    if (!status.ok()) {
      std::fprintf(stderr, "CreateRequest: %s\n",
                   status.error_message().c_str());
      return 1;
    }
    id = created.id();
  }

  std::string http_addr = absl::GetFlag(FLAGS_http_addr);
  size_t colon = http_addr.rfind(':');
  int http_port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(http_addr.substr(colon + 1), &http_port)) {
    std::fprintf(stderr, "--http_addr: expected HOST:PORT\n");
    return 1;
  }
  httplib::Client http(http_addr.substr(0, colon), http_port);
  http.set_keep_alive(true);
  http.set_tcp_nodelay(true);
  httplib::Headers headers;
  if (!absl::GetFlag(FLAGS_token).empty()) {
    headers.insert(
        {"Authorization", absl::StrCat("Bearer ", absl::GetFlag(FLAGS_token))});
  }
  const std::string path = absl::StrCat("/v1/requests/", id);

  auto grpc_call = [&] {
    dsar::v1::GetRequestRequest get;
    get.set_id(id);
    dsar::v1::Request request;
    grpc::ClientContext context;
    grpc::Status status = stub->GetRequest(&context, get, &request);
    if (!status.ok()) {
      std::fprintf(stderr, "GetRequest: %s\n", status.error_message().c_str());
      return false;
    }
    return true;
  };
  auto rest_call = [&] {
    httplib::Result result = http.Get(path.c_str(), headers);
    if (!result || result->status != 200) {
      std::fprintf(stderr, "GET %s: %s\n", path.c_str(),
                   result
                       ? absl::StrCat(result->status, " ", result->body).c_str()
                       : httplib::to_string(result.error()).c_str());
      return false;
    }
    return true;
  };

  std::printf("GET /v1/requests/%s: %d runs x %d calls (after %d warm-up)\n",
              id.c_str(), runs, iterations, warmup);
  std::vector<RunResult> grpc_runs, rest_runs;
  for (int run = 1; run <= runs; ++run) {
    grpc_runs.push_back(Measure(warmup, iterations, grpc_call));
    rest_runs.push_back(Measure(warmup, iterations, rest_call));
    std::printf(
        "run %d: gRPC p50 %.1f us p99 %.1f us %.0f/s | REST p50 %.1f us p99 "
        "%.1f us %.0f/s\n",
        run, grpc_runs.back().p50_us, grpc_runs.back().p99_us,
        grpc_runs.back().per_second, rest_runs.back().p50_us,
        rest_runs.back().p99_us, rest_runs.back().per_second);
  }
  RunResult grpc = Medians(grpc_runs);
  RunResult rest = Medians(rest_runs);
  std::printf("\nmedian of %d runs      p50 (us)   p99 (us)   calls/s\n", runs);
  std::printf("direct gRPC          %9.1f  %9.1f  %8.0f\n", grpc.p50_us,
              grpc.p99_us, grpc.per_second);
  std::printf("REST via gateway     %9.1f  %9.1f  %8.0f\n", rest.p50_us,
              rest.p99_us, rest.per_second);
  std::printf("ratio REST/gRPC      %9.2f  %9.2f  %8.2f\n",
              rest.p50_us / grpc.p50_us, rest.p99_us / grpc.p99_us,
              rest.per_second / grpc.per_second);
  return 0;
}
