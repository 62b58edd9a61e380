// The commands, their flags, help texts and examples.

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/dsarctl/commands.h"

namespace dsarctl {
namespace {

constexpr char kStatuses[] =
    "RECEIVED VERIFYING RUNNING COMPLETED FAILED CANCELLED";
constexpr char kTypes[] =
    "ACCESS PORTABILITY ERASURE RECTIFICATION RESTRICTION OBJECTION";

FlagSpec Bool(std::string name, std::string help, char short_name = 0) {
  FlagSpec flag;
  flag.name = std::move(name);
  flag.help = std::move(help);
  flag.short_name = short_name;
  return flag;
}

FlagSpec Value(std::string name, std::string value_name, std::string help,
               std::string completions = "", bool repeated = false) {
  FlagSpec flag;
  flag.name = std::move(name);
  flag.value_name = std::move(value_name);
  flag.help = std::move(help);
  flag.completions = std::move(completions);
  flag.repeated = repeated;
  return flag;
}

FlagSpec WithShortName(char short_name, FlagSpec flag) {
  flag.short_name = short_name;
  return flag;
}

FlagSpec PubkeyFlag() {
  return Value("pubkey", "FILE",
               "the coordinator's checkpoint public key (config: pubkey)");
}

FlagSpec StateDirFlag() {
  return Value("state-dir", "DIR",
               "where verified checkpoints are remembered, to catch rollback "
               "and fork (env DSARCTL_STATE_DIR; default "
               "$XDG_STATE_HOME/dsarctl or ~/.local/state/dsarctl)");
}

std::vector<CommandSpec> BuildCommands() {
  std::vector<CommandSpec> commands;
  auto add = [&](CommandSpec spec) { commands.push_back(std::move(spec)); };

  // Generic, through server reflection.
  add({"ls",
       "[SERVICE]",
       "List services, or the methods of one service (server reflection).",
       "Works against any gRPC server that serves grpc.reflection.v1alpha. "
       "Short names are accepted when they are unique (DsarService).",
       {"dsarctl ls", "dsarctl ls -l", "dsarctl ls dsar.v1.DsarService -l"},
       {Bool("long", "print full signatures (rpc lines with message types)",
             'l')},
       RunLs});
  add({"describe",
       "<SYMBOL>",
       "Print a service, method, message or enum as proto text.",
       "SYMBOL is a fully qualified name (dsar.v1.Request), a method as "
       "Service/Method or Service.Method, or a unique short service name. "
       "With -o json the descriptor itself is printed.",
       {"dsarctl describe dsar.v1.DsarService",
        "dsarctl describe dsar.v1.DsarService/GetRequest",
        "dsarctl describe dsar.v1.Request"},
       {},
       RunDescribe});
  add({"call",
       "<SERVICE/METHOD> [JSON]",
       "Call any method with a JSON request; print the response as JSON.",
       "The request is the JSON argument, or -d: -d '{...}', -d @FILE, or "
       "-d @- to read standard input; no request means {}. Unary and "
       "server-streaming methods are supported (one JSON document per "
       "streamed message). Field names follow the protobuf JSON mapping "
       "(both proto and lowerCamel names are accepted); the response uses "
       "proto names.",
       {"dsarctl call dsar.v1.DsarService/GetRequest '{\"id\": \"dsr_123\"}'",
        "echo '{\"status\": \"RUNNING\"}' | dsarctl call "
        "DsarService/ListRequests -d @-"},
       {WithShortName('d',
                      Value("data", "JSON|@FILE|@-", "the request message")),
        Bool("emit-defaults", "print fields that hold default values too")},
       RunCall});

  // The domain's words.
  add({"submit",
       "",
       "Submit a data subject request; prints its id once it is durable.",
       "At least one identity is needed. Repeat --store to limit the request "
       "to some inventory stores. -o json/yaml prints the whole request.",
       {"dsarctl submit --type=ACCESS --email=jane@example.com",
        "dsarctl submit --type=ERASURE --user-id=42 --regulation=CCPA "
        "--store=orders"},
       {Value("type", "TYPE", "the right exercised (required)", kTypes),
        Value("email", "EMAIL", "an email identity", "", true),
        Value("user-id", "ID", "a user id identity", "", true),
        Value("phone", "PHONE", "a phone identity", "", true),
        Value("custom", "KIND:VALUE", "an identity of another kind", "", true),
        Value("regulation", "GDPR|CCPA", "default GDPR", "GDPR CCPA"),
        Value("store", "NAME", "limit to this store (repeatable)", "", true),
        Value("idempotency-key", "KEY",
              "a retried submit with the same key returns the same request"),
        Value("verified-by", "METHOD",
              "the subject's identity was already verified this way "
              "(logged_in_session, id_document ...); audited. Without it "
              "dsard sends the subject a one-time code (VERIFYING)"),
        Value("evidence-ref", "REF",
              "your reference to the verification evidence")},
       RunSubmit});
  add({"get",
       "<ID>",
       "Show a request: status, deadline and the per-store task table.",
       "The statutory deadline is shown with the time left (red once "
       "overdue). The task table shows every store step with its attempts "
       "(leases granted), the worker holding the last lease and the last "
       "error.",
       {"dsarctl get dsr_01HZX...", "dsarctl get dsr_01HZX... -o yaml"},
       {},
       RunGet});
  add({"list",
       "",
       "List requests, oldest first, with filters.",
       "Prints one page (--page-size, default 50) and says how to get the "
       "next; --all follows every page. --created-since takes an RFC 3339 "
       "time (2024-05-01T00:00:00Z) or a duration back from now (90m, 24h, "
       "7d). --overdue lists unfinished requests past their statutory "
       "deadline and --due-within=7d those due within a week (both ignore "
       "--status).",
       {"dsarctl list --status=RUNNING", "dsarctl list --overdue --all",
        "dsarctl list --type=ERASURE --created-since=24h --all -o json"},
       {Value("status", "STATUS", "only requests in this status", kStatuses),
        Value("type", "TYPE", "only requests of this type", kTypes),
        Value("created-since", "TIME|DURATION",
              "only requests created at or after this time"),
        Bool("overdue", "only unfinished requests past their deadline"),
        Value("due-within", "DURATION",
              "only unfinished requests due within this time (7d, 48h)"),
        Value("page-size", "N", "requests per page (default 50, max 1000)"),
        Value("page-token", "TOKEN", "continue from an earlier page"),
        Bool("all", "follow every page")},
       RunList});
  add({"watch",
       "<ID>",
       "Follow a request until it is finished.",
       "On a terminal a progress bar shows finished store steps and each "
       "event is printed as it happens; otherwise one line per change. With "
       "-o json each new event is one JSON object on its own line. Exits 0 "
       "when the request COMPLETED, 1 when it FAILED or was CANCELLED.",
       {"dsarctl watch dsr_01HZX...", "dsarctl watch dsr_01HZX... -o json"},
       {Value("interval-ms", "N", "polling interval (default 200)")},
       RunWatch});
  add({"events",
       "<ID>",
       "A request's event history; proven against the audit log with a key.",
       "With --pubkey (or pubkey= in the config file) every event is checked "
       "against the latest signed checkpoint: its audit entry must chain to "
       "the request's previous event and carry a valid inclusion proof. "
       "Events newer than the checkpoint are marked pending.",
       {"dsarctl events dsr_01HZX...",
        "dsarctl events dsr_01HZX... --pubkey=data/keys/checkpoint.key.pub"},
       {PubkeyFlag(), StateDirFlag()},
       RunEvents});
  add({"cancel",
       "<ID>",
       "Cancel a request that has not finished.",
       "",
       {"dsarctl cancel dsr_01HZX... --reason='subject withdrew'"},
       {Value("reason", "TEXT", "recorded in the audit log")},
       RunCancel});
  add({"retry",
       "<ID>",
       "Re-run the failed parts of a finished request.",
       "Without --store every failed part runs again; with --store only "
       "those stores' parts do.",
       {"dsarctl retry dsr_01HZX...",
        "dsarctl retry dsr_01HZX... --store=orders --reason='db back up'"},
       {Value("store", "NAME", "retry only this store (repeatable)", "", true),
        Value("reason", "TEXT", "recorded in the audit log")},
       RunRetry});
  add({"extend",
       "<ID>",
       "Extend a request's statutory deadline (once, with a reason).",
       "GDPR Art. 12(3) allows up to two more months, CCPA 45 more days; "
       "the subject must be told why. --by counts months for GDPR requests "
       "and days for CCPA ones.",
       {"dsarctl extend dsr_01HZX... --by=1 --reason='complex request: 14 "
        "stores'"},
       {Value("by", "N", "months (GDPR: 1 or 2) or days (CCPA: 1 to 45)"),
        Value("reason", "TEXT",
              "why (required; audited, sent to the subject)")},
       RunExtend});
  add({"verify",
       "<ID>",
       "Enter the one-time code the data subject received.",
       "The request leaves VERIFYING and its workflow starts; wrong codes "
       "count against the attempt limit.",
       {"dsarctl verify dsr_01HZX... --code=14328336"},
       {Value("code", "CODE", "the code from the verification notice")},
       RunVerify});
  add({"pause",
       "<ID>",
       "Put an unfinished request on hold (e.g. a legal hold).",
       "No task is handed out until it is resumed; the statutory clock keeps "
       "running.",
       {"dsarctl pause dsr_01HZX... --reason='legal hold 2026-17'"},
       {Value("reason", "TEXT", "why (required; audited)")},
       RunPause});
  add({"resume",
       "<ID>",
       "Lift the hold on a paused request.",
       "",
       {"dsarctl resume dsr_01HZX... --reason='hold released'"},
       {Value("reason", "TEXT", "recorded in the audit log")},
       RunResume});
  add({"download",
       "<ID>",
       "Download a completed request's bundle through a signed URL.",
       "Issues a download URL (download_url_issued), streams the bundle to "
       "the file (bundle_downloaded), checks its size and SHA-256 against "
       "what dsard recorded, and prints the path. The file appears only "
       "once verified (written as FILE.part first).",
       {"dsarctl download dsr_01HZX...",
        "dsarctl download dsr_01HZX... --file=/tmp/answer.zip"},
       {WithShortName('f', Value("file", "PATH",
                                 "where to write the ZIP (default <ID>.zip)"))},
       RunDownload});
  add({"revoke-downloads",
       "<ID>",
       "Revoke every download URL issued so far for a request.",
       "URLs issued before are refused (HTTP 410) from now on; new ones can "
       "be issued. Use when a link went to the wrong person.",
       {"dsarctl revoke-downloads dsr_01HZX... --reason='sent to a wrong "
        "address'"},
       {Value("reason", "TEXT", "why (required; audited)")},
       RunRevokeDownloads});
  add({"purge",
       "",
       "Run the retention purge now: expired bundles, expired personal data.",
       "Deletes bundles past --bundle_retention and destroys the data key of "
       "requests closed longer than --record_retention (their identities, "
       "corrections, free text and files become unreadable; the other facts "
       "and the audit log stay). Each removal is an event on its request. "
       "dsard also runs it every --purge_interval (docs/retention.md).",
       {"dsarctl purge --dry-run", "dsarctl purge"},
       {Bool("dry-run", "show what is due and why; remove nothing")},
       RunPurge});
  add({"audit-scan run",
       "",
       "Scan every store for privacy signals now.",
       "An audit scan (docs/audit-scan-runs.md) reads every SQLite, "
       "JSON-lines and PostgreSQL store once, streaming, and reports "
       "OPT_OUT_VIOLATION, DATA_RENAME_DETECTION and UNDECLARED_PII_FIELD "
       "by store, field and record, never the values. Prints the run's id; "
       "one run at a time.",
       {"dsarctl audit-scan run"},
       {},
       RunAuditScanRun});
  add({"audit-scan report",
       "[RUN]",
       "The report of an audit scan run (default: the latest completed).",
       "Signals with severity, store, collection, field (and JSON path), "
       "record and an opaque subject reference; the compliance status and "
       "the digest the audit log holds. With --diff previous: what is new "
       "and what was resolved since the run before.",
       {"dsarctl audit-scan report",
        "dsarctl audit-scan report --diff previous",
        "dsarctl audit-scan report dsr_01HZX... -o json"},
       {Value("diff", "previous", "compare with the run completed before")},
       RunAuditScanReport});
  add({"keys rotate",
       "",
       "Make a new key-encryption key active.",
       "New data keys are wrapped under it; data keys wrapped under older "
       "KEKs stay readable while their files are kept. With --rewrap every "
       "data key is re-wrapped under the new KEK, after which the older ones "
       "can be retired (docs/retention.md).",
       {"dsarctl keys rotate", "dsarctl keys rotate --rewrap"},
       {Bool("rewrap", "re-wrap every existing data key under the new KEK")},
       RunKeysRotate});
  add({"work list",
       "",
       "Open work items of manual stores: what their owners must do, by when.",
       "A manual store (docs/manual-stores.md) is a system no connector "
       "reaches; each of its steps waits here for its owner. An item past "
       "its due time carries an alert (and its owner was notified).",
       {"dsarctl work list", "dsarctl work list --owner=records@example.com"},
       {Value("store", "NAME", "only this manual store's items"),
        Value("owner", "WHO", "only this owner's items")},
       RunWorkList});
  add({"work complete",
       "<ID> <STORE>",
       "Record that a manual store's work item was done, with the evidence.",
       "The store's step succeeds as if a worker had done it. An export "
       "item needs --export: the records found, as a connector's JSON "
       "document {\"store\":\"<STORE>\",\"records\":[{\"collection\":..,"
       "\"data\":{..}}]}; they go into the subject's bundle.",
       {"dsarctl work complete dsr_01HZX... archive --records=2 "
        "--evidence='boxes 12-13 shredded, ticket OPS-7'",
        "dsarctl work complete dsr_01HZX... archive --export=found.json "
        "--evidence='scanned from box 12'"},
       {Value("evidence", "TEXT",
              "what was done and where the proof is (required; audited)"),
        Value("records", "N", "records found, erased or changed"),
        Value("export", "FILE", "for an export: the records found (JSON)")},
       RunWorkComplete});
  add({"work fail",
       "<ID> <STORE>",
       "Record that a manual store's work item cannot be done, and why.",
       "The store's step fails with Operator.Failed and the reason as its "
       "cause; `dsarctl retry --store` re-opens it.",
       {"dsarctl work fail dsr_01HZX... archive --reason='archive held by "
        "the tax office until 2027'"},
       {Value("reason", "TEXT", "why (required; audited)")},
       RunWorkFail});
  add({"inventory check",
       "<FILE>",
       "Compare an inventory with its stores: missing tables and columns, "
       "unreachable stores, undeclared personal data.",
       "Opens every store read-only (no dsard needed): a table or column the "
       "inventory names but the store lacks is an error; a store that no "
       "identity kind reaches, and a column that looks like personal data "
       "(by its name, or sampled values that match email, phone, IP "
       "address, card or national-id patterns) but is not declared, are "
       "warnings. Values are never printed. Exit 1 when there are errors.",
       {"dsarctl inventory check /etc/dsar/inventory.yaml"},
       {},
       RunInventoryCheck});
  add({"inventory import",
       "<FILE>",
       "Convert the seed designs' data-inventory.yaml into dsar's format.",
       "Works offline. PostgreSQL stores become postgres stores, stores of a "
       "type with no connector (Elasticsearch, RabbitMQ, ...) become manual "
       "stores, retention_policy becomes retention. What the file cannot "
       "say (servers, owners, table names) is written as \"<fill in>\" and "
       "listed on stderr; dsard refuses the file until each is filled in.",
       {"dsarctl inventory import data-inventory.yaml --out=inventory.yaml"},
       {Value("out", "FILE", "write the inventory here (default: stdout)")},
       RunInventoryImport});
  add({"workers",
       "",
       "Workers the coordinator has seen: stores, in-flight tasks, last "
       "heartbeat.",
       "",
       {"dsarctl workers", "dsarctl workers -o json"},
       {},
       RunWorkers});

  // The audit log.
  add({"audit checkpoint",
       "",
       "Print the latest signed checkpoint of the audit log.",
       "With --pubkey the checkpoint's signature is checked and it must "
       "extend the checkpoint remembered for its origin (no rollback, no "
       "fork); --save requires --pubkey and saves only a verified "
       "checkpoint.",
       {"dsarctl audit checkpoint --pubkey=checkpoint.key.pub "
        "--save=checkpoint.note"},
       {PubkeyFlag(),
        Value("save", "FILE",
              "also save it once verified, for a later audit verify --since"),
        StateDirFlag()},
       RunAudit});
  add({"audit events",
       "<ID>",
       "A request's audit entries, each proven against the checkpoint.",
       "",
       {"dsarctl audit events dsr_01HZX... --pubkey=checkpoint.key.pub"},
       {PubkeyFlag(), StateDirFlag()},
       RunAudit});
  add({"audit prove",
       "<INDEX>",
       "Inclusion proof of one audit entry, verified.",
       "",
       {"dsarctl audit prove 17 --pubkey=checkpoint.key.pub"},
       {PubkeyFlag(), StateDirFlag()},
       RunAudit});
  add({"audit verify",
       "",
       "Verify the whole audit log offline with only the public key.",
       "Downloads every entry, recomputes the root, checks the checkpoint "
       "signature, every per-request chain, consistency with the checkpoint "
       "remembered for the log's origin from earlier runs (rollback and fork "
       "fail), and with a checkpoint saved earlier (--since).",
       {"dsarctl audit verify --pubkey=checkpoint.key.pub "
        "--since=checkpoint.note"},
       {PubkeyFlag(),
        Value("since", "FILE", "a checkpoint saved by audit checkpoint --save"),
        StateDirFlag()},
       RunAudit});

  add({"completion",
       "bash",
       "Print a bash completion script.",
       "",
       {"source <(dsarctl completion bash)",
        "dsarctl completion bash > /etc/bash_completion.d/dsarctl"},
       {},
       RunCompletion});
  add({"help",
       "[COMMAND]",
       "Help for dsarctl or one command.",
       "",
       {"dsarctl help list"},
       {},
       RunHelp});
  return commands;
}

void PrintFlags(const std::vector<FlagSpec>& flags) {
  std::vector<std::string> names;
  size_t width = 0;
  for (const FlagSpec& flag : flags) {
    std::string name = flag.short_name
                           ? absl::StrCat("-", std::string(1, flag.short_name),
                                          ", --", flag.name)
                           : absl::StrCat("    --", flag.name);
    if (!flag.value_name.empty()) absl::StrAppend(&name, "=", flag.value_name);
    width = std::max(width, name.size());
    names.push_back(std::move(name));
  }
  for (size_t i = 0; i < flags.size(); ++i) {
    std::printf("  %-*s  %s%s\n", static_cast<int>(width), names[i].c_str(),
                flags[i].help.c_str(),
                flags[i].repeated ? " (repeatable)" : "");
  }
}

// Wraps `text` at 76 columns with a two-space indent.
void PrintWrapped(const std::string& text) {
  std::string line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    std::string word = text.substr(start, end - start);
    if (!line.empty() && line.size() + 1 + word.size() > 76) {
      std::printf("  %s\n", line.c_str());
      line.clear();
    }
    line = line.empty() ? word : absl::StrCat(line, " ", word);
    start = end + 1;
  }
  if (!line.empty()) std::printf("  %s\n", line.c_str());
}

}  // namespace

const std::vector<CommandSpec>& AllCommands() {
  static const std::vector<CommandSpec>* commands =
      new std::vector<CommandSpec>(BuildCommands());
  return *commands;
}

const std::vector<FlagSpec>& GlobalFlags() {
  static const std::vector<FlagSpec>* flags = [] {
    auto* list = new std::vector<FlagSpec>{
        Value("addr", "HOST:PORT",
              "server address (env DSAR_ADDR; default 127.0.0.1:50051)"),
        Bool("tls", "use TLS (implied by --ca_cert and --client_cert)"),
        Value("ca_cert", "FILE", "PEM roots to trust instead of the system's"),
        Value("client_cert", "FILE", "PEM client certificate (mutual TLS)"),
        Value("client_key", "FILE", "PEM key of --client_cert"),
        Value("timeout", "SECONDS", "deadline of each call (default 30)"),
        Value("header", "KEY:VALUE", "metadata sent with every call", "", true),
        Value("config", "FILE",
              "config file (env DSARCTL_CONFIG; default "
              "~/.config/dsarctl/config)"),
        WithShortName('o',
                      Value("output", "FORMAT", "table (default), json or yaml",
                            "table json yaml")),
        Bool("help", "help for dsarctl or the command", 'h'),
    };
    return list;
  }();
  return *flags;
}

const CommandSpec* FindCommand(const std::string& name) {
  for (const CommandSpec& command : AllCommands()) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

void PrintMainHelp() {
  std::printf(
      "dsarctl: the operator's client for dsard, and a grpc_cli for any "
      "gRPC server\nwith reflection.\n\n"
      "usage: dsarctl [global flags] <command> [args] [flags]\n\n"
      "Commands:\n");
  for (const CommandSpec& command : AllCommands()) {
    std::printf("  %-18s %s\n", command.name.c_str(), command.summary.c_str());
  }
  std::printf("\nGlobal flags (any command, before or after it):\n");
  PrintFlags(GlobalFlags());
  std::printf(
      "\nConfig file: key=value lines, keys addr, tls, ca_cert, client_cert,\n"
      "client_key, timeout, output, pubkey, header. Flags override the\n"
      "environment, which overrides the file.\n"
      "Colour only when stdout is a terminal and NO_COLOR is unset.\n"
      "Exit codes: 0 ok, 1 server error or failed verification, 2 usage or\n"
      "bad input, 3 not found, 4 server unavailable or timed out.\n\n"
      "Examples:\n"
      "  dsarctl --addr=dsard.internal:50051 list --status=RUNNING\n"
      "  dsarctl call dsar.v1.DsarService/GetRequest '{\"id\": \"dsr_1\"}'\n"
      "\nRun 'dsarctl <command> --help' for a command's flags.\n");
}

void PrintCommandHelp(const CommandSpec& command) {
  std::printf("usage: dsarctl %s%s%s%s\n\n", command.name.c_str(),
              command.args.empty() ? "" : " ", command.args.c_str(),
              command.flags.empty() ? "" : " [flags]");
  std::printf("%s\n", command.summary.c_str());
  if (!command.description.empty()) {
    std::printf("\n");
    PrintWrapped(command.description);
  }
  if (!command.flags.empty()) {
    std::printf("\nFlags:\n");
    PrintFlags(command.flags);
  }
  std::printf("\nExamples:\n");
  for (const std::string& example : command.examples) {
    std::printf("  %s\n", example.c_str());
  }
  std::printf(
      "\nGlobal flags: --addr, --tls, --ca_cert, --client_cert, --client_key,"
      "\n--timeout, --header, --config, -o/--output (see 'dsarctl --help').\n");
}

int RunHelp(const Options& options) {
  if (options.positional.empty()) {
    PrintMainHelp();
    return kExitOk;
  }
  const CommandSpec* command =
      FindCommand(absl::StrJoin(options.positional, " "));
  if (command == nullptr) {
    return Usage(absl::StrCat("help: unknown command \"",
                              absl::StrJoin(options.positional, " "), "\""));
  }
  PrintCommandHelp(*command);
  return kExitOk;
}

}  // namespace dsarctl
