// pvnet's Platform on a real Xen host, over Xen's own libraries: the mapper over gntdev (libxengnttab), the
// granting side over gntalloc (xengntshr_*: the domain's "memory" is a pool of gntalloc pages), event channels
// over libxenevtchn, the store over libxenstore. Chosen at run time (`--hypervisor xen`); opening it where
// /dev/xen is absent fails with "no /dev/xen/gntdev: not running on Xen". docs/xen.md says how to run it.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include "grant-sim/platform/platform.hpp"
#include "grant-sim/platform/store.hpp"
#include "grant-sim/xen/xen_grant_table.hpp"

namespace pvnet {

// The device directory; PVNET_XEN_DEV_DIR overrides it (tests point it at an empty folder).
std::string xen_dev_dir();
// ENOENT "no /dev/xen/<name>: not running on Xen ..." unless the device node exists.
Result<void> xen_device_present(const std::string& name);

struct XenPlatformOptions {
  std::optional<DomId> self;  // default: xenstore's "domid" (dom0 if absent)
  DomId grantee = kDom0;      // who the gntalloc pool is shared with (a frontend: its backend domain)
  bool grantee_is_self = false;  // dom0's pool for self-grants (the backend's payload-cost measurement)
  uint32_t pool_pages = 16;      // the domain's "memory": gntalloc pages
};

class XenPlatform final : public Platform {
 public:
  static Result<std::unique_ptr<XenPlatform>> open(const XenPlatformOptions& o);
  ~XenPlatform() override;

  DomId self() const override { return self_; }
  GuestMemory& memory() override { return *memory_; }
  GrantTable& grant_table() override { return *grant_table_; }
  GrantMapper& mapper() override { return *mapper_; }
  EventChannel& evtchn() override { return *evtchn_; }
  Store& store() override { return *store_; }
  // What the gntalloc pool did differently from a normal netfront's grants (xen_grant_table.hpp).
  const GntallocStats& gntalloc_stats() const { return pool_->book().stats(); }

 private:
  XenPlatform() = default;
  DomId self_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<EventChannel> evtchn_;
  std::unique_ptr<XenGntallocPool> pool_;
  std::unique_ptr<GuestMemory> memory_;
  std::unique_ptr<GrantTable> grant_table_;
  std::unique_ptr<GrantMapper> mapper_;  // last: its mappings go before anything else
};

}  // namespace pvnet
