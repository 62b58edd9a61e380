// dsar-delivery-bench: the delivery of one large access answer, on the path
// users run (issue 10): a real dsar-worker exports a JSON-lines store over
// gRPC (UploadArtifact), dsard builds and encrypts the bundle, and
// dsar-gateway serves GET /v1/downloads/{id} to an HTTP(S) client that
// hashes the body and throws it away; the same bundle is also fetched with
// DownloadBundle straight from dsard. A benchmark, not a test: it prints
// figures next to baselines measured in the same run (raw AES-256-GCM,
// SHA-256 and deflate on this machine) and the peak RSS of every process.
//
//   dsar-delivery-bench [--export_mb=2048] [--small_export_mb=-1]
//                       [--downloads=3] [--dir=DIR] [--keep]
//
// Per export size (the small one first; 0 skips it), in a fresh directory
// and fresh processes: tools/dev-pki certificates, dsard under mutual TLS,
// one worker, two gateways reaching dsard with the gateway certificate (one
// serving HTTPS, one plain HTTP on loopback), an inventory with one JSON-lines
// store in which one person has about --export_mb MiB of records. An
// operator (mutual TLS) creates a verified ACCESS request and waits for it;
// the phases come from the request's events: export + upload (the Export
// task, lease to completion) and bundle (the Bundle task, start to
// completion). Then --downloads rounds of: HTTPS through the gateway, plain
// HTTP through the gateway, DownloadBundle over gRPC (each body's size and
// SHA-256 checked against the bundle's), and HTTPS again with curl when it
// is installed (size checked); each with a fresh signed URL; medians
// reported. RSS (VmHWM and VmRSS from /proc/<pid>/status) after each round
// and at the end. tools/bench-delivery builds and runs it; figures and
// their reading in docs/BENCHMARKS.md.
//
// Units: sizes in MiB, rates in MiB/s (openssl's "k" of 1000 bytes
// converted).

#include <grpcpp/grpcpp.h>
#include <httplib.h>  // CPPHTTPLIB_* come from its pkg-config file.
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/grpc_tls.h"
#include "common/program_usage.h"
#include "common/sha256.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "tests/bundle_download.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"
#include "tools/bench_stats.h"

ABSL_FLAG(int64_t, export_mb, 2048,
          "Size of the large export (the subject's records as the worker "
          "uploads them), MiB.");
ABSL_FLAG(int64_t, small_export_mb, -1,
          "Size of the small export measured first, MiB; -1: --export_mb / "
          "8; 0: skip it.");
ABSL_FLAG(int, downloads, 3, "Downloads per protocol; medians are reported.");
ABSL_FLAG(int, record_bytes, 1024, "Approximate size of one record (line).");
ABSL_FLAG(double, baseline_seconds, 2, "Duration of each baseline loop.");
ABSL_FLAG(std::string, dir, "",
          "Scratch directory (must not exist); default a new one under "
          "$TMPDIR or /tmp. Removed at the end unless --keep.");
ABSL_FLAG(bool, keep, false, "Keep the scratch directory (logs, stores).");
ABSL_FLAG(std::string, gateway, DSAR_BENCH_GATEWAY_PATH,
          "The dsar-gateway binary.");
ABSL_FLAG(std::string, dev_pki, DSAR_BENCH_DEV_PKI_PATH,
          "tools/dev-pki (makes the certificates).");
ABSL_FLAG(absl::Duration, request_timeout, absl::Hours(2),
          "Longest wait for the access request to complete.");

namespace dsar {
namespace {

namespace fs = std::filesystem;
using bench::Clock;
using bench::Median;
using bench::Seconds;

constexpr double kMiB = 1024.0 * 1024.0;
constexpr char kStore[] = "activity";
constexpr char kSubject[] = "big.exporter@example.com";

double MiB(int64_t bytes) { return static_cast<double>(bytes) / kMiB; }

void Die(const absl::Status& status) {
  std::fprintf(stderr, "dsar-delivery-bench: %s\n", status.ToString().c_str());
  std::exit(1);
}

template <typename T>
T ValueOrDie(absl::StatusOr<T> value) {
  if (!value.ok()) Die(value.status());
  return *std::move(value);
}

// ---- The store ----------------------------------------------------------

// SplitMix64: the same store for the same flags, with any standard library.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

const char* const kActions[] = {"login",  "view_item",     "view_item",
                                "search", "add_to_cart",   "checkout",
                                "logout", "update_profile"};
const char* const kAgents[] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "ExampleShopApp/3.4 (Android 14)"};
const char* const kWords[] = {
    "lamp",   "desk",     "chair",   "oak",      "walnut",  "steel",
    "blue",   "green",    "large",   "small",    "set",     "of",
    "two",    "four",     "with",    "without",  "cushion", "drawer",
    "shelf",  "mug",      "clock",   "rug",      "wool",    "cotton",
    "gift",   "wrap",     "express", "delivery", "return",  "review",
    "stars",  "great",    "broken",  "arrived",  "late",    "early",
    "colour", "size",     "fits",    "perfect",  "would",   "buy",
    "again",  "customer", "service", "question", "answer",  "refund"};

// One activity line: compact JSON (the export writer reprints it byte for
// byte), about `record_bytes` long with the newline.
std::string ActivityLine(Random& random, const std::string& email,
                         int record_bytes) {
  std::string line = absl::StrCat(
      absl::StrFormat("{\"ts\":\"2024-%02d-%02dT%02d:%02d:%02dZ\"",
                      1 + random.Below(12), 1 + random.Below(28),
                      random.Below(24), random.Below(60), random.Below(60)),
      ",\"email\":\"", email, "\",\"session\":\"",
      absl::Hex(random.Next(), absl::kZeroPad16), "\",\"ip\":\"203.0.113.",
      1 + random.Below(254), "\",\"action\":\"",
      kActions[random.Below(std::size(kActions))], "\",\"page\":\"/item/",
      random.Below(100000), "\",\"user_agent\":\"",
      kAgents[random.Below(std::size(kAgents))], "\",\"note\":\"");
  while (static_cast<int>(line.size()) < record_bytes - 3) {
    absl::StrAppend(&line, kWords[random.Below(std::size(kWords))], " ");
  }
  line.pop_back();
  absl::StrAppend(&line, "\"}\n");
  return line;
}

struct StoreFacts {
  std::string inventory;
  int64_t store_bytes = 0;
  int64_t subject_records = 0;
  int64_t other_records = 0;
  // What ExportWriter writes for the subject: {"store":..,"records":[..]}.
  int64_t export_bytes = 0;
};

// `dir`/activity.jsonl, where kSubject has records adding up to about
// `export_bytes` of export (one other person's line per 10 of theirs, so the
// scan also skips lines), and `dir`/inventory.yaml naming it.
absl::StatusOr<StoreFacts> WriteStore(const std::string& dir,
                                      int64_t export_bytes, int record_bytes) {
  StoreFacts facts;
  std::string path = dir + "/activity.jsonl";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat("cannot create ", path));
  Random random(42);
  const std::string record_prefix = absl::StrCat(
      "{\"collection\":\"", kStore, "\",\"data\":");  // + line + "}" + ","
  facts.export_bytes =
      static_cast<int64_t>(absl::StrCat("{\"store\":\"", kStore,
                                        "\",\"records\":[]}")
                               .size()) -
      1;  // The first record has no comma before it.
  std::string buffer;
  while (facts.export_bytes < export_bytes) {
    std::string line = ActivityLine(random, kSubject, record_bytes);
    facts.export_bytes +=
        static_cast<int64_t>(record_prefix.size() + line.size() - 1 + 1 + 1);
    ++facts.subject_records;
    buffer += line;
    if (facts.subject_records % 10 == 0) {
      buffer += ActivityLine(
          random, absl::StrCat("someone", random.Below(1000), "@example.com"),
          record_bytes);
      ++facts.other_records;
    }
    if (buffer.size() >= (1 << 20)) {
      out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      facts.store_bytes += static_cast<int64_t>(buffer.size());
      buffer.clear();
    }
  }
  out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
  facts.store_bytes += static_cast<int64_t>(buffer.size());
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));

  facts.inventory = dir + "/inventory.yaml";
  std::ofstream inventory(facts.inventory, std::ios::trunc);
  inventory << "controller: \"Benchmark Shop Ltd\"\n"
               "stores:\n"
               "  - name: "
            << kStore
            << "\n"
               "    kind: jsonl\n"
               "    path: activity.jsonl\n"
               "    purpose: \"Security monitoring\"\n"
               "    legal_basis: \"Legitimate interests (GDPR Art. "
               "6(1)(f))\"\n"
               "    identity_fields: {email: email}\n"
               "    pii_fields: {email: contact, ip: online_identifiers, "
               "user_agent: online_identifiers, session: online_identifiers, "
               "action: usage, page: usage, note: usage, ts: usage}\n";
  inventory.close();
  if (!inventory) return absl::InternalError("cannot write the inventory");
  return facts;
}

// ---- Baselines ----------------------------------------------------------

// In-process AES-256-GCM over 64 KiB chunks (the chunk of the encrypted file
// format, docs/storage.md), a fresh nonce and tag per chunk, for about
// `seconds`: MiB/s.
double AesGcmMiBps(double seconds) {
  std::string key(32, '\0'), nonce(12, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), 32);
  std::string in(64 * 1024, 'x'), out(in.size() + 16, '\0');
  unsigned char tag[16];
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  int64_t bytes = 0;
  Clock::time_point start = Clock::now();
  uint64_t counter = 0;
  while (Seconds(start) < seconds) {
    for (int i = 0; i < 64; ++i) {
      ++counter;
      std::memcpy(nonce.data(), &counter, sizeof(counter));
      int len = 0;
      EVP_EncryptInit_ex(ctx, nullptr, nullptr,
                         reinterpret_cast<const unsigned char*>(key.data()),
                         reinterpret_cast<const unsigned char*>(nonce.data()));
      EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                        reinterpret_cast<const unsigned char*>(in.data()),
                        static_cast<int>(in.size()));
      EVP_EncryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()),
                          &len);
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag);
      bytes += static_cast<int64_t>(in.size());
    }
  }
  double elapsed = Seconds(start);
  EVP_CIPHER_CTX_free(ctx);
  return MiB(bytes) / elapsed;
}

// In-process SHA-256 (common/sha256.h, as dsard and the client hash) over
// 256 KiB pieces for about `seconds`: MiB/s.
double Sha256MiBps(double seconds) {
  std::string piece(256 * 1024, 'y');
  Sha256 hash;
  int64_t bytes = 0;
  Clock::time_point start = Clock::now();
  while (Seconds(start) < seconds) {
    for (int i = 0; i < 16; ++i) hash.Update(piece);
    bytes += 16 * static_cast<int64_t>(piece.size());
  }
  double elapsed = Seconds(start);
  hash.FinishHex();
  return MiB(bytes) / elapsed;
}

// `openssl speed -evp aes-256-gcm -bytes 65536`: MiB/s, or nullopt when the
// openssl CLI is missing or its output is not understood.
std::optional<double> OpensslSpeedAesGcmMiBps(const std::string& log,
                                              double seconds) {
  absl::StatusOr<int> code = testing::RunToExit(
      "/bin/sh",
      {"-c", absl::StrCat("exec openssl speed -evp aes-256-gcm -bytes 65536 "
                          "-seconds ",
                          std::max(1, static_cast<int>(seconds + 0.5)))},
      log, absl::Minutes(1));
  if (!code.ok() || *code != 0) return std::nullopt;
  // The last line: "AES-256-GCM    5901086.51k" (1000s of bytes per second).
  std::optional<double> result;
  for (absl::string_view line :
       absl::StrSplit(testing::ReadFileOrEmpty(log), '\n')) {
    if (!absl::StartsWithIgnoreCase(line, "aes-256-gcm")) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    absl::string_view value = fields.back();
    double thousands = 0;
    if (absl::ConsumeSuffix(&value, "k") &&
        absl::SimpleAtod(value, &thousands)) {
      result = thousands * 1000 / kMiB;
    }
  }
  return result;
}

struct DeflateFigure {
  int level = 0;
  double mib_per_second = 0;
  double ratio = 0;  // Input bytes per output byte.
};

// zlib deflate (raw, as in a ZIP entry) of `sample` at `level`, in 64 KiB
// inputs as libzip feeds it.
DeflateFigure Deflate(const std::string& sample, int level) {
  z_stream stream{};
  deflateInit2(&stream, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(1 << 20, '\0');
  int64_t produced = 0;
  Clock::time_point start = Clock::now();
  for (size_t offset = 0; offset < sample.size(); offset += 64 * 1024) {
    size_t n = std::min<size_t>(64 * 1024, sample.size() - offset);
    stream.next_in =
        reinterpret_cast<Bytef*>(const_cast<char*>(sample.data() + offset));
    stream.avail_in = static_cast<uInt>(n);
    int flush = offset + n == sample.size() ? Z_FINISH : Z_NO_FLUSH;
    do {
      stream.next_out = reinterpret_cast<Bytef*>(out.data());
      stream.avail_out = static_cast<uInt>(out.size());
      deflate(&stream, flush);
      produced += static_cast<int64_t>(out.size() - stream.avail_out);
    } while (stream.avail_out == 0);
  }
  double elapsed = Seconds(start);
  deflateEnd(&stream);
  return {level, MiB(static_cast<int64_t>(sample.size())) / elapsed,
          static_cast<double>(sample.size()) / static_cast<double>(produced)};
}

struct Baselines {
  std::vector<double> aes_gcm;          // In-process, MiB/s.
  std::vector<double> openssl_aes_gcm;  // openssl speed, MiB/s.
  std::vector<double> sha256;
  std::vector<DeflateFigure> deflate;  // Levels 1, 6, 9 on the store's data.

  void Measure(const std::string& log, double seconds) {
    aes_gcm.push_back(AesGcmMiBps(seconds));
    sha256.push_back(Sha256MiBps(seconds));
    if (std::optional<double> speed = OpensslSpeedAesGcmMiBps(log, seconds)) {
      openssl_aes_gcm.push_back(*speed);
    }
    std::printf(
        "  baseline: AES-256-GCM %.0f MiB/s in-process, %s MiB/s openssl "
        "speed; SHA-256 %.0f MiB/s\n",
        aes_gcm.back(),
        openssl_aes_gcm.empty()
            ? "(no openssl CLI)"
            : absl::StrCat(static_cast<int64_t>(openssl_aes_gcm.back()))
                  .c_str(),
        sha256.back());
  }
  // The raw AES-256-GCM figure ratios are taken against: openssl speed's
  // median, or the in-process one without the CLI.
  double AesGcm() const {
    return openssl_aes_gcm.empty() ? Median(aes_gcm) : Median(openssl_aes_gcm);
  }
};

// ---- Processes ----------------------------------------------------------

// A field in kB of /proc/`pid`/status ("VmHWM": the peak resident set,
// "VmRSS": the current one) in MiB; 0 when unreadable.
double StatusMiB(pid_t pid, absl::string_view field) {
  std::string status =
      testing::ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/status"));
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, field) || !absl::ConsumePrefix(&line, ":"))
      continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, " kB");
    int64_t kb = 0;
    if (absl::SimpleAtoi(line, &kb)) return static_cast<double>(kb) / 1024;
  }
  return 0;
}

double PeakRssMiB(pid_t pid) { return StatusMiB(pid, "VmHWM"); }

struct Cluster {
  std::string pki;
  testing::RunningDsard dsard;
  std::unique_ptr<testing::Process> worker;
  std::unique_ptr<testing::Process> https_gateway;
  int https_port = 0;
  std::unique_ptr<testing::Process> http_gateway;
  int http_port = 0;

  std::string Pem(const std::string& name) const {
    return absl::StrCat(pki, "/", name, ".pem");
  }
  std::string Key(const std::string& name) const {
    return absl::StrCat(pki, "/", name, ".key");
  }
  std::shared_ptr<grpc::ChannelCredentials> Credentials(
      const std::string& name) const {
    return ValueOrDie(
        ChannelCredentialsFor({Pem("ca"), Pem(name), Key(name)}, "tls_"));
  }
};

absl::StatusOr<std::unique_ptr<testing::Process>> StartGateway(
    const Cluster& cluster, const std::string& dir, const std::string& name,
    bool https, int* port) {
  std::string port_file = absl::StrCat(dir, "/", name, ".port");
  std::vector<std::string> args = {
      "--listen=127.0.0.1:0", "--port_file=" + port_file,
      absl::StrCat("--coordinator=127.0.0.1:", cluster.dsard.port),
      "--coordinator_tls_ca=" + cluster.Pem("ca"),
      "--coordinator_tls_cert=" + cluster.Pem("gateway"),
      "--coordinator_tls_key=" + cluster.Key("gateway"),
      // Downloads need no token; the gateway needs a key to start.
      "--jwt_hs256_secret_file=" + dir + "/jwt.secret"};
  if (https) {
    args.push_back("--tls_cert=" + cluster.Pem("gateway-https"));
    args.push_back("--tls_key=" + cluster.Key("gateway-https"));
  }
  absl::StatusOr<std::unique_ptr<testing::Process>> process =
      testing::Process::Start(absl::GetFlag(FLAGS_gateway), args,
                              absl::StrCat(dir, "/", name, ".log"));
  if (!process.ok()) return process.status();
  absl::StatusOr<int> bound =
      testing::WaitForPortFile(port_file, absl::Seconds(30), process->get());
  if (!bound.ok()) return bound.status();
  *port = *bound;
  return process;
}

absl::StatusOr<Cluster> StartCluster(const std::string& dir,
                                     const std::string& pki,
                                     const std::string& inventory) {
  Cluster cluster;
  cluster.pki = pki;
  testing::DsardOptions dsard;
  dsard.data_dir = dir + "/data";
  dsard.inventory = inventory;
  dsard.extra_args = {"--tls_cert=" + cluster.Pem("dsard"),
                      "--tls_key=" + cluster.Key("dsard"),
                      "--tls_client_ca=" + cluster.Pem("ca")};
  dsard.client_credentials = cluster.Credentials("operator");
  absl::StatusOr<testing::RunningDsard> started =
      testing::StartDsard(dsard, dir);
  if (!started.ok()) return started.status();
  cluster.dsard = *std::move(started);

  testing::WorkerOptions worker;
  worker.coordinator_port = cluster.dsard.port;
  worker.inventory = inventory;
  worker.worker_id = "worker-1";
  worker.extra_args = {"--tls_ca=" + cluster.Pem("ca"),
                       "--tls_cert=" + cluster.Pem("worker-1"),
                       "--tls_key=" + cluster.Key("worker-1")};
  absl::StatusOr<std::unique_ptr<testing::Process>> started_worker =
      testing::StartWorker(worker, dir);
  if (!started_worker.ok()) return started_worker.status();
  cluster.worker = *std::move(started_worker);

  std::string secret(32, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), 32);
  std::ofstream(dir + "/jwt.secret") << absl::BytesToHexString(secret);
  absl::StatusOr<std::unique_ptr<testing::Process>> https = StartGateway(
      cluster, dir, "gateway-https", /*https=*/true, &cluster.https_port);
  if (!https.ok()) return https.status();
  cluster.https_gateway = *std::move(https);
  absl::StatusOr<std::unique_ptr<testing::Process>> http = StartGateway(
      cluster, dir, "gateway-http", /*https=*/false, &cluster.http_port);
  if (!http.ok()) return http.status();
  cluster.http_gateway = *std::move(http);
  return cluster;
}

// ---- Downloads ----------------------------------------------------------

struct Downloaded {
  double seconds = 0;
  int64_t bytes = 0;
  std::string sha256;
  std::string tail;  // The last bytes (up to kTailBytes): the ZIP directory.
};

constexpr size_t kTailBytes = 1 << 20;

// Accumulates a body: size, hash, and its last kTailBytes.
class BodySink {
 public:
  void Add(const char* data, size_t n) {
    hash_.Update(std::string_view(data, n));
    bytes_ += static_cast<int64_t>(n);
    tail_.append(data, n);
    if (tail_.size() > 2 * kTailBytes) {
      tail_.erase(0, tail_.size() - kTailBytes);
    }
  }
  Downloaded Finish(double seconds) {
    Downloaded done;
    done.seconds = seconds;
    done.bytes = bytes_;
    done.sha256 = hash_.FinishHex();
    if (tail_.size() > kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
    done.tail = std::move(tail_);
    return done;
  }

 private:
  Sha256 hash_;
  int64_t bytes_ = 0;
  std::string tail_;
};

absl::StatusOr<std::string> CreateUrl(v1::DsarService::Stub& stub,
                                      const std::string& id) {
  v1::CreateDownloadUrlRequest create;
  create.set_id(id);
  v1::CreateDownloadUrlResponse url;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  grpc::Status status = stub.CreateDownloadUrl(&context, create, &url);
  if (!status.ok()) return testing::ToAbsl(status);
  return url.url();
}

// GET `url` through the gateway at `port`; the body hashed, not kept.
absl::StatusOr<Downloaded> HttpDownload(const Cluster& cluster, bool https,
                                        int port, const std::string& url) {
  std::unique_ptr<httplib::Client> client;
  if (https) {
    client = std::make_unique<httplib::Client>(
        absl::StrCat("https://127.0.0.1:", port));
    client->set_ca_cert_path(cluster.Pem("ca"));
    client->enable_server_certificate_verification(true);
  } else {
    client = std::make_unique<httplib::Client>("127.0.0.1", port);
  }
  client->set_read_timeout(600, 0);
  BodySink sink;
  Clock::time_point start = Clock::now();
  httplib::Result result =
      client->Get(url.c_str(), [&](const char* data, size_t n) {
        sink.Add(data, n);
        return true;
      });
  double seconds = Seconds(start);
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("GET ", url, ": ", httplib::to_string(result.error())));
  }
  if (result->status != 200) {
    return absl::InternalError(
        absl::StrCat("GET ", url, ": HTTP ", result->status));
  }
  return sink.Finish(seconds);
}

// GET `url` over HTTPS with curl (body to /dev/null; size checked, not the
// hash): a second client, to see whether the in-process one limits.
absl::StatusOr<Downloaded> CurlDownload(const Cluster& cluster, int port,
                                        const std::string& url,
                                        const std::string& log) {
  std::remove(log.c_str());  // RunToExit appends.
  absl::StatusOr<int> code = testing::RunToExit(
      "/bin/sh",
      {"-c",
       absl::StrCat("exec curl -sS -o /dev/null --cacert '", cluster.Pem("ca"),
                    "' -w '%{size_download} %{time_total}' "
                    "'https://127.0.0.1:",
                    port, url, "'")},
      log, absl::Hours(1));
  if (!code.ok()) return code.status();
  std::string out = testing::ReadFileOrEmpty(log);
  std::vector<std::string> fields = absl::StrSplit(out, ' ');
  Downloaded done;
  if (*code != 0 || fields.size() != 2 ||
      !absl::SimpleAtoi(fields[0], &done.bytes) ||
      !absl::SimpleAtod(fields[1], &done.seconds)) {
    return absl::InternalError(absl::StrCat("curl exited ", *code, ": ", out));
  }
  return done;
}

// DownloadBundle straight from dsard, as the operator.
absl::StatusOr<Downloaded> GrpcDownload(v1::DsarService::Stub& stub,
                                        const std::string& url) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Hours(1)));
  BodySink sink;
  Clock::time_point start = Clock::now();
  std::unique_ptr<grpc::ClientReader<v1::DownloadBundleResponse>> reader =
      stub.DownloadBundle(&context, testing::DownloadRequestFromUrl(url));
  v1::DownloadBundleResponse message;
  while (reader->Read(&message)) {
    if (message.has_chunk()) {
      sink.Add(message.chunk().data(), message.chunk().size());
    }
  }
  grpc::Status status = reader->Finish();
  double seconds = Seconds(start);
  if (!status.ok()) return testing::ToAbsl(status);
  return sink.Finish(seconds);
}

// ---- The ZIP's central directory ------------------------------------------

struct ZipEntrySize {
  std::string name;
  uint64_t compressed = 0;
  uint64_t uncompressed = 0;
};

uint64_t Le(const std::string& bytes, size_t at, int width) {
  uint64_t value = 0;
  for (int i = width - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  }
  return value;
}

// The entries' sizes from the central directory in `tail` (the last bytes
// of a ZIP), ZIP64 included.
absl::StatusOr<std::vector<ZipEntrySize>> ZipEntrySizes(
    const std::string& tail) {
  size_t eocd = tail.rfind(std::string("PK\x05\x06", 4));
  if (eocd == std::string::npos || eocd + 22 > tail.size()) {
    return absl::DataLossError("no end of central directory in the tail");
  }
  uint64_t entries = Le(tail, eocd + 10, 2);
  uint64_t cd_size = Le(tail, eocd + 12, 4);
  size_t cd_end = eocd;
  if (eocd >= 20 && tail.compare(eocd - 20, 4, "PK\x06\x07") == 0) {
    size_t zip64 = tail.rfind(std::string("PK\x06\x06", 4), eocd - 20);
    if (zip64 == std::string::npos) {
      return absl::DataLossError("ZIP64 locator without its record");
    }
    entries = Le(tail, zip64 + 32, 8);
    cd_size = Le(tail, zip64 + 40, 8);
    cd_end = zip64;
  }
  if (cd_size > cd_end) {
    return absl::DataLossError("central directory larger than the tail");
  }
  std::vector<ZipEntrySize> sizes;
  size_t at = cd_end - cd_size;
  for (uint64_t i = 0; i < entries; ++i) {
    if (at + 46 > cd_end || tail.compare(at, 4, "PK\x01\x02") != 0) {
      return absl::DataLossError("bad central directory entry");
    }
    ZipEntrySize entry;
    entry.compressed = Le(tail, at + 20, 4);
    entry.uncompressed = Le(tail, at + 24, 4);
    size_t name_length = Le(tail, at + 28, 2);
    size_t extra_length = Le(tail, at + 30, 2);
    size_t comment_length = Le(tail, at + 32, 2);
    entry.name = tail.substr(at + 46, name_length);
    // ZIP64 extra field: the 8-byte sizes whose 4-byte field is all ones,
    // uncompressed first.
    size_t extra = at + 46 + name_length;
    for (size_t e = extra; e + 4 <= extra + extra_length;) {
      uint64_t id = Le(tail, e, 2), length = Le(tail, e + 2, 2);
      if (id == 1) {
        size_t field = e + 4;
        if (entry.uncompressed == 0xffffffff) {
          entry.uncompressed = Le(tail, field, 8);
          field += 8;
        }
        if (entry.compressed == 0xffffffff)
          entry.compressed = Le(tail, field, 8);
      }
      e += 4 + length;
    }
    sizes.push_back(entry);
    at = extra + extra_length + comment_length;
  }
  return sizes;
}

// ---- One export size -----------------------------------------------------

struct Phase {
  std::string name;
  double seconds = 0;
};

struct SizeResult {
  StoreFacts store;
  int64_t export_bytes = 0;  // data/<store>.json in the ZIP.
  int64_t export_compressed = 0;
  int64_t bundle_bytes = 0;
  double end_to_end_seconds = 0;  // Create to COMPLETED, client clock.
  double export_seconds = 0;      // Export task: leased to completed.
  double bundle_seconds = 0;      // Bundle task: started to completed.
  std::vector<Phase> phases;
  std::map<std::string, std::vector<double>> download_seconds;  // Protocol.
  std::map<std::string, double> peak_rss_mib;                   // Process.
};

double EventSeconds(const v1::Event& event) {
  return static_cast<double>(event.time().seconds()) +
         event.time().nanos() / 1e9;
}

SizeResult RunSize(const std::string& root, const std::string& pki,
                   int64_t export_mb, Baselines& baselines) {
  SizeResult result;
  std::string dir = absl::StrCat(root, "/export-", export_mb, "mb");
  fs::create_directories(dir);
  std::printf("\n== export of about %lld MiB (%s)\n",
              static_cast<long long>(export_mb), dir.c_str());
  std::fflush(stdout);

  Clock::time_point made = Clock::now();
  result.store = ValueOrDie(WriteStore(dir, export_mb * (1 << 20),
                                       absl::GetFlag(FLAGS_record_bytes)));
  std::printf(
      "  store: %.0f MiB, %lld records of the subject, %lld of others "
      "(written in %.1f s)\n",
      MiB(result.store.store_bytes),
      static_cast<long long>(result.store.subject_records),
      static_cast<long long>(result.store.other_records), Seconds(made));
  baselines.Measure(dir + "/openssl-speed.log",
                    absl::GetFlag(FLAGS_baseline_seconds));

  Cluster cluster = ValueOrDie(StartCluster(dir, pki, result.store.inventory));
  auto stub = v1::DsarService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", cluster.dsard.port),
                          cluster.Credentials("operator")));

  v1::CreateRequestRequest create =
      testing::RequestForEmail(v1::ACCESS, kSubject, "delivery-bench");
  create.mutable_verified()->set_method("id_document");
  create.mutable_verified()->set_evidence_ref("bench");
  v1::Request created;
  Clock::time_point start = Clock::now();
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    grpc::Status status = stub->CreateRequest(&context, create, &created);
    if (!status.ok()) Die(testing::ToAbsl(status));
  }
  v1::Request done = ValueOrDie(testing::WaitUntilTerminal(
      *stub, created.id(), absl::GetFlag(FLAGS_request_timeout)));
  result.end_to_end_seconds = Seconds(start);
  if (done.status() != v1::COMPLETED) {
    Die(absl::InternalError(absl::StrCat(
        "request ", done.id(), " ended ", v1::RequestStatus_Name(done.status()),
        ": ", done.error(), " (logs in ", dir, ")")));
  }
  result.bundle_bytes = done.bundle().size_bytes();

  // Phases from the events: lease (or start) to completion of each task.
  std::vector<v1::Event> events =
      ValueOrDie(testing::ListAllEvents(*stub, done.id()));
  std::map<std::string, double> began;
  for (const v1::Event& event : events) {
    std::string task = event.store().empty()
                           ? event.state()
                           : absl::StrCat(event.state(), "/", event.store());
    if (event.kind() == "task_leased" || event.kind() == "task_started") {
      began[task] = EventSeconds(event);
    } else if (event.kind() == "task_completed" && began.count(task)) {
      double seconds = EventSeconds(event) - began[task];
      result.phases.push_back({task, seconds});
      if (event.state() == "Export") result.export_seconds += seconds;
      if (event.state() == "Bundle") result.bundle_seconds += seconds;
    }
  }

  std::vector<std::string> protocols = {"HTTPS via gateway", "HTTP via gateway",
                                        "gRPC DownloadBundle"};
  // curl as a second HTTPS client, when installed.
  if (testing::RunToExit("/bin/sh", {"-c", "command -v curl"},
                         dir + "/curl-found.log", absl::Seconds(10))
          .value_or(1) == 0) {
    protocols.push_back("HTTPS via gateway, curl");
  }
  // Peaks as the downloads go: growth with the number of downloads rather
  // than with the bundle's size points at allocator arenas, not buffering.
  auto print_peaks = [&](const std::string& when) {
    auto both = [](pid_t pid) {
      return absl::StrFormat("%.1f/%.1f", StatusMiB(pid, "VmHWM"),
                             StatusMiB(pid, "VmRSS"));
    };
    std::printf(
        "  RSS peak/now %s: dsard %s, gateway (HTTPS) %s, gateway (HTTP) "
        "%s MiB\n",
        when.c_str(), both(cluster.dsard.process->pid()).c_str(),
        both(cluster.https_gateway->pid()).c_str(),
        both(cluster.http_gateway->pid()).c_str());
  };
  print_peaks("before the downloads");
  for (int round = 1; round <= absl::GetFlag(FLAGS_downloads); ++round) {
    for (const std::string& protocol : protocols) {
      std::string url = ValueOrDie(CreateUrl(*stub, done.id()));
      absl::StatusOr<Downloaded> got =
          protocol == "gRPC DownloadBundle" ? GrpcDownload(*stub, url)
          : protocol == "HTTPS via gateway"
              ? HttpDownload(cluster, true, cluster.https_port, url)
          : protocol == "HTTP via gateway"
              ? HttpDownload(cluster, false, cluster.http_port, url)
              : CurlDownload(cluster, cluster.https_port, url,
                             dir + "/curl.log");
      if (!got.ok()) Die(got.status());
      const bool hashed = !got->sha256.empty();
      if (got->bytes != done.bundle().size_bytes() ||
          (hashed && got->sha256 != done.bundle().sha256())) {
        Die(absl::DataLossError(absl::StrCat(
            protocol, ": ", got->bytes, " bytes sha256 ", got->sha256,
            ", the bundle is ", done.bundle().size_bytes(), " bytes ",
            done.bundle().sha256())));
      }
      if (result.export_bytes == 0 && !got->tail.empty()) {
        for (const ZipEntrySize& entry : ValueOrDie(ZipEntrySizes(got->tail))) {
          if (entry.name == absl::StrCat("data/", kStore, ".json")) {
            result.export_bytes = static_cast<int64_t>(entry.uncompressed);
            result.export_compressed = static_cast<int64_t>(entry.compressed);
          }
        }
      }
      result.download_seconds[protocol].push_back(got->seconds);
      std::printf("  download %d, %s: %.2f s, %.0f MiB/s (%s ok)\n", round,
                  protocol.c_str(), got->seconds,
                  MiB(got->bytes) / got->seconds, hashed ? "SHA-256" : "size");
      std::fflush(stdout);
    }
    print_peaks(absl::StrCat("after round ", round));
  }

  result.peak_rss_mib["dsard"] = PeakRssMiB(cluster.dsard.process->pid());
  result.peak_rss_mib["dsar-worker"] = PeakRssMiB(cluster.worker->pid());
  result.peak_rss_mib["gateway (HTTPS)"] =
      PeakRssMiB(cluster.https_gateway->pid());
  result.peak_rss_mib["gateway (HTTP)"] =
      PeakRssMiB(cluster.http_gateway->pid());
  cluster.http_gateway->Terminate();
  cluster.https_gateway->Terminate();
  cluster.worker->Terminate();
  cluster.dsard.process->Terminate();

  std::printf(
      "  request %s: export %.1f MiB (store check: %.1f MiB expected), "
      "deflated to %.1f MiB (%.2fx); bundle %.1f MiB\n",
      done.id().c_str(), MiB(result.export_bytes),
      MiB(result.store.export_bytes), MiB(result.export_compressed),
      result.export_compressed > 0
          ? static_cast<double>(result.export_bytes) / result.export_compressed
          : 0,
      MiB(result.bundle_bytes));
  for (const Phase& phase : result.phases) {
    std::printf("  phase %-20s %8.1f s\n", phase.name.c_str(), phase.seconds);
  }
  std::printf("  create to COMPLETED %.1f s\n", result.end_to_end_seconds);
  for (const auto& [process, mib] : result.peak_rss_mib) {
    std::printf("  peak RSS %-16s %7.1f MiB\n", process.c_str(), mib);
  }
  std::fflush(stdout);
  return result;
}

void PrintSummary(const std::vector<SizeResult>& sizes,
                  const Baselines& baselines) {
  const double aes = baselines.AesGcm();
  std::printf("\n== summary (medians; MiB = 2^20 bytes)\n");
  std::printf(
      "baselines (median of %zu): AES-256-GCM %.0f MiB/s (openssl speed "
      "-evp aes-256-gcm -bytes 65536%s), in-process %.0f MiB/s; SHA-256 "
      "%.0f MiB/s\n",
      baselines.aes_gcm.size(), aes,
      baselines.openssl_aes_gcm.empty() ? ": CLI missing, in-process used" : "",
      Median(baselines.aes_gcm), Median(baselines.sha256));
  for (const DeflateFigure& figure : baselines.deflate) {
    std::printf("deflate level %d on the store's data: %.0f MiB/s, %.2fx\n",
                figure.level, figure.mib_per_second, figure.ratio);
  }
  for (const SizeResult& size : sizes) {
    double export_mib = MiB(size.export_bytes);
    double bundle_mib = MiB(size.bundle_bytes);
    std::printf("\nexport %.0f MiB -> bundle %.0f MiB (%.2fx smaller)\n",
                export_mib, bundle_mib,
                bundle_mib > 0 ? export_mib / bundle_mib : 0);
    std::printf("  %-34s %9s %12s %10s\n", "", "seconds", "MiB/s", "/ AES-GCM");
    auto row = [&](const char* name, double seconds, double mib) {
      std::printf("  %-34s %9.1f %12.1f %10.4f\n", name, seconds, mib / seconds,
                  mib / seconds / aes);
    };
    row("export + upload (export)", size.export_seconds, export_mib);
    row("bundle build (export in)", size.bundle_seconds, export_mib);
    for (const auto& [protocol, seconds] : size.download_seconds) {
      row(absl::StrCat("download ", protocol).c_str(), Median(seconds),
          bundle_mib);
    }
    for (const DeflateFigure& figure : baselines.deflate) {
      std::printf(
          "  deflate alone at level %d would take %.1f s of the bundle's "
          "%.1f s\n",
          figure.level, export_mib / figure.mib_per_second,
          size.bundle_seconds);
    }
    std::printf("  create to COMPLETED: %.1f s\n", size.end_to_end_seconds);
    for (const auto& [process, mib] : size.peak_rss_mib) {
      std::printf("  peak RSS %-18s %7.1f MiB\n", process.c_str(), mib);
    }
  }
  if (sizes.size() == 2) {
    std::printf("\npeak RSS, small -> large export (%.0f -> %.0f MiB):\n",
                MiB(sizes[0].export_bytes), MiB(sizes[1].export_bytes));
    for (const auto& [process, mib] : sizes[1].peak_rss_mib) {
      std::printf("  %-18s %7.1f -> %7.1f MiB\n", process.c_str(),
                  sizes[0].peak_rss_mib.at(process), mib);
    }
  }
}

int Run() {
  std::string root = absl::GetFlag(FLAGS_dir);
  if (root.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    root = absl::StrCat(base, "/dsar-delivery-bench-", ::getpid());
  }
  if (fs::exists(root)) {
    Die(absl::AlreadyExistsError(absl::StrCat(root, " exists")));
  }
  fs::create_directories(root);
  std::printf("dsar-delivery-bench in %s\n", root.c_str());

  std::string pki = root + "/pki";
  absl::StatusOr<int> made = testing::RunToExit(
      "/bin/bash",
      {absl::GetFlag(FLAGS_dev_pki), pki, "--worker", "worker-1=*", "--gateway",
       "gateway", "--operator", "operator"},
      root + "/dev-pki.log", absl::Minutes(1));
  if (!made.ok() || *made != 0) {
    Die(absl::InternalError(
        absl::StrCat("tools/dev-pki failed: ",
                     testing::ReadFileOrEmpty(root + "/dev-pki.log"))));
  }

  int64_t large = absl::GetFlag(FLAGS_export_mb);
  int64_t small = absl::GetFlag(FLAGS_small_export_mb);
  if (small < 0) small = large / 8;
  std::vector<int64_t> targets;
  if (small > 0) targets.push_back(small);
  targets.push_back(large);

  Baselines baselines;
  std::vector<SizeResult> sizes;
  for (int64_t target : targets) {
    sizes.push_back(RunSize(root, pki, target, baselines));
  }
  // Deflate at the levels that matter on the first 64 MiB of the store
  // (libzip's level 0 means 9, Z_BEST_COMPRESSION).
  {
    std::string sample = testing::ReadFileOrEmpty(
        absl::StrCat(root, "/export-", targets.front(), "mb/activity.jsonl"));
    sample.resize(std::min<size_t>(sample.size(), 64 << 20));
    for (int level : {1, 6, 9}) {
      baselines.deflate.push_back(Deflate(sample, level));
    }
  }
  baselines.Measure(root + "/openssl-speed.log",
                    absl::GetFlag(FLAGS_baseline_seconds));
  PrintSummary(sizes, baselines);

  if (absl::GetFlag(FLAGS_keep)) {
    std::printf("\nkept %s\n", root.c_str());
  } else {
    std::error_code error;
    fs::remove_all(root, error);
  }
  return 0;
}

}  // namespace
}  // namespace dsar

int main(int argc, char** argv) {
  dsar::SetProgramUsage(
      "Delivery of a large access answer through the real programs: export, "
      "bundle, download over HTTPS, HTTP and gRPC, against raw AES-256-GCM.\n"
      "  dsar-delivery-bench [--export_mb=2048] [--small_export_mb=-1] "
      "[--downloads=3]",
      __FILE__);
  absl::ParseCommandLine(argc, argv);
  return dsar::Run();
}
