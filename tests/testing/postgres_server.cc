#include "tests/testing/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dsar::testing {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(60);
// Between two PQping calls while the server starts: the condition polled is
// the server's own answer, not the passing of time.
constexpr auto kPingInterval = std::chrono::milliseconds(20);
constexpr int kPortAttempts = 5;

// Who runs PostgreSQL's programs: nobody else (-1) unless we are root.
struct RunAs {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

// The newest installed PostgreSQL's bin directory (Debian:
// /usr/lib/postgresql/<major>/bin).
std::string BinDir() {
  glob_t found;
  std::string dir;
  if (::glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &found) == 0) {
    std::vector<std::string> paths(found.gl_pathv,
                                   found.gl_pathv + found.gl_pathc);
    // Major versions sort numerically: 9.6 < 15 < 16.
    std::sort(paths.begin(), paths.end(),
              [](const std::string& a, const std::string& b) {
                return std::atof(a.c_str() + 20) < std::atof(b.c_str() + 20);
              });
    dir = std::filesystem::path(paths.back()).parent_path().string();
  }
  ::globfree(&found);
  return dir;
}

// Starts `argv` with stdout and stderr appended to `log`, as `run_as`.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log,
            const RunAs& run_as) {
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::close(fd);
  }
  // Its own process group: a Ctrl-C in the terminal goes to the test only.
  ::setpgid(0, 0);
  if (run_as.uid != static_cast<uid_t>(-1)) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(run_as.gid) != 0 ||
        ::setuid(run_as.uid) != 0) {
      ::_exit(126);
    }
  }
  // A test killed before its destructor runs (a timeout) takes the server
  // with it: fast shutdown once the test's thread is gone. Set after
  // setuid, which clears it.
  ::prctl(PR_SET_PDEATHSIG, SIGINT);
  if (::getppid() != parent) ::_exit(125);
  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

// Runs `argv` to its end; its exit status (or -1).
int RunToEnd(const std::vector<std::string>& argv, const std::string& log,
             const RunAs& run_as) {
  pid_t pid = Spawn(argv, log, run_as);
  if (pid < 0) return -1;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > 4000 ? all.substr(all.size() - 4000) : all;
}

// A loopback port nobody listens on now (the kernel's pick).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

void GiveTo(const std::string& path, const RunAs& run_as) {
  if (run_as.uid == static_cast<uid_t>(-1)) return;
  if (::chown(path.c_str(), run_as.uid, run_as.gid) != 0) {
    // Reported through the program that then cannot write there.
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start() {
  std::string bin = BinDir();
  if (bin.empty()) {
    return absl::FailedPreconditionError(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
        "tools/install-deps installs it");
  }
  RunAs run_as;
  if (::geteuid() == 0) {
    // postgres refuses to run as root.
    struct passwd* user = ::getpwnam("postgres");
    if (user == nullptr) {
      return absl::FailedPreconditionError(
          "running as root and there is no `postgres` user to run "
          "PostgreSQL as (Debian's postgresql-common creates it)");
    }
    run_as.uid = user->pw_uid;
    run_as.gid = user->pw_gid;
  }

  auto server = std::unique_ptr<PostgresServer>(new PostgresServer());
  char pattern[] = "/tmp/dsar-postgres.XXXXXX";
  if (::mkdtemp(pattern) == nullptr) {
    return absl::InternalError("mkdtemp failed");
  }
  server->dir_ = pattern;
  server->data_dir_ = server->dir_ + "/data";
  server->socket_dir_ = server->dir_ + "/socket";
  server->scratch_dir_ = server->dir_ + "/scratch";
  server->log_file_ = server->dir_ + "/postgres.log";
  std::filesystem::create_directory(server->socket_dir_);
  std::filesystem::create_directory(server->scratch_dir_);
  // The parent is 0700 (mkdtemp); the server's user must reach in.
  ::chmod(server->dir_.c_str(), 0755);
  GiveTo(server->dir_, run_as);
  GiveTo(server->socket_dir_, run_as);

  // TLS: a self-signed certificate for localhost and 127.0.0.1, which is
  // its own CA.
  std::string key = server->dir_ + "/server.key";
  server->ca_file_ = server->dir_ + "/server.crt";
  if (RunToEnd(
          {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "2",
           "-keyout", key, "-out", server->ca_file_},
          server->log_file_, RunAs{}) != 0) {
    return absl::InternalError(
        absl::StrCat("openssl req failed:\n", Tail(server->log_file_)));
  }
  ::chmod(key.c_str(), 0600);
  GiveTo(key, run_as);

  if (RunToEnd({bin + "/initdb", "-D", server->data_dir_, "-U", kSuperuser,
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                "--no-locale", "--no-sync", "--no-instructions"},
               server->log_file_, run_as) != 0) {
    return absl::InternalError(
        absl::StrCat("initdb failed:\n", Tail(server->log_file_)));
  }
  {
    std::ofstream hba(server->data_dir_ + "/pg_hba.conf", std::ios::trunc);
    hba << "local all all trust\n"
           "hostnossl all tls_worker 127.0.0.1/32 reject\n"
           "host all all 127.0.0.1/32 scram-sha-256\n"
           "host all all ::1/128 scram-sha-256\n";
  }

  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    server->port_ = FreePort();
    std::string port = absl::StrCat(server->port_);
    server->pid_ = Spawn({bin + "/postgres",
                          "-D",
                          server->data_dir_,
                          "-p",
                          port,
                          "-c",
                          "listen_addresses=127.0.0.1",
                          "-c",
                          "unix_socket_directories=" + server->socket_dir_,
                          "-c",
                          "fsync=off",
                          "-c",
                          "synchronous_commit=off",
                          "-c",
                          "full_page_writes=off",
                          "-c",
                          "ssl=on",
                          "-c",
                          "ssl_cert_file=" + server->ca_file_,
                          "-c",
                          "ssl_key_file=" + key},
                         server->log_file_, run_as);
    std::string conninfo = absl::StrCat("host=127.0.0.1 port=", port,
                                        " dbname=postgres connect_timeout=2");
    auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      // PQPING_OK: accepting connections. PQPING_REJECT is "starting up"
      // (or shutting down, or recovering): a statement sent now fails with
      // "the database system is starting up", so keep polling.
      PGPing ping = PQping(conninfo.c_str());
      if (ping == PQPING_OK) return server;
      int status = 0;
      if (::waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
        exited = true;
        server->pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(kPingInterval);
    }
    if (!exited) break;  // Timed out: stop it below.
    // Most likely the port was taken meanwhile: try another.
  }
  return absl::InternalError(
      absl::StrCat("postgres did not start:\n", Tail(server->log_file_)));
}

PostgresServer::~PostgresServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGINT);  // Fast shutdown: ends sessions, no checkpoint wait.
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  std::error_code error;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, error);
}

std::string PostgresServer::SuperuserConninfo(const std::string& dbname) const {
  return absl::StrCat("host=", socket_dir_, " port=", port_,
                      " user=", kSuperuser, " dbname=", dbname);
}

absl::StatusOr<std::string> PostgresServer::Query(
    const std::string& sql, const std::string& dbname) const {
  PGconn* conn = PQconnectdb(SuperuserConninfo(dbname).c_str());
  std::string error;
  std::string value;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    PGresult* result = PQexec(conn, sql.c_str());
    ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      error = PQresultErrorMessage(result);
    } else if (status == PGRES_TUPLES_OK) {
      if (PQntuples(result) == 0 || PQnfields(result) == 0) {
        error = "no rows";
      } else {
        value = PQgetisnull(result, 0, 0) ? "NULL" : PQgetvalue(result, 0, 0);
      }
    }
    PQclear(result);
  }
  PQfinish(conn);
  if (!error.empty()) {
    return absl::InternalError(absl::StrCat(sql, ": ", error));
  }
  return value;
}

absl::Status PostgresServer::Exec(const std::string& sql,
                                  const std::string& dbname) const {
  PGconn* conn = PQconnectdb(SuperuserConninfo(dbname).c_str());
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    PGresult* result = PQexec(conn, sql.c_str());
    ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      error = PQresultErrorMessage(result);
    }
    PQclear(result);
  }
  PQfinish(conn);
  if (!error.empty()) {
    return absl::InternalError(absl::StrCat(sql, ": ", error));
  }
  return absl::OkStatus();
}

}  // namespace dsar::testing
