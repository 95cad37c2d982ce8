// The option parsing every subcommand shares: --help prints the description, a bad option says why and where to
// look, and the subcommand goes on only with a parsed, validated variables_map.
#pragma once
#include <boost/program_options.hpp>
#include <iostream>
#include <optional>
#include <string>

namespace pvnet::tools {

// nullopt: go on with `vm`. Otherwise the subcommand's exit status: 0 after --help, 2 after a bad option.
// `command` is the subcommand as typed, e.g. "guest run".
inline std::optional<int> parse_options(int argc, char** argv, const boost::program_options::options_description& desc,
                                        boost::program_options::variables_map& vm, const std::string& command) {
  namespace po = boost::program_options;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "pvnet " << command << ": " << e.what() << "\n(see pvnet " << command << " --help)\n";
    return 2;
  }
  return std::nullopt;
}

}  // namespace pvnet::tools
