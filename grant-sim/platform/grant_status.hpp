// GNTST_* as a type. Every grant operation that fails says which of these it was, as Xen does.
#pragma once
#include <cstdint>
#include "shared-ring/xen_headers.hpp"

namespace pvnet {

enum class GntSt : int16_t {
  okay = GNTST_okay,
  general_error = GNTST_general_error,
  bad_domain = GNTST_bad_domain,
  bad_gntref = GNTST_bad_gntref,
  bad_handle = GNTST_bad_handle,
  bad_virt_addr = GNTST_bad_virt_addr,
  bad_dev_addr = GNTST_bad_dev_addr,
  no_device_space = GNTST_no_device_space,
  permission_denied = GNTST_permission_denied,
  bad_page = GNTST_bad_page,
  bad_copy_arg = GNTST_bad_copy_arg,
  address_too_big = GNTST_address_too_big,
  eagain = GNTST_eagain,
};

const char* to_string(GntSt s);

}  // namespace pvnet
