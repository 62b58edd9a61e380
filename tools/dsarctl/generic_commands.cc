// ls, describe and call: grpc_cli for any server with reflection.

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/dsarctl/commands.h"
#include "tools/dsarctl/json_call.h"
#include "tools/dsarctl/output.h"
#include "tools/dsarctl/reflection_client.h"

namespace dsarctl {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

// "rpc Get(dsar.v1.GetRequestRequest) returns (stream dsar.v1.Request)".
std::string Signature(const MethodDescriptor& method) {
  return absl::StrCat("rpc ", method.name(), "(",
                      method.client_streaming() ? "stream " : "",
                      method.input_type()->full_name(), ") returns (",
                      method.server_streaming() ? "stream " : "",
                      method.output_type()->full_name(), ")");
}

Json MethodTree(const MethodDescriptor& method) {
  Json tree = Json::object();
  tree["name"] = method.name();
  tree["full_name"] =
      absl::StrCat(method.service()->full_name(), "/", method.name());
  tree["input_type"] = method.input_type()->full_name();
  tree["output_type"] = method.output_type()->full_name();
  tree["client_streaming"] = method.client_streaming();
  tree["server_streaming"] = method.server_streaming();
  return tree;
}

int ReflectionFailed(ReflectionClient& client, const std::string& what) {
  if (client.status().error_code() == grpc::StatusCode::NOT_FOUND ||
      client.status().ok()) {
    std::fprintf(stderr, "dsarctl: not found: %s\n",
                 client.status().ok()
                     ? what.c_str()
                     : client.status().error_message().c_str());
    return kExitNotFound;
  }
  if (client.status().error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    return Usage(client.status().error_message());
  }
  return ExitFor(client.status());
}

}  // namespace

int RunLs(const Options& options) {
  if (options.positional.size() > 1)
    return Usage("ls: takes at most one service");
  const bool long_listing = options.Has("long");
  ReflectionClient client(OpenChannel(options), options);
  std::vector<std::string> names;
  grpc::Status status = client.ListServices(&names);
  if (!status.ok()) return ExitFor(status);

  std::vector<const ServiceDescriptor*> services;
  if (options.positional.empty()) {
    if (long_listing || options.output != "table") {
      for (const std::string& name : names) {
        const ServiceDescriptor* service = client.FindService(name);
        // A listed service may have no descriptor to give (gRPC's built-in
        // health service is not generated from a .proto): list it bare.
        if (service == nullptr &&
            client.status().error_code() != grpc::StatusCode::NOT_FOUND) {
          return ReflectionFailed(client, name);
        }
        services.push_back(service);
      }
    }
  } else {
    // "ls Service/Method" describes one method, as grpc_cli does.
    const std::string& name = options.positional[0];
    if (name.find('/') != std::string::npos) {
      const MethodDescriptor* method = client.FindMethod(name);
      if (method == nullptr) return ReflectionFailed(client, name);
      if (options.output != "table") {
        PrintTree(options, MethodTree(*method));
      } else {
        std::printf("%s\n", long_listing ? Signature(*method).c_str()
                                         : method->name().c_str());
      }
      return kExitOk;
    }
    const ServiceDescriptor* service = client.FindService(name);
    if (service == nullptr) return ReflectionFailed(client, name);
    if (options.output != "table") {
      Json methods = Json::array();
      for (int i = 0; i < service->method_count(); ++i) {
        methods.push_back(long_listing ? MethodTree(*service->method(i))
                                       : Json(service->method(i)->name()));
      }
      PrintTree(options, methods);
      return kExitOk;
    }
    for (int i = 0; i < service->method_count(); ++i) {
      std::printf("%s\n", long_listing ? Signature(*service->method(i)).c_str()
                                       : service->method(i)->name().c_str());
    }
    return kExitOk;
  }

  if (options.output != "table") {
    Json list = Json::array();
    for (size_t s = 0; s < services.size(); ++s) {
      const ServiceDescriptor* service = services[s];
      if (!long_listing || service == nullptr) {
        list.push_back(names[s]);
        continue;
      }
      Json tree = Json::object();
      tree["name"] = service->full_name();
      tree["file"] = service->file()->name();
      tree["methods"] = Json::array();
      for (int i = 0; i < service->method_count(); ++i) {
        tree["methods"].push_back(MethodTree(*service->method(i)));
      }
      list.push_back(tree);
    }
    PrintTree(options, list);
    return kExitOk;
  }
  if (!long_listing) {
    for (const std::string& name : names) std::printf("%s\n", name.c_str());
    return kExitOk;
  }
  for (size_t s = 0; s < services.size(); ++s) {
    if (services[s] == nullptr) {
      std::printf("%s%s  %s\n", s ? "\n" : "",
                  Paint(options, names[s], Color::kBold).c_str(),
                  Paint(options, "(no descriptor available through reflection)",
                        Color::kDim)
                      .c_str());
      continue;
    }
    const ServiceDescriptor& service = *services[s];
    std::printf("%s%s  %s\n", s ? "\n" : "",
                Paint(options, service.full_name(), Color::kBold).c_str(),
                Paint(options, absl::StrCat("(", service.file()->name(), ")"),
                      Color::kDim)
                    .c_str());
    for (int i = 0; i < service.method_count(); ++i) {
      std::printf("  %s\n", Signature(*service.method(i)).c_str());
    }
  }
  return kExitOk;
}

int RunDescribe(const Options& options) {
  if (options.positional.size() != 1) {
    return Usage("describe: takes one symbol");
  }
  const std::string& symbol = options.positional[0];
  ReflectionClient client(OpenChannel(options), options);
  const google::protobuf::DescriptorPool& pool = client.pool();

  // Try the kinds of symbol in turn; each miss costs one reflection call at
  // most (the server's answer for a name is cached).
  const ServiceDescriptor* service = nullptr;
  const MethodDescriptor* method = nullptr;
  const Descriptor* message = pool.FindMessageTypeByName(symbol);
  const EnumDescriptor* enumeration = nullptr;
  if (message == nullptr && client.status().ok()) {
    enumeration = pool.FindEnumTypeByName(symbol);
  }
  grpc::Status failure = client.status();
  if (message == nullptr && enumeration == nullptr &&
      (failure.ok() || failure.error_code() == grpc::StatusCode::NOT_FOUND)) {
    service = client.FindService(symbol);
    if (service == nullptr &&
        (client.status().error_code() == grpc::StatusCode::NOT_FOUND ||
         client.status().ok())) {
      if (symbol.find_first_of("./") != std::string::npos) {
        method = client.FindMethod(symbol);
      }
    }
  }
  if (!message && !enumeration && !service && !method) {
    if (client.status().error_code() == grpc::StatusCode::UNAVAILABLE ||
        client.status().error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
        client.status().error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      return ExitFor(client.status());
    }
    std::fprintf(stderr,
                 "dsarctl: not found: the server knows no service, method, "
                 "message or enum \"%s\"\n",
                 symbol.c_str());
    return kExitNotFound;
  }

  if (options.output != "table") {
    // The descriptor itself, for scripts.
    if (service) {
      google::protobuf::ServiceDescriptorProto proto;
      service->CopyTo(&proto);
      PrintMessage(options, proto);
    } else if (method) {
      google::protobuf::MethodDescriptorProto proto;
      method->CopyTo(&proto);
      PrintMessage(options, proto);
    } else if (message) {
      google::protobuf::DescriptorProto proto;
      message->CopyTo(&proto);
      PrintMessage(options, proto);
    } else {
      google::protobuf::EnumDescriptorProto proto;
      enumeration->CopyTo(&proto);
      PrintMessage(options, proto);
    }
    return kExitOk;
  }

  auto header = [&](const std::string& kind, const std::string& name,
                    const google::protobuf::FileDescriptor* file) {
    std::printf("%s\n",
                Paint(options,
                      absl::StrCat("// ", kind, " ", name, " (", file->name(),
                                   ", package ", file->package(), ")"),
                      Color::kDim)
                    .c_str());
  };
  if (service) {
    header("service", service->full_name(), service->file());
    std::fputs(service->DebugString().c_str(), stdout);
  } else if (method) {
    header("method",
           absl::StrCat(method->service()->full_name(), "/", method->name()),
           method->file());
    std::printf("%s;\n\n", Signature(*method).c_str());
    std::fputs(method->input_type()->DebugString().c_str(), stdout);
    std::printf("\n");
    std::fputs(method->output_type()->DebugString().c_str(), stdout);
  } else if (message) {
    header("message", message->full_name(), message->file());
    std::fputs(message->DebugString().c_str(), stdout);
  } else {
    header("enum", enumeration->full_name(), enumeration->file());
    std::fputs(enumeration->DebugString().c_str(), stdout);
  }
  return kExitOk;
}

int RunCall(const Options& options) {
  if (options.positional.empty() || options.positional.size() > 2) {
    return Usage("call: takes a method (Service/Method) and a JSON request");
  }
  if (options.positional.size() == 2 && options.Has("data")) {
    return Usage("call: give the request either as an argument or with -d");
  }
  absl::StatusOr<std::string> text =
      ReadRequestText(options.positional.size() == 2 ? options.positional[1]
                                                     : options.Flag("data"));
  if (!text.ok()) return Usage(absl::StrCat("call: ", text.status().message()));

  std::shared_ptr<grpc::Channel> channel = OpenChannel(options);
  ReflectionClient client(channel, options);
  const MethodDescriptor* method = client.FindMethod(options.positional[0]);
  if (method == nullptr) {
    return ReflectionFailed(client, options.positional[0]);
  }
  google::protobuf::DynamicMessageFactory factory(&client.pool());
  std::unique_ptr<google::protobuf::Message> request(
      factory.GetPrototype(method->input_type())->New());
  absl::Status parsed = JsonToMessage(*text, request.get());
  if (!parsed.ok()) return Usage(absl::StrCat("call: ", parsed.message()));

  const bool emit_defaults = options.Has("emit-defaults");
  Options format = options;
  if (format.output == "table") format.output = "json";  // JSON by default.
  bool first = true;
  grpc::Status status =
      CallMethod(channel.get(), options, *method, *request, &factory,
                 [&](const google::protobuf::Message& response) {
                   if (!first && format.output == "yaml") std::printf("---\n");
                   first = false;
                   PrintMessage(format, response, emit_defaults);
                   std::fflush(stdout);
                 });
  if (!status.ok()) return ExitFor(status);
  return kExitOk;
}

}  // namespace dsarctl
