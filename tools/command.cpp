#include "tools/command.hpp"

#include <cstdio>
#include <exception>

namespace pvnet::tools {

int run_command(const Command& c, int argc, char** argv) {
  try {
    return c.run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pvnet %s: %s (unexpected: please report it)\n", c.name, e.what());
  } catch (...) {
    std::fprintf(stderr, "pvnet %s: an unknown exception (unexpected: please report it)\n", c.name);
  }
  return kUnexpectedErrorStatus;
}

}  // namespace pvnet::tools
