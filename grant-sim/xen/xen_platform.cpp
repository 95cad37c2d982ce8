#include "grant-sim/xen/xen_platform.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

#include "grant-sim/xen/xen_event_channel.hpp"
#include "grant-sim/xen/xen_grant_mapper.hpp"
#include "grant-sim/xen/xen_store.hpp"

namespace pvnet {

std::string xen_dev_dir() {
  if (const char* d = std::getenv("PVNET_XEN_DEV_DIR"); d && *d) return d;
  return "/dev/xen";
}

Result<void> xen_device_present(const std::string& name) {
  const std::string path = xen_dev_dir() + "/" + name;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return {};
  std::string why = "no " + path + ": not running on Xen";
  if (xen_dev_dir() == "/dev/xen" && ::stat("/proc/xen", &st) == 0)
    why += " (or the xen-" + name + " module is not loaded)";
  return make_error(ENOENT, why);
}

Result<std::unique_ptr<XenPlatform>> XenPlatform::open(const XenPlatformOptions& o) {
  // gntdev first: its absence is the clearest sign this is not a Xen domain.
  if (auto r = xen_device_present("gntdev"); !r) return r.error();
  std::unique_ptr<XenPlatform> p(new XenPlatform());
  if (o.self) {
    p->self_ = *o.self;
  } else {
    auto d = xen_store_self_domid();
    if (!d) return d.error();
    p->self_ = *d;
  }
  auto store = open_xen_store(p->self_);
  if (!store) return store.error();
  p->store_ = std::move(store).value();
  auto ev = open_xen_event_channel();
  if (!ev) return ev.error();
  p->evtchn_ = std::move(ev).value();
  const DomId grantee = o.grantee_is_self ? p->self_ : o.grantee;
  auto pool = XenGntallocPool::create(p->self_, grantee, o.pool_pages, /*writable=*/true);
  if (!pool) return pool.error();
  p->pool_ = std::move(pool).value();
  p->memory_ = make_pool_memory(p->pool_->book());
  p->grant_table_ = make_pool_grant_table(p->pool_->book());
  auto m = XenGrantMapper::open(p->self_);
  if (!m) return m.error();
  p->mapper_ = std::move(m).value();
  return p;
}

XenPlatform::~XenPlatform() {
  mapper_.reset();  // unmap what we still map before anything else goes
}

}  // namespace pvnet
