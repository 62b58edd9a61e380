// dsarctl run as a process against a live dsard and a worker on the sample
// stores: the generic reflection commands, every domain command with each
// output format, exit codes, config, help and completion.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/security/server_credentials.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "dsar/v1/admin.grpc.pb.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

extern char** environ;

namespace dsar::testing {
namespace {

using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

struct Ctl {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::ostream& operator<<(std::ostream& os, const Ctl& run) {
  return os << "exit " << run.code << "\n--- stdout\n"
            << run.out << "--- stderr\n"
            << run.err;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// Runs dsarctl with `args`, `input` on stdin and the environment changed by
// `env` (an empty value removes the variable); stdout and stderr are kept
// apart. Kills it after `timeout`.
Ctl RunCtl(const TempDir& dir, const std::vector<std::string>& args,
           const std::string& input = "",
           const std::map<std::string, std::string>& env = {},
           absl::Duration timeout = absl::Seconds(60)) {
  static int runs = 0;
  const std::string base = dir.Join(absl::StrCat("ctl-", ++runs));
  WriteText(base + ".in", input);
  std::map<std::string, std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text = *entry;
    size_t equals = text.find('=');
    if (equals != std::string::npos) {
      environment[text.substr(0, equals)] = text.substr(equals + 1);
    }
  }
  // No operator's config or address leaks into the test.
  environment["HOME"] = dir.path();
  environment.erase("XDG_CONFIG_HOME");
  environment.erase("DSARCTL_CONFIG");
  environment.erase("DSAR_ADDR");
  for (const auto& [key, value] : env) {
    if (value.empty()) {
      environment.erase(key);
    } else {
      environment[key] = value;
    }
  }
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : environment) {
    env_strings.push_back(absl::StrCat(key, "=", value));
  }
  std::vector<char*> envp;
  for (std::string& text : env_strings) envp.push_back(text.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = {DsarctlPath()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& text : argv_strings) argv.push_back(text.data());
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    int in = open((base + ".in").c_str(), O_RDONLY);
    int out = open((base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open((base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  Ctl run;
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "dsarctl timed out: " << absl::StrJoin(args, " ");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.out = ReadFileOrEmpty(base + ".out");
  run.err = ReadFileOrEmpty(base + ".err");
  return run;
}

nlohmann::json ParseJson(const std::string& text) {
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// Commands that need no server.
class DsarctlOfflineTest : public ::testing::Test {
 protected:
  DsarctlOfflineTest() : dir_("dsarctl-offline") {}
  Ctl Run(const std::vector<std::string>& args, const std::string& input = "",
          const std::map<std::string, std::string>& env = {}) {
    return RunCtl(dir_, args, input, env);
  }
  TempDir dir_;
};

TEST_F(DsarctlOfflineTest, HelpForEveryCommandWithAnExample) {
  Ctl main_help = Run({"--help"});
  EXPECT_EQ(main_help.code, 0) << main_help;
  for (const char* command :
       {"ls", "describe", "call", "submit", "get", "list", "watch", "events",
        "cancel", "retry", "workers", "audit", "completion"}) {
    EXPECT_THAT(main_help.out, HasSubstr(absl::StrCat("  ", command)))
        << command;
  }
  for (std::string command : {"ls",
                              "describe",
                              "call",
                              "submit",
                              "get",
                              "list",
                              "watch",
                              "events",
                              "cancel",
                              "retry",
                              "extend",
                              "verify",
                              "pause",
                              "resume",
                              "workers",
                              "audit checkpoint",
                              "audit events",
                              "audit prove",
                              "audit verify",
                              "completion",
                              "help",
                              "download",
                              "revoke-downloads"}) {
    std::vector<std::string> args = absl::StrSplit(command, ' ');
    args.push_back("--help");
    Ctl help = Run(args);
    EXPECT_EQ(help.code, 0) << command << "\n" << help;
    EXPECT_THAT(help.out, HasSubstr(absl::StrCat("usage: dsarctl ", command)))
        << help;
    EXPECT_THAT(help.out, HasSubstr("Examples:\n  ")) << help;
    EXPECT_THAT(help.out, HasSubstr(absl::StrCat("dsarctl ", command)));
    // "help <command>" says the same.
    std::vector<std::string> via_help = absl::StrSplit(command, ' ');
    via_help.insert(via_help.begin(), "help");
    EXPECT_EQ(Run(via_help).out, help.out) << command;
  }
}

TEST_F(DsarctlOfflineTest, UsageErrorsExitTwo) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "a command is required"},
           {{"frobnicate"}, "unknown command \"frobnicate\""},
           {{"get"}, "get: takes one request id"},
           {{"get", "a", "b"}, "get: takes one request id"},
           {{"list", "--bogus"}, "unknown flag --bogus"},
           {{"get", "x", "--all"}, "--all is not a flag of \"get\""},
           {{"list", "--status=SLEEPING"}, "unknown status \"SLEEPING\""},
           {{"list", "--overdue", "--due-within=7d"}, "exclude each other"},
           {{"list", "--due-within=soon"}, "not a positive duration"},
           {{"extend", "x", "--by=1"}, "--reason is required"},
           {{"pause", "x"}, "--reason is required"},
           {{"verify", "x"}, "--code is required"},
           {{"submit", "--type=ACCESS", "--email=a@b.c", "--evidence-ref=1"},
            "--evidence-ref goes with --verified-by"},
           {{"list", "--created-since=yesterday"}, "neither an RFC 3339"},
           {{"list", "--page-size"}, "--page-size needs a value"},
           {{"submit", "--email=a@b.c"}, "--type is required"},
           {{"submit", "--type=ACCESS"}, "at least one identity"},
           {{"audit"}, "a subcommand is required (checkpoint, events"},
           {{"audit", "bogus"}, "unknown subcommand \"bogus\""},
           {{"-o", "xml", "list"}, "expected table, json or yaml"},
           {{"--timeout=soon", "list"}, "timeout"},
           {{"--client_cert=/nonexistent.pem", "list"},
            "--client_cert and --client_key go together"},
           {{"--ca_cert=/nonexistent.pem", "list"}, "cannot read"},
           {{"completion", "zsh"}, "only bash"},
       }) {
    Ctl run = Run(c.args);
    EXPECT_EQ(run.code, 2) << absl::StrJoin(c.args, " ") << "\n" << run;
    EXPECT_THAT(run.err, HasSubstr(c.message)) << run;
  }
}

TEST_F(DsarctlOfflineTest, UnreachableServerExitsFour) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"get", "dsr_x"},
           {"list"},
           {"ls"},
           {"describe", "dsar.v1.Request"},
           {"call", "dsar.v1.DsarService/GetRequest", "{}"},
           {"workers"},
           {"audit", "checkpoint"}}) {
    args.insert(args.begin(), "--addr=127.0.0.1:1");
    Ctl run = Run(args);
    EXPECT_EQ(run.code, 4) << absl::StrJoin(args, " ") << "\n" << run;
    EXPECT_THAT(run.err, HasSubstr("unavailable")) << run;
  }
}

TEST_F(DsarctlOfflineTest, ConfigFileErrorsNameTheLine) {
  const std::string config = dir_.Join("config");
  WriteText(config, "# defaults\naddr = 127.0.0.1:1\ncolour = yes\n");
  Ctl run = Run({"list"}, "", {{"DSARCTL_CONFIG", config}});
  EXPECT_EQ(run.code, 2) << run;
  EXPECT_THAT(run.err, HasSubstr(absl::StrCat(config,
                                              ":3: unknown setting "
                                              "\"colour\"")));
  Ctl missing = Run({"--config", dir_.Join("nope"), "list"});
  EXPECT_EQ(missing.code, 2) << missing;
  EXPECT_THAT(missing.err, HasSubstr("config file"));
}

TEST_F(DsarctlOfflineTest, BashCompletion) {
  Ctl script = Run({"completion", "bash"});
  ASSERT_EQ(script.code, 0) << script;
  const std::string path = dir_.Join("completion.bash");
  WriteText(path, script.out);
  EXPECT_THAT(script.out, HasSubstr("complete -o default -F _dsarctl dsarctl"));

  // Simulates bash asking for completions of `line` (cursor at its end).
  auto complete = [&](const std::string& line) {
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    // bash splits "--status=RU" into "--status" "=" "RU".
    std::vector<std::string> comp_words;
    for (const std::string& word : words) {
      size_t equals = word.find('=');
      if (word.rfind("--", 0) == 0 && equals != std::string::npos) {
        comp_words.push_back(word.substr(0, equals));
        comp_words.push_back("=");
        comp_words.push_back(word.substr(equals + 1));
      } else {
        comp_words.push_back(word);
      }
    }
    std::string array;
    for (const std::string& word : comp_words) {
      absl::StrAppend(&array, "'", word, "' ");
    }
    std::string program =
        absl::StrCat("source '", path, "'\n", "COMP_LINE='", line, "'\n",
                     "COMP_POINT=${#COMP_LINE}\n", "COMP_WORDS=(", array, ")\n",
                     "COMP_CWORD=", comp_words.size() - 1, "\n",
                     "_dsarctl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n");
    WriteText(dir_.Join("complete.sh"), program);
    absl::StatusOr<int> code =
        RunToExit("/bin/bash", {dir_.Join("complete.sh")},
                  dir_.Join("complete.log"), absl::Seconds(30));
    EXPECT_TRUE(code.ok() && *code == 0)
        << ReadFileOrEmpty(dir_.Join("complete.log"));
    std::string output = ReadFileOrEmpty(dir_.Join("complete.log"));
    std::filesystem::remove(dir_.Join("complete.log"));
    return output;
  };
  EXPECT_EQ(complete("dsarctl li"), "list\n");
  EXPECT_EQ(complete("dsarctl audit ve"), "verify\n");
  EXPECT_EQ(complete("dsarctl list --status=RU"), "RUNNING\n");
  EXPECT_EQ(complete("dsarctl get x -o ya"), "yaml\n");
  EXPECT_THAT(complete("dsarctl list --cr"), HasSubstr("--created-since="));
  EXPECT_THAT(complete("dsarctl retry x --"),
              AllOf(HasSubstr("--store="), HasSubstr("--reason="),
                    HasSubstr("--addr="), Not(HasSubstr("--all"))));
}

// An AdminService that always reports one worker, served over mutual TLS.
class FakeAdminService final : public v1::AdminService::Service {
  grpc::Status ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                           v1::ListWorkersResponse* response) override {
    v1::WorkerInfo* worker = response->add_workers();
    worker->set_worker_id("tls-worker");
    worker->add_stores("accounts");
    worker->add_leased_tasks("task-1");
    worker->mutable_last_seen()->set_seconds(absl::ToUnixSeconds(absl::Now()));
    return grpc::Status::OK;
  }
};

TEST_F(DsarctlOfflineTest, MutualTlsWithCaAndClientCertificate) {
  // A CA, a server certificate for localhost and a client certificate.
  const std::string script = dir_.Join("certs.sh");
  WriteText(script, absl::StrCat(R"(set -e
cd ')",
                                 dir_.path(), R"('
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca \
  -keyout ca.key -out ca.pem 2>/dev/null
for who in server client; do
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
    -keyout $who.key -out $who.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > $who.ext
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 1 -extfile $who.ext -out $who.pem 2>/dev/null
done
)"));
  absl::StatusOr<int> made = RunToExit(
      "/bin/bash", {script}, dir_.Join("certs.log"), absl::Seconds(60));
  ASSERT_TRUE(made.ok() && *made == 0)
      << ReadFileOrEmpty(dir_.Join("certs.log"));

  grpc::SslServerCredentialsOptions ssl(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = ReadFileOrEmpty(dir_.Join("ca.pem"));
  ssl.pem_key_cert_pairs.push_back({ReadFileOrEmpty(dir_.Join("server.key")),
                                    ReadFileOrEmpty(dir_.Join("server.pem"))});
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  FakeAdminService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  const std::string addr = absl::StrCat("--addr=localhost:", port);
  const std::vector<std::string> tls = {
      addr, "--ca_cert=" + dir_.Join("ca.pem"),
      "--client_cert=" + dir_.Join("client.pem"),
      "--client_key=" + dir_.Join("client.key")};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), tls.begin(), tls.end());
    return args;
  };

  Ctl workers = Run(with({"workers"}));
  ASSERT_EQ(workers.code, 0) << workers;
  EXPECT_THAT(workers.out,
              ContainsRegex("tls-worker +accounts +1 +[0-9]+s ago"));
  Ctl ls = Run(with({"ls"}));
  EXPECT_EQ(ls.code, 0) << ls;
  EXPECT_THAT(ls.out, HasSubstr("dsar.v1.AdminService\n"));
  Ctl call = Run(with({"call", "AdminService/ListWorkers", "{}"}));
  EXPECT_EQ(call.code, 0) << call;
  EXPECT_EQ(ParseJson(call.out)["workers"][0]["leased_tasks"][0], "task-1");

  // The same settings from a config file.
  const std::string config = dir_.Join("tls.conf");
  WriteText(config,
            absl::StrCat("addr = localhost:", port,
                         "\nca_cert = ", dir_.Join("ca.pem"),
                         "\nclient_cert = ", dir_.Join("client.pem"),
                         "\nclient_key = ", dir_.Join("client.key"), "\n"));
  Ctl configured =
      Run({"workers", "-o", "json"}, "", {{"DSARCTL_CONFIG", config}});
  EXPECT_EQ(configured.code, 0) << configured;

  // Without a client certificate, or in plaintext, the server is not usable.
  Ctl no_client_cert =
      Run({addr, "--ca_cert=" + dir_.Join("ca.pem"), "workers"});
  EXPECT_EQ(no_client_cert.code, 4) << no_client_cert;
  Ctl plaintext = Run({addr, "workers"});
  EXPECT_EQ(plaintext.code, 4) << plaintext;
  server->Shutdown();
}

// A live dsard with one worker serving every sample store.
class DsarctlTest : public ::testing::Test {
 protected:
  DsarctlTest() : dir_("dsarctl-test") {}

  void SetUp() override {
    absl::StatusOr<std::string> inventory =
        GenerateSampleStores(dir_.Join("stores"), 40);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = *inventory;
    StartTheCoordinator();
  }

  // (Re)starts dsard on the test's data directory and inventory; dsarctl
  // calls go to it.
  void StartTheCoordinator() {
    DsardOptions options;
    options.data_dir = dir_.Join("data");
    options.inventory = inventory_;
    absl::StatusOr<RunningDsard> dsard = StartDsard(options, dir_.path());
    ASSERT_TRUE(dsard.ok()) << dsard.status();
    dsard_ = std::move(*dsard);
    addr_ = absl::StrCat("--addr=127.0.0.1:", dsard_.port);
  }

  void StartTheWorker() {
    WorkerOptions worker;
    worker.coordinator_port = dsard_.port;
    worker.inventory = inventory_;
    worker.worker_id = "ctl-worker";
    worker.poll_wait_ms = 200;
    absl::StatusOr<std::unique_ptr<Process>> process =
        StartWorker(worker, dir_.path());
    ASSERT_TRUE(process.ok()) << process.status();
    worker_ = std::move(*process);
  }

  Ctl Run(std::vector<std::string> args, const std::string& input = "",
          const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), addr_);
    return RunCtl(dir_, args, input, env, absl::Seconds(120));
  }

  // Submits an access request for person `n` with dsarctl; returns its id.
  std::string Submit(const std::string& type, int n,
                     std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "submit", absl::StrCat("--type=", type),
        absl::StrCat("--email=person", n, "@example.com"),
        "--verified-by=logged_in_session", "--evidence-ref=test-session"};
    args.insert(args.end(), extra.begin(), extra.end());
    Ctl run = Run(args);
    EXPECT_EQ(run.code, 0) << run;
    EXPECT_THAT(run.out, ContainsRegex("^[A-Za-z0-9_-]+\n$")) << run;
    return run.out.substr(0, run.out.find('\n'));
  }

  // `watch -o json` until the request is terminal; returns its events.
  std::vector<nlohmann::json> WatchJson(const std::string& id, int* code) {
    Ctl watch = Run({"watch", id, "-o", "json", "--interval-ms=50"});
    *code = watch.code;
    std::vector<nlohmann::json> events;
    for (absl::string_view line :
         absl::StrSplit(watch.out, '\n', absl::SkipEmpty())) {
      nlohmann::json event = ParseJson(std::string(line));
      EXPECT_TRUE(event.is_object()) << "not one JSON object: " << line;
      events.push_back(event);
    }
    return events;
  }

  TempDir dir_;
  std::string inventory_;
  RunningDsard dsard_;
  std::unique_ptr<Process> worker_;
  std::string addr_;
};

TEST_F(DsarctlTest, LsListsServicesAndMethods) {
  Ctl ls = Run({"ls"});
  ASSERT_EQ(ls.code, 0) << ls;
  for (const char* service :
       {"dsar.v1.DsarService", "dsar.v1.AuditService", "dsar.v1.AdminService",
        "grpc.reflection.v1alpha.ServerReflection"}) {
    EXPECT_THAT(ls.out, HasSubstr(absl::StrCat(service, "\n"))) << ls;
  }
  Ctl long_listing = Run({"ls", "-l"});
  ASSERT_EQ(long_listing.code, 0) << long_listing;
  EXPECT_THAT(long_listing.out,
              HasSubstr("dsar.v1.DsarService  (dsar/v1/requests.proto)\n"));
  EXPECT_THAT(long_listing.out,
              HasSubstr("  rpc GetRequest(dsar.v1.GetRequestRequest) returns "
                        "(dsar.v1.Request)\n"));

  Ctl methods = Run({"ls", "DsarService"});  // A unique short name.
  ASSERT_EQ(methods.code, 0) << methods;
  EXPECT_THAT(methods.out, HasSubstr("CreateRequest\nGetRequest\n"));
  EXPECT_THAT(methods.out, HasSubstr("RetryRequest\n"));
  Ctl methods_long = Run({"ls", "dsar.v1.AuditService", "-l"});
  EXPECT_THAT(methods_long.out,
              HasSubstr("rpc GetCheckpoint(dsar.v1.GetCheckpointRequest) "
                        "returns (dsar.v1.GetCheckpointResponse)"));

  nlohmann::json json = ParseJson(Run({"ls", "-o", "json"}).out);
  ASSERT_TRUE(json.is_array()) << json;
  EXPECT_NE(std::find(json.begin(), json.end(), "dsar.v1.DsarService"),
            json.end());
  nlohmann::json detailed = ParseJson(Run({"ls", "-l", "-o", "json"}).out);
  ASSERT_TRUE(detailed.is_array() && !detailed.empty()) << detailed;
  EXPECT_TRUE(detailed[0].contains("methods")) << detailed;

  Ctl missing = Run({"ls", "dsar.v1.NoSuchService"});
  EXPECT_EQ(missing.code, 3) << missing;
}

TEST_F(DsarctlTest, DescribeServiceMethodMessageAndEnum) {
  Ctl service = Run({"describe", "dsar.v1.DsarService"});
  ASSERT_EQ(service.code, 0) << service;
  EXPECT_THAT(service.out, HasSubstr("service DsarService {"));
  EXPECT_THAT(service.out,
              HasSubstr("rpc RetryRequest(.dsar.v1.RetryRequestRequest) "
                        "returns (.dsar.v1.Request)"));

  for (const char* name :
       {"dsar.v1.DsarService/CancelRequest",
        "dsar.v1.DsarService.CancelRequest", "DsarService/CancelRequest"}) {
    Ctl method = Run({"describe", name});
    ASSERT_EQ(method.code, 0) << method;
    EXPECT_THAT(method.out,
                HasSubstr("rpc CancelRequest(dsar.v1.CancelRequestRequest) "
                          "returns (dsar.v1.Request);"));
    EXPECT_THAT(method.out, HasSubstr("message CancelRequestRequest {"));
    EXPECT_THAT(method.out, HasSubstr("string reason = 2;"));
  }

  Ctl message = Run({"describe", "dsar.v1.ListRequestsRequest"});
  ASSERT_EQ(message.code, 0) << message;
  EXPECT_THAT(message.out, HasSubstr("message ListRequestsRequest {"));
  EXPECT_THAT(message.out,
              HasSubstr(".google.protobuf.Timestamp created_after = 5;"));
  EXPECT_THAT(message.out, HasSubstr("// message dsar.v1.ListRequestsRequest "
                                     "(dsar/v1/requests.proto"));

  Ctl enumeration = Run({"describe", "dsar.v1.RequestStatus"});
  ASSERT_EQ(enumeration.code, 0) << enumeration;
  EXPECT_THAT(enumeration.out, HasSubstr("COMPLETED = 3;"));

  nlohmann::json descriptor =
      ParseJson(Run({"describe", "dsar.v1.Request", "-o", "json"}).out);
  EXPECT_EQ(descriptor["name"], "Request") << descriptor;

  Ctl missing = Run({"describe", "dsar.v1.Nothing"});
  EXPECT_EQ(missing.code, 3) << missing;
  EXPECT_THAT(missing.err, HasSubstr("dsar.v1.Nothing"));
}

TEST_F(DsarctlTest, CallWithJsonFromArgumentFileAndStdin) {
  Ctl created = Run({"call", "dsar.v1.DsarService/CreateRequest",
                     R"({"type": "ACCESS", "identities": [{"type": "EMAIL",
                         "value": "person3@example.com"}],
                         "idempotency_key": "call-1"})"});
  ASSERT_EQ(created.code, 0) << created;
  nlohmann::json request = ParseJson(created.out);
  ASSERT_TRUE(request.is_object()) << created;
  const std::string id = request["id"];
  EXPECT_EQ(request["type"], "ACCESS");
  EXPECT_FALSE(id.empty());

  const std::string file = dir_.Join("get.json");
  WriteText(file, absl::StrCat("{\"id\": \"", id, "\"}"));
  Ctl from_file = Run({"call", "DsarService/GetRequest", "-d", "@" + file});
  ASSERT_EQ(from_file.code, 0) << from_file;
  EXPECT_EQ(ParseJson(from_file.out)["id"], id);

  Ctl from_stdin = Run({"call", "dsar.v1.DsarService/GetRequest", "-d", "@-"},
                       absl::StrCat("{\"id\": \"", id, "\"}\n"));
  ASSERT_EQ(from_stdin.code, 0) << from_stdin;
  EXPECT_EQ(ParseJson(from_stdin.out)["id"], id);

  // lowerCamel names (the protobuf JSON mapping) work too; YAML output.
  Ctl yaml = Run({"call", "dsar.v1.DsarService/ListRequests",
                  R"({"pageSize": 5})", "-o", "yaml"});
  ASSERT_EQ(yaml.code, 0) << yaml;
  YAML::Node listed = YAML::Load(yaml.out);
  EXPECT_EQ(listed["requests"][0]["id"].as<std::string>(), id) << yaml;

  Ctl defaults = Run(
      {"call", "dsar.v1.AuditService/GetCheckpoint", "{}", "--emit-defaults"});
  ASSERT_EQ(defaults.code, 0) << defaults;
  EXPECT_TRUE(ParseJson(defaults.out).contains("checkpoint")) << defaults;
}

TEST_F(DsarctlTest, CallReportsBadInputAndMissingThings) {
  // The mistake is the '}' where a value should be: line 2, column 9.
  Ctl malformed =
      Run({"call", "dsar.v1.DsarService/GetRequest", "{\n  \"id\": }"});
  EXPECT_EQ(malformed.code, 2) << malformed;
  EXPECT_THAT(malformed.err,
              HasSubstr("malformed JSON at line 2, column 9 (byte offset 10)"));
  EXPECT_THAT(malformed.err, HasSubstr("  \"id\": }\n          ^"));

  Ctl truncated = Run({"call", "dsar.v1.DsarService/GetRequest", "-d", "@-"},
                      "{\"id\": \"x\"");
  EXPECT_EQ(truncated.code, 2) << truncated;
  EXPECT_THAT(truncated.err, HasSubstr("malformed JSON at line 1, column 11"));

  // Well-formed but past double: an error, not an uncaught exception.
  Ctl too_big = Run(
      {"call", "dsar.v1.DsarService/ListRequests", R"({"page_size": 1e999})"});
  EXPECT_EQ(too_big.code, 2) << too_big;
  EXPECT_THAT(too_big.err, HasSubstr("malformed JSON"));

  Ctl unknown_field =
      Run({"call", "dsar.v1.DsarService/GetRequest", R"({"identifier": "x"})"});
  EXPECT_EQ(unknown_field.code, 2) << unknown_field;
  EXPECT_THAT(unknown_field.err, HasSubstr("identifier"));
  EXPECT_THAT(unknown_field.err, HasSubstr("dsar.v1.GetRequestRequest"));

  Ctl not_found = Run(
      {"call", "dsar.v1.DsarService/GetRequest", R"({"id": "dsr_missing"})"});
  EXPECT_EQ(not_found.code, 3) << not_found;

  Ctl no_method = Run({"call", "dsar.v1.DsarService/Frobnicate", "{}"});
  EXPECT_EQ(no_method.code, 3) << no_method;
  EXPECT_THAT(no_method.err, HasSubstr("has no method \"Frobnicate\""));

  Ctl no_file = Run({"call", "dsar.v1.DsarService/GetRequest", "-d",
                     "@" + dir_.Join("absent.json")});
  EXPECT_EQ(no_file.code, 2) << no_file;
  EXPECT_THAT(no_file.err, HasSubstr("absent.json"));

  Ctl invalid = Run({"call", "dsar.v1.DsarService/CreateRequest", "{}"});
  EXPECT_EQ(invalid.code, 2) << invalid;  // INVALID_ARGUMENT from dsard.
}

TEST_F(DsarctlTest, SubmitWatchGetListEvents) {
  ASSERT_NO_FATAL_FAILURE(StartTheWorker());
  const std::string id = Submit("ACCESS", 7);

  // watch -o json: one event object per line, ending with the request done.
  int code = -1;
  std::vector<nlohmann::json> events = WatchJson(id, &code);
  EXPECT_EQ(code, 0);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front()["kind"], "received");
  EXPECT_EQ(events.front()["sequence"], "1");  // uint64 is a JSON string.
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i]["request_id"], id);
    EXPECT_EQ(events[i]["sequence"], std::to_string(i + 1)) << "in order, once";
  }

  // watch for people (not a terminal here): one line per change, then the
  // request's table.
  Ctl watch = Run({"watch", id});
  EXPECT_EQ(watch.code, 0) << watch;
  EXPECT_THAT(watch.out, HasSubstr(absl::StrCat(id, " COMPLETED")));
  EXPECT_THAT(watch.out, HasSubstr("STEP"));

  Ctl get = Run({"get", id});
  ASSERT_EQ(get.code, 0) << get;
  EXPECT_THAT(get.out, ContainsRegex("Status +COMPLETED"));
  EXPECT_THAT(
      get.out,
      ContainsRegex("STEP +STORE +STATUS +ATTEMPTS +RECORDS +WORKER +ERROR"));
  EXPECT_THAT(get.out,
              ContainsRegex(
                  "ExportStores +accounts +SUCCEEDED +1 +[0-9]+ +ctl-worker"));
  EXPECT_THAT(get.out, HasSubstr("Bundle"));
  EXPECT_THAT(get.out, Not(HasSubstr("\033[")));  // No colour off a terminal.

  nlohmann::json json = ParseJson(Run({"get", id, "-o", "json"}).out);
  EXPECT_EQ(json["status"], "COMPLETED") << json;
  EXPECT_EQ(json["steps"].size(), 4u) << json;
  YAML::Node yaml = YAML::Load(Run({"get", id, "-o", "yaml"}).out);
  EXPECT_EQ(yaml["id"].as<std::string>(), id);
  EXPECT_EQ(yaml["status"].as<std::string>(), "COMPLETED");
  EXPECT_EQ(yaml["steps"].size(), 4u);
  EXPECT_EQ(yaml["created_at"].as<std::string>(),
            json["created_at"].get<std::string>());

  // list: table, filters, created-since, pages.
  const std::string second = Submit("ERASURE", 8);
  int erasure_code = -1;
  WatchJson(second, &erasure_code);
  EXPECT_EQ(erasure_code, 0);
  Ctl list = Run({"list"});
  ASSERT_EQ(list.code, 0) << list;
  EXPECT_THAT(list.out, ContainsRegex(absl::StrCat(id, " +ACCESS +COMPLETED")));
  EXPECT_THAT(list.out,
              ContainsRegex(absl::StrCat(second, " +ERASURE +COMPLETED")));
  Ctl erasures = Run({"list", "--type=erasure", "-o", "json"});
  nlohmann::json listed = ParseJson(erasures.out);
  ASSERT_EQ(listed["requests"].size(), 1u) << erasures;
  EXPECT_EQ(listed["requests"][0]["id"], second);
  EXPECT_EQ(ParseJson(Run({"list", "--status=RUNNING", "-o", "json"}).out)
                .value("requests", nlohmann::json::array())
                .size(),
            0u);
  EXPECT_EQ(
      ParseJson(
          Run({"list", "--created-since=1h", "-o", "json"}).out)["requests"]
          .size(),
      2u);
  Ctl future = Run({"list", "--created-since=2999-01-01T00:00:00Z"});
  EXPECT_EQ(future.code, 0) << future;
  EXPECT_THAT(future.err, HasSubstr("no requests match"));
  Ctl page = Run({"list", "--page-size=1"});
  EXPECT_THAT(page.err, HasSubstr("--page-token=")) << page;
  nlohmann::json all =
      ParseJson(Run({"list", "--page-size=1", "--all", "-o", "json"}).out);
  EXPECT_EQ(all["requests"].size(), 2u) << all;
  YAML::Node list_yaml = YAML::Load(Run({"list", "-o", "yaml"}).out);
  EXPECT_EQ(list_yaml["requests"].size(), 2u);

  // events, then events proven against the signed checkpoint.
  Ctl history = Run({"events", id});
  ASSERT_EQ(history.code, 0) << history;
  EXPECT_THAT(history.out, ContainsRegex("SEQ +TIME \\(UTC\\) +KIND"));
  EXPECT_THAT(history.out, HasSubstr("received"));
  EXPECT_THAT(history.out, HasSubstr("task_completed"));
  const std::string pubkey = dir_.Join("data/keys/checkpoint.key.pub");
  ASSERT_TRUE(std::filesystem::exists(pubkey));
  Ctl proven = Run({"events", id, "--pubkey", pubkey});
  ASSERT_EQ(proven.code, 0) << proven;
  EXPECT_THAT(proven.out, ContainsRegex("1 +(proven|pending) +"));
  EXPECT_THAT(proven.out, HasSubstr("checked against the signed checkpoint"));
  // The key can come from the config file; JSON carries each proof.
  const std::string config = dir_.Join("dsarctl.conf");
  WriteText(config, absl::StrCat("pubkey = ", pubkey, "\n"));
  Ctl proven_json =
      Run({"events", id, "-o", "json"}, "", {{"DSARCTL_CONFIG", config}});
  nlohmann::json proofs = ParseJson(proven_json.out);
  ASSERT_TRUE(proofs.contains("checkpoint")) << proven_json;
  ASSERT_EQ(proofs["events"].size(), events.size()) << proven_json;
  EXPECT_TRUE(proofs["events"][0]["proof"] == "proven" ||
              proofs["events"][0]["proof"] == "pending");
  Ctl wrong_key =
      Run({"events", id, "--pubkey", dir_.Join("stores/inventory.yaml")});
  EXPECT_EQ(wrong_key.code, 1) << wrong_key;

  // The audit commands still work.
  Ctl checkpoint = Run({"audit", "checkpoint"});
  EXPECT_EQ(checkpoint.code, 0) << checkpoint;
  Ctl verify = Run({"audit", "verify", "--pubkey", pubkey});
  EXPECT_EQ(verify.code, 0) << verify;
  EXPECT_THAT(verify.out, HasSubstr("audit log verified"));

  // Not found.
  EXPECT_EQ(Run({"get", "dsr_missing"}).code, 3);
  Ctl no_events = Run({"events", "dsr_missing"});
  EXPECT_TRUE(no_events.code == 3 ||
              (no_events.code == 0 &&
               no_events.out.find("received") == std::string::npos))
      << no_events;
  EXPECT_EQ(Run({"watch", "dsr_missing"}).code, 3);
  EXPECT_EQ(Run({"cancel", "dsr_missing"}).code, 3);
}

TEST_F(DsarctlTest, CancelAndConfigAddress) {
  // No worker: the request waits (for the subject's code, or for its store)
  // until cancelled.
  const std::string config = dir_.Join("config");
  WriteText(config, absl::StrCat("# test\naddr = 127.0.0.1:", dsard_.port,
                                 "\ntimeout = 20\noutput = json\n"));
  std::map<std::string, std::string> env = {{"DSARCTL_CONFIG", config}};
  // orders alone is searched by user id; by email it would need accounts
  // (which supplies the user id), so that is refused with the reason.
  Ctl unsearchable = RunCtl(dir_,
                            {"submit", "--type=ACCESS",
                             "--email=person5@example.com", "--store=orders"},
                            "", env);
  EXPECT_NE(unsearchable.code, 0) << unsearchable;
  EXPECT_THAT(unsearchable.err, HasSubstr("accounts")) << unsearchable;
  Ctl submitted =
      RunCtl(dir_, {"submit", "--type=ACCESS", "--user-id=5", "--store=orders"},
             "", env);
  ASSERT_EQ(submitted.code, 0) << submitted;
  nlohmann::json request = ParseJson(submitted.out);  // output = json.
  const std::string id = request["id"];
  EXPECT_EQ(request["stores"], nlohmann::json::array({"orders"}));

  // Flags beat the file; DSAR_ADDR beats the file too.
  Ctl table = RunCtl(dir_, {"get", id, "-o", "table"}, "", env);
  EXPECT_THAT(table.out, ContainsRegex("Status +(VERIFYING|RECEIVED|RUNNING)"))
      << table;
  EXPECT_THAT(table.out,
              ContainsRegex("Deadline +20[0-9-]+ 23:59:59 UTC \\(in "))
      << table;

  // Deadlines: nothing is overdue yet, everything is due within 60 days;
  // an extension moves the deadline and records why.
  Ctl overdue = Run({"list", "--overdue"});
  EXPECT_EQ(overdue.code, 0) << overdue;
  EXPECT_THAT(overdue.err, HasSubstr("no requests match"));
  nlohmann::json due =
      ParseJson(Run({"list", "--due-within=60d", "-o", "json"}).out);
  ASSERT_EQ(due["requests"].size(), 1u) << due;
  EXPECT_EQ(due["requests"][0]["id"], id);
  Ctl extended = Run({"extend", id, "--by=1", "--reason=complex request"});
  ASSERT_EQ(extended.code, 0) << extended;
  EXPECT_THAT(extended.out,
              ContainsRegex("Extended +from .*: complex request"));
  Ctl twice = Run({"extend", id, "--by=1", "--reason=again"});
  EXPECT_EQ(twice.code, 1) << twice;  // Once per request.
  Ctl env_addr =
      RunCtl(dir_, {"get", id}, "",
             {{"DSARCTL_CONFIG", config}, {"DSAR_ADDR", "127.0.0.1:1"}});
  EXPECT_EQ(env_addr.code, 4) << env_addr;

  // A legal hold: paused, then resumed; both audited.
  Ctl paused = Run({"pause", id, "--reason=legal hold 7"});
  ASSERT_EQ(paused.code, 0) << paused;
  EXPECT_THAT(paused.out, ContainsRegex("Status +PAUSED")) << paused;
  EXPECT_EQ(Run({"pause", id, "--reason=again"}).code, 1);  // Already paused.
  Ctl resumed = Run({"resume", id, "--reason=hold lifted"});
  ASSERT_EQ(resumed.code, 0) << resumed;
  EXPECT_THAT(resumed.out, Not(ContainsRegex("Status +PAUSED"))) << resumed;
  // A wrong code is refused (denied, or nothing to verify): exit 1.
  EXPECT_EQ(Run({"verify", id, "--code=00000000"}).code, 1);

  Ctl cancelled = Run({"cancel", id, "--reason=subject withdrew"});
  ASSERT_EQ(cancelled.code, 0) << cancelled;
  EXPECT_THAT(cancelled.out, ContainsRegex("Status +CANCELLED"));
  Ctl again = Run({"cancel", id});
  EXPECT_EQ(again.code, 1) << again;  // FAILED_PRECONDITION: a server error.
  Ctl watch = Run({"watch", id});
  EXPECT_EQ(watch.code, 1) << watch;  // Terminal, but not COMPLETED.
  Ctl events = Run({"events", id});
  EXPECT_THAT(events.out, HasSubstr("subject withdrew"));
  EXPECT_THAT(events.out, HasSubstr("legal hold 7"));
}

TEST_F(DsarctlTest, RetryReRunsAFailedStore) {
  ASSERT_NO_FATAL_FAILURE(StartTheWorker());
  // The marketing store is unreachable: its export fails until retries run
  // out, and the request finishes without it.
  const std::string db = dir_.Join("stores/marketing.db");
  std::filesystem::rename(db, db + ".away");
  const std::string id = Submit("ACCESS", 9);
  int code = -1;
  WatchJson(id, &code);
  Ctl get = Run({"get", id});
  EXPECT_THAT(get.out, ContainsRegex("marketing +FAILED +[0-9]+ ")) << get;

  Ctl missing = Run({"retry", "dsr_missing"});
  EXPECT_EQ(missing.code, 3) << missing;

  std::filesystem::rename(db + ".away", db);
  Ctl retried = Run({"retry", id, "--store=marketing", "--reason=db restored"});
  ASSERT_EQ(retried.code, 0) << retried;
  Ctl watch = Run({"watch", id});
  EXPECT_EQ(watch.code, 0) << watch;
  Ctl after = Run({"get", id, "-o", "json"});
  nlohmann::json request = ParseJson(after.out);
  // The re-run adds the store's new step after the failed one.
  std::string last_marketing;
  for (const auto& step : request["steps"]) {
    if (step["store"] == "marketing") last_marketing = step["status"];
  }
  EXPECT_EQ(last_marketing, "SUCCEEDED") << after;
  Ctl events = Run({"events", id});
  EXPECT_THAT(events.out, HasSubstr("db restored"));

  // Nothing left to retry.
  Ctl nothing = Run({"retry", id});
  EXPECT_EQ(nothing.code, 1) << nothing;
}

TEST_F(DsarctlTest, WorkersShowsConnectedWorkers) {
  // Before any worker: every store is named as unserved.
  Ctl alone = Run({"workers"});
  ASSERT_EQ(alone.code, 0) << alone;
  EXPECT_THAT(alone.err, HasSubstr("no live worker serves: "));
  EXPECT_THAT(alone.err, HasSubstr("accounts"));
  EXPECT_EQ(
      ParseJson(Run({"workers", "-o", "json"}).out)["unserved_stores"].size(),
      4u);
  ASSERT_NO_FATAL_FAILURE(StartTheWorker());
  // The worker registers on its first poll.
  Ctl workers;
  for (int i = 0; i < 100; ++i) {
    workers = Run({"workers"});
    if (workers.code != 0 ||
        workers.out.find("ctl-worker") != std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(workers.code, 0) << workers;
  EXPECT_THAT(workers.err, Not(HasSubstr("no live worker serves")));
  EXPECT_THAT(workers.out,
              ContainsRegex("WORKER +STORES +IN-FLIGHT +LAST HEARTBEAT"));
  EXPECT_THAT(workers.out,
              ContainsRegex("ctl-worker +\\S+ +[0-9]+ +[0-9]+s ago"));
  nlohmann::json json = ParseJson(Run({"workers", "-o", "json"}).out);
  ASSERT_TRUE(json.contains("workers")) << json;
  EXPECT_EQ(json["workers"][0]["worker_id"], "ctl-worker");
  YAML::Node yaml = YAML::Load(Run({"workers", "-o", "yaml"}).out);
  EXPECT_EQ(yaml["workers"][0]["worker_id"].as<std::string>(), "ctl-worker");
}

// A manual store end to end: dsard and a worker from the inventory, the
// owner's answers through dsarctl work.
TEST_F(DsarctlTest, ManualStoreWorkItemsAreAnsweredWithDsarctl) {
  // The sample shop plus a paper archive that no connector reaches.
  dsard_.process->Terminate();
  std::ofstream(inventory_, std::ios::app)
      << "\n  - name: archive\n"
         "    kind: manual\n"
         "    owner: records@example.com\n"
         "    instructions: \"Search the signup forms by email\"\n"
         "    identity_kinds: [email]\n"
         "    due_within: 3d\n";
  ASSERT_NO_FATAL_FAILURE(StartTheCoordinator());
  StartTheWorker();  // Serves every store but the archive.

  // The open item of `id`'s archive step, once it is `operation`.
  auto item_of = [&](const std::string& id, const std::string& operation) {
    nlohmann::json found;
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (found.is_null() && absl::Now() < deadline) {
      Ctl list = Run({"work", "list", "-o", "json"});
      EXPECT_EQ(list.code, 0) << list;
      nlohmann::json listed = ParseJson(list.out);
      for (const nlohmann::json& item :
           listed.value("items", nlohmann::json::array())) {
        if (item.value("request_id", "") == id &&
            item.value("operation", "") == operation) {
          found = item;
        }
      }
      if (found.is_null()) absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_FALSE(found.is_null()) << id << " has no open " << operation;
    return found;
  };

  std::string access = Submit("ACCESS", 3);
  nlohmann::json item = item_of(access, "export");
  EXPECT_EQ(item.value("owner", ""), "records@example.com");
  EXPECT_EQ(item.value("store", ""), "archive");
  Ctl table = Run({"work", "list"});
  EXPECT_THAT(table.out, AllOf(HasSubstr(access), HasSubstr("archive"),
                               HasSubstr("records@example.com")));
  const std::string found = dir_.Join("found.json");
  std::ofstream(found)
      << R"({"store":"archive","records":[{"collection":"signup_forms",)"
         R"("data":{"box":"12","form":"newsletter 2019"}}]})";
  EXPECT_EQ(
      Run({"work", "complete", access, "archive", "--export=" + found}).code, 2)
      << "--evidence is required";
  Ctl done = Run({"work", "complete", access, "archive", "--export=" + found,
                  "--evidence=scanned from box 12, ticket OPS-7"});
  ASSERT_EQ(done.code, 0) << done;
  int code = -1;
  WatchJson(access, &code);
  nlohmann::json answered = ParseJson(Run({"get", access, "-o", "json"}).out);
  EXPECT_EQ(answered.value("status", ""), "COMPLETED") << answered.dump();
  EXPECT_THAT(answered["bundle"]["files"].dump(),
              HasSubstr("data/archive.json"));

  std::string erasure = Submit("ERASURE", 3);
  item_of(erasure, "discover");
  ASSERT_EQ(Run({"work", "complete", erasure, "archive", "--records=1",
                 "--evidence=one form in box 12"})
                .code,
            0);
  item_of(erasure, "erase");
  Ctl failed = Run({"work", "fail", erasure, "archive",
                    "--reason=box 12 is held by the tax office until 2027"});
  ASSERT_EQ(failed.code, 0) << failed;
  WatchJson(erasure, &code);
  nlohmann::json ended = ParseJson(Run({"get", erasure, "-o", "json"}).out);
  EXPECT_NE(ended.value("status", ""), "COMPLETED");
  EXPECT_THAT(ended["steps"].dump(),
              AllOf(HasSubstr("Operator.Failed"), HasSubstr("tax office")));
  // Nothing is open for it any more: answering again is refused (exit 1,
  // FAILED_PRECONDITION).
  Ctl again = Run({"work", "fail", erasure, "archive", "--reason=again"});
  EXPECT_NE(again.code, 0) << again;
  EXPECT_THAT(again.err, HasSubstr("not open"));
}

// `keys rotate` refused every call ("takes no arguments": the subcommand
// word counted as an argument) until this test.
TEST_F(DsarctlTest, KeysRotateMakesANewKeyActive) {
  Ctl rotated = Run({"keys", "rotate"});
  ASSERT_EQ(rotated.code, 0) << rotated;
  EXPECT_THAT(rotated.out, HasSubstr("active key-encryption key: "));
  Submit("ACCESS", 5);
  Ctl rewrapped = Run({"keys", "rotate", "--rewrap"});
  ASSERT_EQ(rewrapped.code, 0) << rewrapped;
  EXPECT_THAT(rewrapped.out, HasSubstr("data keys re-wrapped under it: "));
  EXPECT_NE(rotated.out, rewrapped.out);
  EXPECT_EQ(Run({"keys", "rotate", "extra"}).code, 2);
}

}  // namespace
}  // namespace dsar::testing
