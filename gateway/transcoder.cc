#include "gateway/transcoder.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gateway/json_printer.h"
#include "nlohmann/json.hpp"

namespace dsar::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

absl::Status Invalid(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

// The fields named by a dotted path ("a.b"), outermost first. Each part may
// be the proto name or the JSON (lowerCamelCase) name. Every part but the
// last must be a singular message field.
absl::StatusOr<std::vector<const FieldDescriptor*>> ResolveFieldPath(
    const Descriptor* descriptor, const std::string& path) {
  std::vector<const FieldDescriptor*> chain;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (descriptor == nullptr) {
      return Invalid(path, "no such field in the request");
    }
    std::string name(part);
    const FieldDescriptor* field = descriptor->FindFieldByName(name);
    if (field == nullptr) field = descriptor->FindFieldByCamelcaseName(name);
    if (field == nullptr) return Invalid(path, "no such field in the request");
    chain.push_back(field);
    descriptor = field->is_repeated() ? nullptr : field->message_type();
  }
  if (chain.back()->is_map()) {
    return Invalid(path, "map fields cannot be set from the URL");
  }
  return chain;
}

// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t length;
    uint32_t min;
    uint32_t code;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2, min = 0x80, code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3, min = 0x800, code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4, min = 0x10000, code = c & 0x07;
    } else {
      return false;
    }
    if (text.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

// Sets the field at `path` to the text `value` in `params`, a JSON object
// that JsonStringToMessage will parse. Every value is written as a JSON
// string: the protobuf JSON parser accepts quoted numbers, booleans and enum
// numbers, and well-known types (Timestamp, Duration …) are strings anyway.
absl::Status AddParam(const Descriptor* descriptor, const std::string& path,
                      const std::string& value, nlohmann::json* params) {
  absl::StatusOr<std::vector<const FieldDescriptor*>> chain =
      ResolveFieldPath(descriptor, path);
  if (!chain.ok()) return chain.status();
  // JSON text, and protobuf strings, are UTF-8; the URL's bytes may not be.
  if (!IsValidUtf8(value)) return Invalid(path, "not valid UTF-8");
  nlohmann::json* node = params;
  for (size_t i = 0; i + 1 < chain->size(); ++i) {
    node = &(*node)[(*chain)[i]->name()];
    // Already set as a whole ("at=…" then "at.seconds=…").
    if (!node->is_null() && !node->is_object()) {
      return Invalid(path, "given more than once");
    }
  }
  const FieldDescriptor* leaf = chain->back();
  if (leaf->type() == FieldDescriptor::TYPE_MESSAGE &&
      leaf->message_type()->file()->name().rfind("google/protobuf/", 0) != 0) {
    return Invalid(path, "a message field cannot be set from one URL value");
  }
  nlohmann::json& slot = (*node)[leaf->name()];
  if (leaf->is_repeated()) {
    slot.push_back(value);
  } else if (!slot.is_null()) {
    return Invalid(path, "given more than once");
  } else {
    slot = value;
  }
  return absl::OkStatus();
}

// True when every member of `params` (an object AddParam built for `type`)
// is a string field outside any oneof, singular or repeated, possibly
// nested in singular message fields: the JSON parser would copy such
// values as they are, so SetStringFields may set them instead.
bool OnlyStringFields(const Descriptor& type, const nlohmann::json& params) {
  for (const auto& [name, value] : params.items()) {
    const FieldDescriptor* field = type.FindFieldByName(name);
    if (field == nullptr || field->containing_oneof() != nullptr) return false;
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      if (!field->is_repeated()) {
        if (!value.is_string()) return false;
        continue;
      }
      if (!value.is_array()) return false;
      for (const nlohmann::json& item : value) {
        if (!item.is_string()) return false;
      }
    } else if (field->type() == FieldDescriptor::TYPE_MESSAGE &&
               !field->is_repeated() && value.is_object() &&
               field->message_type()->file()->name().rfind("google/protobuf/",
                                                           0) != 0) {
      if (!OnlyStringFields(*field->message_type(), value)) return false;
    } else {
      return false;
    }
  }
  return true;
}

// Sets the fields of `params` on `message`. REQUIRES:
// OnlyStringFields(*message->GetDescriptor(), params).
void SetStringFields(const nlohmann::json& params, Message* message) {
  const Descriptor& type = *message->GetDescriptor();
  const google::protobuf::Reflection& reflection = *message->GetReflection();
  for (const auto& [name, value] : params.items()) {
    const FieldDescriptor* field = type.FindFieldByName(name);
    if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
      SetStringFields(value, reflection.MutableMessage(message, field));
    } else if (field->is_repeated()) {
      for (const nlohmann::json& item : value) {
        reflection.AddString(message, field, item.get<std::string>());
      }
    } else {
      reflection.SetString(message, field, value.get<std::string>());
    }
  }
}

absl::Status ParseJsonInto(const std::string& json, Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status =
      google::protobuf::util::JsonStringToMessage(json, message, options);
  if (status.ok()) return absl::OkStatus();
  return JsonParseError(status.message().ToString(), "");
}

bool IsBlank(const std::string& text) {
  for (char c : text) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

absl::Status JsonParseError(absl::string_view parser_message,
                            const std::string& prefix) {
  // Syntax errors are followed by the offending text and a caret line.
  absl::string_view message = parser_message.substr(
      0, std::min(parser_message.find('\n'), parser_message.size()));
  std::string path;
  std::string reason;
  if (absl::StartsWith(message, "(")) {
    size_t close = message.find(')');
    absl::string_view location = message.substr(1, close - 1);
    absl::string_view rest = message.substr(close + 1);
    if (absl::StartsWith(rest, ": ")) {
      path = std::string(location);
      reason = std::string(rest.substr(2));
    } else if (absl::StartsWith(rest, " ")) {
      rest.remove_prefix(1);
      size_t colon = rest.find(": ");
      path = absl::StrCat(location, ".", rest.substr(0, colon));
      reason = colon == absl::string_view::npos
                   ? std::string(rest)
                   : std::string(rest.substr(colon + 2));
    }
  } else {
    size_t colon = message.find(": ");
    if (colon != absl::string_view::npos && colon > 0 &&
        message.substr(0, colon).find(' ') == absl::string_view::npos) {
      path = std::string(message.substr(0, colon));
      reason = std::string(message.substr(colon + 2));
    }
  }
  if (reason == "Cannot find field.") reason = "unknown field";
  if (!prefix.empty() && !path.empty()) path = absl::StrCat(prefix, ".", path);
  if (!prefix.empty() && path.empty() && !reason.empty()) path = prefix;
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request body is not a valid JSON object: ",
                     reason.empty() ? message : absl::string_view(reason)));
  }
  return Invalid(path, reason);
}

absl::StatusOr<std::unique_ptr<Message>> BuildRequestMessage(
    const RouteMatch& match, const QueryParams& query,
    const std::string& body) {
  const Route& route = *match.route;
  const Descriptor* input = route.method->input_type();
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(
          input);
  if (prototype == nullptr) {
    return absl::InternalError(
        absl::StrCat("no generated class for ", input->full_name()));
  }
  std::unique_ptr<Message> message(prototype->New());

  if (route.body == "*") {
    absl::Status status =
        ParseJsonInto(IsBlank(body) ? "{}" : body, message.get());
    if (!status.ok()) return status;
  } else if (!route.body.empty()) {
    if (!IsBlank(body)) {
      // The body is spliced into {"<field>": …}: unless it is one JSON
      // value, it could close that value and set other fields
      // ('{}, "other": 1').
      if (!nlohmann::json::accept(body)) {
        return absl::InvalidArgumentError(
            absl::StrCat("request body is not one JSON value (it is the field ",
                         route.body, ")"));
      }
      absl::Status status = ParseJsonInto(
          absl::StrCat("{\"", route.body, "\":", body, "}"), message.get());
      if (!status.ok()) return status;
    }
  } else if (!IsBlank(body)) {
    return absl::InvalidArgumentError(absl::StrCat(
        route.http_method, " ", route.path.text(), " takes no request body"));
  }

  nlohmann::json params = nlohmann::json::object();
  if (!query.empty()) {
    if (route.body == "*") {
      return Invalid(query.begin()->first,
                     "unknown query parameter (this route takes every field "
                     "in the body)");
    }
    for (const auto& [name, value] : query) {
      for (const PathBinding& binding : match.bindings) {
        if (binding.field_path == name) {
          return Invalid(name, "already bound by the URL path");
        }
      }
      absl::Status status = AddParam(input, name, value, &params);
      if (!status.ok()) return status;
    }
  }
  for (const PathBinding& binding : match.bindings) {
    absl::Status status =
        AddParam(input, binding.field_path, binding.value, &params);
    if (!status.ok()) return status;
  }
  if (!params.empty()) {
    // Parsed apart and merged, so path values replace what the body said.
    std::unique_ptr<Message> from_url(prototype->New());
    if (OnlyStringFields(*input, params)) {
      // The common case (an id in the path), without printing and parsing
      // JSON.
      SetStringFields(params, from_url.get());
    } else {
      absl::Status status = ParseJsonInto(params.dump(), from_url.get());
      if (!status.ok()) return status;
    }
    message->MergeFrom(*from_url);
  }
  return message;
}

absl::StatusOr<std::unique_ptr<Message>> ParseResponse(
    const Route& route, const std::string& serialized) {
  const Descriptor* output = route.method->output_type();
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(
          output);
  if (prototype == nullptr) {
    return absl::InternalError(
        absl::StrCat("no generated class for ", output->full_name()));
  }
  std::unique_ptr<Message> message(prototype->New());
  if (!message->ParseFromString(serialized)) {
    return absl::InternalError(absl::StrCat(
        "the backend's answer is not a valid ", output->full_name()));
  }
  return message;
}

absl::StatusOr<std::string> ResponseJson(const Route& route,
                                         const std::string& serialized) {
  absl::StatusOr<std::unique_ptr<Message>> message =
      ParseResponse(route, serialized);
  if (!message.ok()) return message.status();
  return ResponseJson(route, **message);
}

absl::StatusOr<std::string> ResponseJson(const Route& route,
                                         const Message& response) {
  const Descriptor* output = route.method->output_type();
  absl::StatusOr<std::string> printed = PrintJson(response);
  if (!printed.ok()) return absl::InternalError(printed.status().message());
  std::string json = *std::move(printed);
  if (route.response_body.empty()) return json;
  const FieldDescriptor* field = output->FindFieldByName(route.response_body);
  nlohmann::json whole = nlohmann::json::parse(json);
  auto it = whole.find(field->json_name());
  if (it == whole.end()) {
    // Default values are omitted from the JSON; answer the JSON default.
    if (field->is_repeated()) return std::string("[]");
    if (field->type() == FieldDescriptor::TYPE_MESSAGE)
      return std::string("{}");
    return std::string("null");
  }
  return it->dump();
}

}  // namespace dsar::gateway
