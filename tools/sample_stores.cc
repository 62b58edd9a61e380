// dsar-sample-stores: creates the stores of a made-up shop and the inventory
// describing them, for demos and tests.
//
//   dsar-sample-stores --out=/tmp/sample [--people=300] [--seed=1] [--force]
//
// Person i (1..N) has email person<i>@example.com and user id i. The output
// depends only on --people and --seed.

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/program_usage.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, out, "",
          "Directory to create the stores in (required).");
ABSL_FLAG(int, people, 300, "Number of data subjects.");
ABSL_FLAG(uint64_t, seed, 1, "Seed; the same seed gives the same stores.");
ABSL_FLAG(bool, force, false, "Replace stores already in --out.");

namespace dsar {
namespace {

// Every file this tool writes, relative to --out.
const char* const kOutputs[] = {"accounts.db", "shop.db", "marketing.db",
                                "activity.jsonl", "inventory.yaml"};

// SplitMix64: tiny and specified exactly, so a seed gives the same data with
// any standard library (std:: distributions are implementation-defined).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform enough in [lo, hi] for sample data.
  int64_t Between(int64_t lo, int64_t hi) {
    return lo +
           static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Next() % N];
  }
  bool Chance(int percent) { return Between(1, 100) <= percent; }

 private:
  uint64_t state_;
};

const char* const kFirstNames[] = {"Ada",   "Ben",   "Chloe", "Dev",  "Elif",
                                   "Femi",  "Greta", "Hiro",  "Ines", "Jonas",
                                   "Kemal", "Lena",  "Mateo", "Nora", "Omar",
                                   "Priya", "Quinn", "Rosa",  "Sami", "Tess"};
const char* const kLastNames[] = {"Adams",   "Brown",    "Costa",    "Dubois",
                                  "Evans",   "Fischer",  "Garcia",   "Hughes",
                                  "Ivanova", "Jensen",   "Kowalski", "Lopez",
                                  "Murphy",  "Nakamura", "Okafor",   "Patel"};
const char* const kItems[] = {
    "desk lamp",     "oak desk",  "office chair", "notebook",   "fountain pen",
    "monitor stand", "bookshelf", "coffee mug",   "wall clock", "rug"};
const char* const kStreets[] = {"High Street",  "Station Road", "Church Lane",
                                "Mill Road",    "Park Avenue",  "Queen Street",
                                "Victoria Road"};
const char* const kCities[] = {"Bristol", "Leeds", "York",   "Cardiff",
                               "Bath",    "Derby", "Exeter", "Norwich"};
const char* const kActions[] = {"login",         "view_item", "view_item",
                                "add_to_cart",   "checkout",  "logout",
                                "update_profile"};
const char* const kUserAgents[] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "ExampleShopApp/3.4 (Android 14)"};

// 2023-01-01T00:00:00Z; sample times fall in the two years after it.
constexpr int64_t kEpochStart = 1672531200;
constexpr int64_t kTwoYears = 2 * 365 * 24 * 3600;

std::string Timestamp(int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm;
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// A database being filled: one transaction, prepared statements.
class SampleDb {
 public:
  static absl::StatusOr<SampleDb> Create(const std::string& path) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(
        path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    SampleDb sample(db, path);
    if (rc != SQLITE_OK) return sample.Error("open");
    return sample;
  }
  SampleDb(SampleDb&& other)
      : db_(std::exchange(other.db_, nullptr)),
        path_(std::move(other.path_)),
        statements_(std::move(other.statements_)) {}
  ~SampleDb() {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    if (db_ != nullptr) sqlite3_close(db_);
  }

  absl::Status Exec(const std::string& sql) {
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) !=
        SQLITE_OK) {
      return Error(sql);
    }
    return absl::OkStatus();
  }

  // Inserts one row; `values` are bound in order (int64 or text).
  using Value = std::variant<int64_t, std::string>;
  absl::Status Insert(const std::string& sql,
                      const std::vector<Value>& values) {
    sqlite3_stmt*& stmt = statements_[sql];
    if (stmt == nullptr &&
        sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      return Error(sql);
    }
    sqlite3_reset(stmt);
    for (size_t i = 0; i < values.size(); ++i) {
      int index = static_cast<int>(i) + 1;
      if (const auto* number = std::get_if<int64_t>(&values[i])) {
        sqlite3_bind_int64(stmt, index, *number);
      } else {
        const std::string& text = std::get<std::string>(values[i]);
        sqlite3_bind_text(stmt, index, text.data(),
                          static_cast<int>(text.size()), SQLITE_TRANSIENT);
      }
    }
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) return Error(sql);
    return absl::OkStatus();
  }

 private:
  SampleDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Error(absl::string_view what) {
    return absl::InternalError(absl::StrCat(
        path_, ": ", what, ": ", db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }

  sqlite3* db_;
  std::string path_;
  std::map<std::string, sqlite3_stmt*> statements_;  // Prepared once each.
};

struct Counts {
  int64_t users = 0, orders = 0, addresses = 0, subscribers = 0, events = 0;
};

absl::Status WriteAccounts(const std::string& out, int people, Random& random,
                           Counts& counts) {
  ASSIGN_OR_RETURN(SampleDb db, SampleDb::Create(out + "/accounts.db"));
  RETURN_IF_ERROR(db.Exec(
      "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE,"
      " full_name TEXT, phone TEXT, created_at TEXT,"
      " processing_restricted INTEGER NOT NULL DEFAULT 0);"
      // Phones are kept as typed; connectors find them through an index on
      // the number without separators (docs/inventory.md).
      "CREATE INDEX users_phone_digits ON users (replace(replace(replace("
      "replace(replace(replace(phone, ' ', ''), '-', ''), '.', ''), '(', ''),"
      " ')', ''), '/', ''));"
      "BEGIN"));
  for (int i = 1; i <= people; ++i) {
    std::string name =
        absl::StrCat(random.Pick(kFirstNames), " ", random.Pick(kLastNames));
    std::string phone =
        absl::StrFormat("+44 7700 %06d", random.Between(0, 999999));
    RETURN_IF_ERROR(db.Insert(
        "INSERT INTO users (id, email, full_name, phone, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        {int64_t{i}, absl::StrCat("person", i, "@example.com"), name, phone,
         Timestamp(kEpochStart + random.Between(0, kTwoYears / 4))}));
    ++counts.users;
  }
  return db.Exec("COMMIT");
}

absl::Status WriteShop(const std::string& out, int people, Random& random,
                       Counts& counts) {
  ASSIGN_OR_RETURN(SampleDb db, SampleDb::Create(out + "/shop.db"));
  RETURN_IF_ERROR(db.Exec(
      "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
      " item TEXT, amount_cents INTEGER, created_at TEXT);"
      "CREATE INDEX orders_user_id ON orders (user_id);"
      "CREATE TABLE addresses (id INTEGER PRIMARY KEY, user_id INTEGER NOT "
      "NULL, street TEXT, city TEXT, postcode TEXT);"
      "CREATE INDEX addresses_user_id ON addresses (user_id);"
      "BEGIN"));
  for (int i = 1; i <= people; ++i) {
    for (int64_t n = random.Between(1, 4); n > 0; --n) {
      RETURN_IF_ERROR(db.Insert(
          "INSERT INTO orders (user_id, item, amount_cents, created_at) "
          "VALUES (?, ?, ?, ?)",
          {int64_t{i}, std::string(random.Pick(kItems)),
           random.Between(199, 49999),
           Timestamp(kEpochStart + random.Between(kTwoYears / 4, kTwoYears))}));
      ++counts.orders;
    }
    for (int64_t n = random.Between(1, 2); n > 0; --n) {
      std::string postcode =
          absl::StrFormat("%c%c%d %d%c%c", 'A' + random.Between(0, 25),
                          'A' + random.Between(0, 25), random.Between(1, 99),
                          random.Between(1, 9), 'A' + random.Between(0, 25),
                          'A' + random.Between(0, 25));
      RETURN_IF_ERROR(db.Insert(
          "INSERT INTO addresses (user_id, street, city, postcode) "
          "VALUES (?, ?, ?, ?)",
          {int64_t{i},
           absl::StrCat(random.Between(1, 200), " ", random.Pick(kStreets)),
           std::string(random.Pick(kCities)), postcode}));
      ++counts.addresses;
    }
  }
  return db.Exec("COMMIT");
}

absl::Status WriteMarketing(const std::string& out, int people, Random& random,
                            Counts& counts) {
  ASSIGN_OR_RETURN(SampleDb db, SampleDb::Create(out + "/marketing.db"));
  RETURN_IF_ERROR(db.Exec(
      "CREATE TABLE subscribers (email TEXT NOT NULL, consent TEXT NOT NULL,"
      " subscribed_at TEXT,"
      " processing_restricted INTEGER NOT NULL DEFAULT 0,"
      " objected INTEGER NOT NULL DEFAULT 0);"
      // Emails are kept as typed; lookups compare lower(email).
      "CREATE INDEX subscribers_email_lower ON subscribers (lower(email));"
      "BEGIN"));
  for (int i = 1; i <= people; ++i) {
    if (!random.Chance(80)) continue;
    // Some sign-up forms kept the case people typed: matching must ignore it.
    std::string email = random.Chance(10)
                            ? absl::StrCat("Person", i, "@Example.com")
                            : absl::StrCat("person", i, "@example.com");
    RETURN_IF_ERROR(db.Insert(
        "INSERT INTO subscribers (email, consent, subscribed_at) "
        "VALUES (?, ?, ?)",
        {email,
         std::string(random.Chance(90) ? "newsletter" : "newsletter+offers"),
         Timestamp(kEpochStart + random.Between(0, kTwoYears))}));
    ++counts.subscribers;
  }
  return db.Exec("COMMIT");
}

absl::Status WriteActivity(const std::string& out, int people, Random& random,
                           Counts& counts) {
  struct Event {
    int64_t ts;
    int user;
    std::string ip, action, user_agent;
  };
  std::vector<Event> events;
  for (int i = 1; i <= people; ++i) {
    std::string ip =
        absl::StrCat(random.Chance(50) ? "198.51.100." : "203.0.113.",
                     random.Between(1, 254));
    std::string agent = random.Pick(kUserAgents);
    for (int64_t n = random.Between(2, 6); n > 0; --n) {
      events.push_back({kEpochStart + random.Between(0, kTwoYears), i, ip,
                        random.Pick(kActions), agent});
    }
  }
  // A log is in time order; ties keep generation order.
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& a, const Event& b) { return a.ts < b.ts; });
  std::string text;
  for (const Event& event : events) {
    nlohmann::ordered_json line = {{"ts", Timestamp(event.ts)},
                                   {"user_id", event.user},
                                   {"ip", event.ip},
                                   {"action", event.action},
                                   {"user_agent", event.user_agent}};
    absl::StrAppend(&text, line.dump(), "\n");
  }
  counts.events = static_cast<int64_t>(events.size());
  return WriteFileAtomically(out + "/activity.jsonl", text);
}

constexpr char kInventory[] =
    R"yaml(# Data inventory of the sample shop written by dsar-sample-stores.
# Paths are relative to this file's directory. See docs/inventory.md.
controller: "Example Shop Ltd"
# Phone numbers written without +44 are UK numbers.
default_phone_region: GB
stores:
  - name: accounts
    kind: sqlite
    path: accounts.db
    purpose: "Customer accounts and login"
    legal_basis: "Contract (GDPR Art. 6(1)(b))"
    recipients: ["Payment processor", "Customer support platform"]
    retention: "Account lifetime + 30 days"
    source: "Provided by the data subject"
    tables:
      - name: users
        identity_fields: {email: email, user_id: id, phone: phone}
        # Emails are stored lowercase: lookups use the UNIQUE index as it is.
        canonical_identities: [email]
        pii_fields: {email: contact, full_name: identity, phone: contact, created_at: account}
        processing_flags: {restriction: processing_restricted}
    # Erased last: it holds the email and user id the other stores are found by.
    erase_after: [orders, activity, marketing]

  - name: orders
    kind: sqlite
    path: shop.db
    purpose: "Order fulfilment, delivery and invoicing"
    legal_basis: "Contract (GDPR Art. 6(1)(b)); invoices: legal obligation (Art. 6(1)(c))"
    recipients: ["Payment processor", "Delivery partners", "Tax authority"]
    retention: "6 years after the order (tax law)"
    source: "Provided by the data subject when ordering"
    tables:
      - name: orders
        identity_fields: {user_id: user_id}
        pii_fields: {item: purchase_history, amount_cents: purchase_history, created_at: purchase_history}
      - name: addresses
        identity_fields: {user_id: user_id}
        pii_fields: {street: contact, city: contact, postcode: contact}
    identities_from: [accounts]

  - name: marketing
    kind: sqlite
    path: marketing.db
    purpose: "Newsletter and offers"
    legal_basis: "Consent (GDPR Art. 6(1)(a))"
    recipients: ["Email delivery provider"]
    retention: "Until consent is withdrawn"
    source: "Provided by the data subject at sign-up"
    tables:
      - name: subscribers
        identity_fields: {email: email}
        pii_fields: {email: contact, consent: preferences, subscribed_at: preferences}
        processing_flags: {restriction: processing_restricted, objection: objected}
    # A request may give only a user id: accounts finds the email.
    identities_from: [accounts]

  - name: activity
    kind: jsonl
    path: activity.jsonl
    purpose: "Security monitoring and fraud prevention"
    legal_basis: "Legitimate interests (GDPR Art. 6(1)(f))"
    recipients: ["Hosting provider"]
    retention: "90 days"
    source: "Collected automatically from the data subject's use of the shop"
    identity_fields: {user_id: user_id}
    pii_fields: {ip: online_identifiers, user_agent: online_identifiers, action: usage, ts: usage}
    # Lines carry no flag field until a restriction adds "restricted": true.
    processing_flags: {restriction: restricted}
    identities_from: [accounts]
)yaml";

int Run(const std::string& out, int people, uint64_t seed, bool force) {
  std::vector<std::string> present;
  for (const char* name : kOutputs) {
    std::string path = absl::StrCat(out, "/", name);
    std::error_code error;
    if (std::filesystem::exists(path, error)) present.push_back(path);
  }
  if (!present.empty() && !force) {
    std::fprintf(stderr,
                 "dsar-sample-stores: %s already holds sample stores (%s); "
                 "use --force to replace them\n",
                 out.c_str(), present.front().c_str());
    return 2;
  }
  if (absl::Status status = MakeDirectories(out); !status.ok()) {
    std::fprintf(stderr, "dsar-sample-stores: %s\n", status.ToString().c_str());
    return 1;
  }
  for (const std::string& path : present) {
    std::error_code error;
    for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
      std::filesystem::remove(path + suffix, error);
    }
  }

  Random random(seed);
  Counts counts;
  absl::Status status = WriteAccounts(out, people, random, counts);
  if (status.ok()) status = WriteShop(out, people, random, counts);
  if (status.ok()) status = WriteMarketing(out, people, random, counts);
  if (status.ok()) status = WriteActivity(out, people, random, counts);
  if (status.ok()) {
    status = WriteFileAtomically(out + "/inventory.yaml", kInventory);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "dsar-sample-stores: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf(
      "dsar-sample-stores: wrote %s/inventory.yaml: %lld users, %lld orders, "
      "%lld addresses, %lld subscribers, %lld activity lines (seed %llu)\n",
      out.c_str(), static_cast<long long>(counts.users),
      static_cast<long long>(counts.orders),
      static_cast<long long>(counts.addresses),
      static_cast<long long>(counts.subscribers),
      static_cast<long long>(counts.events),
      static_cast<unsigned long long>(seed));
  return 0;
}

}  // namespace
}  // namespace dsar

int main(int argc, char** argv) {
  dsar::SetProgramUsage(
      "Creates sample stores of a made-up shop and their inventory.\n"
      "  dsar-sample-stores --out=DIR [--people=300] [--seed=1] [--force]",
      __FILE__);
  absl::ParseCommandLine(argc, argv);
  std::string out = absl::GetFlag(FLAGS_out);
  int people = absl::GetFlag(FLAGS_people);
  if (out.empty()) {
    std::fprintf(stderr, "dsar-sample-stores: --out=DIR is required\n");
    return 2;
  }
  if (people < 1 || people > 1'000'000) {
    std::fprintf(stderr,
                 "dsar-sample-stores: --people must be in 1..1000000\n");
    return 2;
  }
  return dsar::Run(out, people, absl::GetFlag(FLAGS_seed),
                   absl::GetFlag(FLAGS_force));
}
