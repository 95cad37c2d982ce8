#include "grant-sim/platform/grant_status.hpp"

namespace pvnet {

const char* to_string(GntSt s) {
  switch (s) {
    case GntSt::okay: return "okay";
    case GntSt::general_error: return "general_error";
    case GntSt::bad_domain: return "bad_domain";
    case GntSt::bad_gntref: return "bad_gntref";
    case GntSt::bad_handle: return "bad_handle";
    case GntSt::bad_virt_addr: return "bad_virt_addr";
    case GntSt::bad_dev_addr: return "bad_dev_addr";
    case GntSt::no_device_space: return "no_device_space";
    case GntSt::permission_denied: return "permission_denied";
    case GntSt::bad_page: return "bad_page";
    case GntSt::bad_copy_arg: return "bad_copy_arg";
    case GntSt::address_too_big: return "address_too_big";
    case GntSt::eagain: return "eagain";
  }
  return "unknown";
}

}  // namespace pvnet
