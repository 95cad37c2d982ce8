// Guest RAM as files (see guest_memory.hpp).
#include "grant-sim/platform/guest_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

namespace pvnet {

Result<UniqueFd> make_sealed_memfd(const std::string& name, uint64_t bytes) {
  if (bytes > static_cast<uint64_t>(std::numeric_limits<off_t>::max()))
    return make_error(EINVAL, "memfd " + name + ": size out of range");
  UniqueFd fd{::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING)};
  if (!fd) return make_error(errno, "memfd_create(" + name + "): " + std::strerror(errno));
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0)
    return make_error(errno, "ftruncate(" + name + "): " + std::strerror(errno));
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    return make_error(errno, "F_ADD_SEALS(" + name + "): " + std::strerror(errno));
  return fd;
}

}  // namespace pvnet
