// `dsarctl inventory import`: the seed designs' data-inventory.yaml in
// dsar's inventory format (inventory/seed_import.h). `dsarctl inventory
// check`: the inventory compared with its stores
// (workers/connectors/inventory_check.h). Both work without dsard.

#include <cstdio>
#include <string>

#include "common/files.h"
#include "inventory/inventory.h"
#include "inventory/seed_import.h"
#include "nlohmann/json.hpp"
#include "tools/dsarctl/commands.h"
#include "tools/dsarctl/output.h"
#include "workers/connectors/inventory_check.h"

namespace dsarctl {

int RunInventoryImport(const Options& options) {
  // positional[0] is the subcommand word, "import".
  if (options.positional.size() != 2) {
    return Usage("inventory import: takes the file to import");
  }
  absl::StatusOr<std::string> text = dsar::ReadFile(options.positional[1]);
  if (!text.ok()) {
    std::fprintf(stderr, "dsarctl: %s\n",
                 std::string(text.status().message()).c_str());
    return kExitUsage;
  }
  absl::StatusOr<dsar::ImportedInventory> imported =
      dsar::ImportSeedInventory(*text);
  if (!imported.ok()) {
    std::fprintf(stderr, "dsarctl: %s: %s\n", options.positional[1].c_str(),
                 std::string(imported.status().message()).c_str());
    return kExitUsage;
  }
  const std::string out = options.Flag("out");
  if (out.empty()) {
    std::fputs(imported->yaml.c_str(), stdout);
  } else {
    absl::Status written = dsar::WriteFileAtomically(out, imported->yaml);
    if (!written.ok()) {
      std::fprintf(stderr, "dsarctl: --out: %s\n",
                   std::string(written.message()).c_str());
      return kExitUsage;
    }
  }
  for (const std::string& skipped : imported->skipped) {
    std::fprintf(stderr, "skipped: %s\n", skipped.c_str());
  }
  std::fprintf(stderr, "to fill in before dsard loads it (%zu):\n",
               imported->to_fill.size());
  for (const std::string& item : imported->to_fill) {
    std::fprintf(stderr, "  %s\n", item.c_str());
  }
  return kExitOk;
}

int RunInventoryCheck(const Options& options) {
  if (options.positional.size() != 2) {
    return Usage("inventory check: takes the inventory file");
  }
  absl::StatusOr<dsar::Inventory> inventory =
      dsar::Inventory::LoadFile(options.positional[1]);
  if (!inventory.ok()) {
    std::fprintf(stderr, "dsarctl: %s\n",
                 std::string(inventory.status().message()).c_str());
    return kExitUsage;
  }
  std::vector<dsar::InventoryFinding> findings =
      dsar::CheckInventory(*inventory);
  bool errors = false;
  for (const dsar::InventoryFinding& finding : findings) {
    errors =
        errors || finding.severity == dsar::InventoryFinding::Severity::kError;
  }
  if (options.output != "table") {
    nlohmann::json list = nlohmann::json::array();
    for (const dsar::InventoryFinding& finding : findings) {
      list.push_back(
          {{"severity",
            finding.severity == dsar::InventoryFinding::Severity::kError
                ? "error"
                : "warning"},
           {"store", finding.store},
           {"table", finding.collection},
           {"message", finding.message}});
    }
    PrintTree(options, nlohmann::json{{"findings", list}});
  } else if (findings.empty()) {
    std::printf("every store matches the inventory\n");
  } else {
    Table table({"", "STORE", "TABLE", "FINDING"});
    for (const dsar::InventoryFinding& finding : findings) {
      const bool error =
          finding.severity == dsar::InventoryFinding::Severity::kError;
      table.AddRow({Table::Cell(error ? "error" : "warning",
                                error ? Color::kRed : Color::kYellow),
                    finding.store, finding.collection, finding.message});
    }
    table.Print(options);
  }
  // Errors mean the inventory cannot work as written; warnings that it may
  // miss data.
  return errors ? 1 : kExitOk;
}

}  // namespace dsarctl
