#include "tools/dsarctl/json_call.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/impl/codegen/rpc_method.h>
#include <grpcpp/impl/codegen/sync_stream.h>

#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace dsarctl {
namespace {

grpc::ByteBuffer ToByteBuffer(const google::protobuf::Message& message) {
  std::string bytes = message.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

bool ParseByteBuffer(const grpc::ByteBuffer& buffer,
                     google::protobuf::Message* message) {
  grpc::Slice slice;
  if (!buffer.DumpToSingleSlice(&slice).ok()) return false;
  return message->ParseFromArray(slice.begin(), static_cast<int>(slice.size()));
}

}  // namespace

absl::StatusOr<std::string> ReadRequestText(const std::string& source) {
  if (source.empty()) return std::string("{}");
  if (source == "@-") {
    return std::string(std::istreambuf_iterator<char>(std::cin),
                       std::istreambuf_iterator<char>());
  }
  if (source[0] == '@') {
    absl::StatusOr<std::string> text = dsar::ReadFile(source.substr(1));
    if (!text.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot read ", source.substr(1), ": ", text.status().message()));
    }
    return text;
  }
  return source;
}

absl::Status CheckJsonSyntax(const std::string& text) {
  try {
    nlohmann::json parsed = nlohmann::json::parse(text);
    (void)parsed;
    return absl::OkStatus();
  } catch (const nlohmann::json::parse_error& error) {
    // error.byte counts from 1 and points at the character that broke the
    // grammar (one past the end for truncated input).
    size_t offset = error.byte == 0 ? 0 : error.byte - 1;
    if (offset > text.size()) offset = text.size();
    size_t line_start = 0;
    if (offset > 0) {
      size_t newline = text.rfind('\n', offset - 1);
      line_start = newline == std::string::npos ? 0 : newline + 1;
    }
    size_t line = 1;
    for (size_t i = 0; i < line_start; ++i) line += text[i] == '\n';
    size_t column = offset - line_start + 1;
    size_t line_end = text.find('\n', line_start);
    std::string snippet = text.substr(
        line_start,
        (line_end == std::string::npos ? text.size() : line_end) - line_start);
    // nlohmann's text: "[json.exception.parse_error.101] parse error at line
    // 1, column 9: syntax error while parsing ..." - keep what follows ": ".
    std::string what = error.what();
    size_t colon = what.find(": ");
    if (colon != std::string::npos) what = what.substr(colon + 2);
    std::string caret(column > 0 ? column - 1 : 0, ' ');
    for (size_t i = 0; i < caret.size() && i < snippet.size(); ++i) {
      if (snippet[i] == '\t') caret[i] = '\t';
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed JSON at line ", line, ", column ", column, " (byte offset ",
        offset, "): ", what, "\n  ", snippet, "\n  ", caret, "^"));
  } catch (const nlohmann::json::exception& error) {
    // Well-formed but not representable, e.g. a number beyond double (1e999).
    std::string what = error.what();
    size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON: ", what));
  }
}

absl::Status JsonToMessage(const std::string& text,
                           google::protobuf::Message* message) {
  absl::Status syntax = CheckJsonSyntax(text);
  if (!syntax.ok()) return syntax;
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  auto status =
      google::protobuf::util::JsonStringToMessage(text, message, parse);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the JSON does not fit ", message->GetDescriptor()->full_name(), ": ",
        std::string(status.message())));
  }
  return absl::OkStatus();
}

grpc::Status CallMethod(
    grpc::Channel* channel, const Options& options,
    const google::protobuf::MethodDescriptor& method,
    const google::protobuf::Message& request,
    google::protobuf::DynamicMessageFactory* factory,
    const std::function<void(const google::protobuf::Message&)>& on_response) {
  if (method.client_streaming()) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        absl::StrCat(method.full_name(),
                                     " is client-streaming: call sends one "
                                     "request, so it supports unary and "
                                     "server-streaming methods only"));
  }
  const std::string path =
      absl::StrCat("/", method.service()->full_name(), "/", method.name());
  const google::protobuf::Message* prototype =
      factory->GetPrototype(method.output_type());
  std::unique_ptr<google::protobuf::Message> response(prototype->New());
  grpc::ClientContext context;
  options.Prepare(&context);
  grpc::ByteBuffer request_bytes = ToByteBuffer(request);
  grpc::ByteBuffer response_bytes;
  if (!method.server_streaming()) {
    grpc::internal::RpcMethod rpc(path.c_str(),
                                  grpc::internal::RpcMethod::NORMAL_RPC);
    grpc::Status status =
        grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
            channel, rpc, &context, request_bytes, &response_bytes);
    if (!status.ok()) return status;
    if (!ParseByteBuffer(response_bytes, response.get())) {
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          absl::StrCat("the response is not a valid ",
                                       method.output_type()->full_name()));
    }
    on_response(*response);
    return grpc::Status::OK;
  }
  grpc::internal::RpcMethod rpc(path.c_str(),
                                grpc::internal::RpcMethod::SERVER_STREAMING);
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
          channel, rpc, &context, request_bytes));
  while (reader->Read(&response_bytes)) {
    response->Clear();
    if (!ParseByteBuffer(response_bytes, response.get())) {
      context.TryCancel();
      (void)reader->Finish();
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          absl::StrCat("a response is not a valid ",
                                       method.output_type()->full_name()));
    }
    on_response(*response);
  }
  return reader->Finish();
}

}  // namespace dsarctl
