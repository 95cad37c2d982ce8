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

// Exit status of a subcommand that ended on an exception nobody handled (a last line of defence: every subcommand
// reports its errors itself; an exception must still end in a message and a status, never in std::terminate).
inline constexpr int kUnexpectedErrorStatus = 1;
// Runs `c`; an exception that escapes it is printed with the subcommand's name ("pvnet guest: filesystem error:
// ...") and ends in kUnexpectedErrorStatus, after the stack unwound (temporary directories removed, children
// stopped).
int run_command(const Command& c, int argc, char** argv);

#define PVNET_COMMAND(ident, name, summary, fn) \
  static ::pvnet::tools::CommandRegistrar pvnet_cmd_##ident{::pvnet::tools::Command{name, summary, fn}}

}  // namespace pvnet::tools
