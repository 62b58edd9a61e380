#include "workers/connectors/export_writer.h"

namespace dsar {
namespace {

template <typename JsonT>
std::string Dump(const JsonT& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false,
                    nlohmann::json::error_handler_t::replace);
}

}  // namespace

ExportWriter::ExportWriter(ByteSink& sink, std::string_view store)
    : sink_(sink) {
  buffer_ = "{\"store\":";
  buffer_ += Dump(nlohmann::json(std::string(store)));
  buffer_ += ",\"records\":[";
}

absl::Status ExportWriter::AddRecord(std::string_view collection,
                                     const nlohmann::ordered_json& data) {
  if (record_count_ > 0) buffer_ += ',';
  buffer_ += "{\"collection\":";
  buffer_ += Dump(nlohmann::json(std::string(collection)));
  buffer_ += ",\"data\":";
  buffer_ += Dump(data);
  buffer_ += '}';
  ++record_count_;
  return FlushIfFull();
}

absl::Status ExportWriter::Finish() {
  buffer_ += "]}";
  absl::Status status = sink_.Write(buffer_);
  buffer_.clear();
  return status;
}

absl::Status ExportWriter::FlushIfFull() {
  if (buffer_.size() < kFlushBytes) return absl::OkStatus();
  absl::Status status = sink_.Write(buffer_);
  buffer_.clear();
  return status;
}

}  // namespace dsar
