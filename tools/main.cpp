// pvnet: one command, subcommands for everything (replay, bench, backend, frontend, guest, ...).
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "tools/command.hpp"

namespace pvnet::tools {
std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}
}  // namespace pvnet::tools

static void usage(FILE* out) {
  auto cmds = pvnet::tools::commands();
  std::sort(cmds.begin(), cmds.end(), [](auto& a, auto& b) { return std::strcmp(a.name, b.name) < 0; });
  std::fprintf(out,
               "usage: pvnet <command> [options]\n\n"
               "A Xen-style paravirtual split network driver with header slots, and the tools to measure how\n"
               "much copying and mapping dom0 avoids. `pvnet <command> --help` for a command's options.\n\n"
               "commands:\n");
  for (auto& c : cmds) std::fprintf(out, "  %-12s %s\n", c.name, c.summary);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (auto& c : pvnet::tools::commands()) {
    if (!std::strcmp(c.name, argv[1])) return pvnet::tools::run_command(c, argc - 1, argv + 1);
  }
  std::fprintf(stderr, "pvnet: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
