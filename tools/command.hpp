// A pvnet subcommand. Each lives in its own tools/cmd_<name>.cpp and registers itself with PVNET_COMMAND.
#pragma once
#include <string>
#include <vector>

namespace pvnet::tools {

struct Command {
  const char* name;
  const char* summary;  // one line, shown by `pvnet --help`
  int (*run)(int argc, char** argv);  // argv[0] is the subcommand name; returns the exit status
};

std::vector<Command>& commands();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { commands().push_back(c); }
};

#define PVNET_COMMAND(ident, name, summary, fn) \
  static ::pvnet::tools::CommandRegistrar pvnet_cmd_##ident{::pvnet::tools::Command{name, summary, fn}}

}  // namespace pvnet::tools
