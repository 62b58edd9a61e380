#include "gateway/json_printer.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/util/field_mask_util.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <charconv>
#include <cmath>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace dsar::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

bool IsDynamicJsonType(const std::string& name) {
  return name == "google.protobuf.Any" || name == "google.protobuf.Struct" ||
         name == "google.protobuf.Value" || name == "google.protobuf.ListValue";
}

bool IsWrapper(const std::string& name) {
  static const char* const kWrappers[] = {
      "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
      "google.protobuf.Int64Value",  "google.protobuf.UInt64Value",
      "google.protobuf.Int32Value",  "google.protobuf.UInt32Value",
      "google.protobuf.BoolValue",   "google.protobuf.StringValue",
      "google.protobuf.BytesValue"};
  for (const char* wrapper : kWrappers) {
    if (name == wrapper) return true;
  }
  return false;
}

// Whether `descriptor` or any message type reachable from it is one of the
// dynamic JSON types, which this printer leaves to the library.
bool ReachesDynamicType(const Descriptor* descriptor,
                        std::unordered_map<const Descriptor*, bool>* seen) {
  auto [it, inserted] = seen->emplace(descriptor, false);
  if (!inserted) return it->second;  // Known, or being visited (a cycle).
  bool result = IsDynamicJsonType(descriptor->full_name());
  for (int i = 0; !result && i < descriptor->field_count(); ++i) {
    const Descriptor* type = descriptor->field(i)->message_type();
    if (type != nullptr && ReachesDynamicType(type, seen)) result = true;
  }
  (*seen)[descriptor] = result;
  return result;
}

bool NeedsLibraryPrinter(const Descriptor* descriptor) {
  static std::mutex mu;
  static auto* cache = new std::unordered_map<const Descriptor*, bool>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(descriptor);
  if (it != cache->end()) return it->second;
  std::unordered_map<const Descriptor*, bool> seen;
  bool result = ReachesDynamicType(descriptor, &seen);
  cache->emplace(descriptor, result);
  return result;
}

void AppendString(absl::string_view text, std::string* out) {
  out->push_back('"');
  size_t plain = 0;  // Start of the bytes not escaped yet.
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (static_cast<unsigned char>(c) >= 0x20 && c != '"' && c != '\\') {
      continue;
    }
    out->append(text.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default: {
        static const char kHex[] = "0123456789abcdef";
        out->append("\\u00");
        out->push_back(kHex[(c >> 4) & 0xf]);
        out->push_back(kHex[c & 0xf]);
      }
    }
  }
  out->append(text.data() + plain, text.size() - plain);
  out->push_back('"');
}

// Appends `value` as `digits` decimal digits, zero-padded.
void AppendDigits(int64_t value, int digits, std::string* out) {
  char text[20];
  for (int i = digits - 1; i >= 0; --i) {
    text[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out->append(text, static_cast<size_t>(digits));
}

// A Timestamp (in range) as TimeUtil::ToString prints it, quoted:
// "2024-01-02T03:04:05Z", with 3, 6 or 9 digits of fraction when nanos are
// not 0.
void AppendTimestamp(int64_t seconds, int32_t nanos, std::string* out) {
  const absl::CivilSecond time =
      absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
  out->push_back('"');
  AppendDigits(time.year(), 4, out);
  out->push_back('-');
  AppendDigits(time.month(), 2, out);
  out->push_back('-');
  AppendDigits(time.day(), 2, out);
  out->push_back('T');
  AppendDigits(time.hour(), 2, out);
  out->push_back(':');
  AppendDigits(time.minute(), 2, out);
  out->push_back(':');
  AppendDigits(time.second(), 2, out);
  if (nanos != 0) {
    out->push_back('.');
    if (nanos % 1000000 == 0) {
      AppendDigits(nanos / 1000000, 3, out);
    } else if (nanos % 1000 == 0) {
      AppendDigits(nanos / 1000, 6, out);
    } else {
      AppendDigits(nanos, 9, out);
    }
  }
  out->append("Z\"");
}

template <typename Float>
void AppendFloat(Float value, std::string* out) {
  if (std::isnan(value)) {
    out->append("\"NaN\"");
  } else if (std::isinf(value)) {
    out->append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char buffer[64];
    // Shortest text that reads back as the same value.
    auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    out->append(buffer, result.ptr);
  }
}

class Printer {
 public:
  absl::Status Message(const google::protobuf::Message& message,
                       std::string* out);

 private:
  // A message of package google.protobuf: Timestamp, Duration, FieldMask
  // and the wrappers in their special forms, others as Fields does.
  absl::Status WellKnownType(const google::protobuf::Message& message,
                             std::string* out);
  // The set fields of `message` as a JSON object.
  absl::Status Fields(const google::protobuf::Message& message,
                      std::string* out);
  // One value of `field` (element `index` when repeated, else -1).
  absl::Status Value(const google::protobuf::Message& message,
                     const FieldDescriptor* field, int index, std::string* out);
  absl::Status MapEntries(const google::protobuf::Message& message,
                          const FieldDescriptor* field, std::string* out);
};

absl::Status Printer::Message(const google::protobuf::Message& message,
                              std::string* out) {
  const Descriptor* descriptor = message.GetDescriptor();
  if (descriptor->file()->package() == "google.protobuf") {
    return WellKnownType(message, out);
  }
  return Fields(message, out);
}

absl::Status Printer::WellKnownType(const google::protobuf::Message& message,
                                    std::string* out) {
  const Descriptor* descriptor = message.GetDescriptor();
  const std::string& name = descriptor->full_name();
  if (name == "google.protobuf.Timestamp" ||
      name == "google.protobuf.Duration") {
    const Reflection* reflection = message.GetReflection();
    int64_t seconds =
        reflection->GetInt64(message, descriptor->FindFieldByNumber(1));
    int32_t nanos =
        reflection->GetInt32(message, descriptor->FindFieldByNumber(2));
    using google::protobuf::util::TimeUtil;
    if (name == "google.protobuf.Timestamp") {
      if (seconds < TimeUtil::kTimestampMinSeconds ||
          seconds > TimeUtil::kTimestampMaxSeconds || nanos < 0 ||
          nanos > 999999999) {
        return absl::InvalidArgumentError("Timestamp out of range");
      }
      AppendTimestamp(seconds, nanos, out);
      return absl::OkStatus();
    }
    if (seconds < TimeUtil::kDurationMinSeconds ||
        seconds > TimeUtil::kDurationMaxSeconds || nanos < -999999999 ||
        nanos > 999999999 || (seconds > 0 && nanos < 0) ||
        (seconds < 0 && nanos > 0)) {
      return absl::InvalidArgumentError("Duration out of range");
    }
    google::protobuf::Duration duration;
    duration.set_seconds(seconds);
    duration.set_nanos(nanos);
    AppendString(TimeUtil::ToString(duration), out);
    return absl::OkStatus();
  }
  if (name == "google.protobuf.FieldMask") {
    google::protobuf::FieldMask mask;
    mask.CopyFrom(message);
    std::string text;
    google::protobuf::util::FieldMaskUtil::ToJsonString(mask, &text);
    AppendString(text, out);
    return absl::OkStatus();
  }
  if (IsWrapper(name)) {
    // The wrapped value itself, even when it is the default.
    return Value(message, descriptor->FindFieldByNumber(1), -1, out);
  }
  return Fields(message, out);
}

absl::Status Printer::Fields(const google::protobuf::Message& message,
                             std::string* out) {
  const Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  out->push_back('{');
  bool first = true;
  for (const FieldDescriptor* field : fields) {
    if (!first) out->push_back(',');
    first = false;
    AppendString(field->json_name(), out);
    out->push_back(':');
    absl::Status status;
    if (field->is_map()) {
      status = MapEntries(message, field, out);
    } else if (field->is_repeated()) {
      out->push_back('[');
      int size = reflection->FieldSize(message, field);
      for (int i = 0; i < size && status.ok(); ++i) {
        if (i > 0) out->push_back(',');
        status = Value(message, field, i, out);
      }
      out->push_back(']');
    } else {
      status = Value(message, field, -1, out);
    }
    if (!status.ok()) return status;
  }
  out->push_back('}');
  return absl::OkStatus();
}

absl::Status Printer::MapEntries(const google::protobuf::Message& message,
                                 const FieldDescriptor* field,
                                 std::string* out) {
  const Reflection* reflection = message.GetReflection();
  const FieldDescriptor* key = field->message_type()->FindFieldByNumber(1);
  const FieldDescriptor* value = field->message_type()->FindFieldByNumber(2);
  out->push_back('{');
  int size = reflection->FieldSize(message, field);
  for (int i = 0; i < size; ++i) {
    if (i > 0) out->push_back(',');
    const google::protobuf::Message& entry =
        reflection->GetRepeatedMessage(message, field, i);
    const Reflection* entry_reflection = entry.GetReflection();
    std::string key_text;
    switch (key->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        key_text = entry_reflection->GetString(entry, key);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        key_text = entry_reflection->GetBool(entry, key) ? "true" : "false";
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        key_text = absl::StrCat(entry_reflection->GetInt32(entry, key));
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        key_text = absl::StrCat(entry_reflection->GetUInt32(entry, key));
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        key_text = absl::StrCat(entry_reflection->GetInt64(entry, key));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        key_text = absl::StrCat(entry_reflection->GetUInt64(entry, key));
        break;
      default:
        return absl::InternalError("unsupported map key type");
    }
    AppendString(key_text, out);
    out->push_back(':');
    absl::Status status = Value(entry, value, -1, out);
    if (!status.ok()) return status;
  }
  out->push_back('}');
  return absl::OkStatus();
}

absl::Status Printer::Value(const google::protobuf::Message& message,
                            const FieldDescriptor* field, int index,
                            std::string* out) {
  const Reflection* r = message.GetReflection();
  bool repeated = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(out, repeated ? r->GetRepeatedInt32(message, field, index)
                                    : r->GetInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(out, repeated
                               ? r->GetRepeatedUInt32(message, field, index)
                               : r->GetUInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(out, "\"",
                      repeated ? r->GetRepeatedInt64(message, field, index)
                               : r->GetInt64(message, field),
                      "\"");
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(out, "\"",
                      repeated ? r->GetRepeatedUInt64(message, field, index)
                               : r->GetUInt64(message, field),
                      "\"");
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      AppendFloat(repeated ? r->GetRepeatedDouble(message, field, index)
                           : r->GetDouble(message, field),
                  out);
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      AppendFloat(repeated ? r->GetRepeatedFloat(message, field, index)
                           : r->GetFloat(message, field),
                  out);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append((repeated ? r->GetRepeatedBool(message, field, index)
                            : r->GetBool(message, field))
                      ? "true"
                      : "false");
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      int number = repeated ? r->GetRepeatedEnumValue(message, field, index)
                            : r->GetEnumValue(message, field);
      if (field->enum_type()->full_name() == "google.protobuf.NullValue") {
        out->append("null");
        break;
      }
      const google::protobuf::EnumValueDescriptor* value =
          field->enum_type()->FindValueByNumber(number);
      if (value != nullptr) {
        AppendString(value->name(), out);
      } else {
        absl::StrAppend(out, number);  // An unknown value keeps its number.
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& text =
          repeated
              ? r->GetRepeatedStringReference(message, field, index, &scratch)
              : r->GetStringReference(message, field, &scratch);
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        AppendString(absl::Base64Escape(text), out);
      } else {
        AppendString(text, out);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return Message(repeated ? r->GetRepeatedMessage(message, field, index)
                              : r->GetMessage(message, field),
                     out);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> PrintJson(
    const google::protobuf::Message& message) {
  std::string out;
  if (NeedsLibraryPrinter(message.GetDescriptor())) {
    auto status = google::protobuf::util::MessageToJsonString(message, &out);
    if (!status.ok()) {
      return absl::InvalidArgumentError(status.message().ToString());
    }
    return out;
  }
  out.reserve(2048);
  Printer printer;
  absl::Status status = printer.Message(message, &out);
  if (!status.ok()) return status;
  return out;
}

}  // namespace dsar::gateway
