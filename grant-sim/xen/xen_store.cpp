#include "grant-sim/xen/xen_store.hpp"

#include "grant-sim/platform/fd_wait.hpp"

#include <fcntl.h>
#include <poll.h>
extern "C" {
#include <xenstore.h>
}

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace pvnet {
namespace {

struct XsClose {
  void operator()(xs_handle* h) const { if (h) xs_close(h); }
};
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
template <class T>
using Malloced = std::unique_ptr<T, FreeDeleter>;

Error xs_error(const char* what, std::string_view path) {
  const int e = errno ? errno : EIO;
  return make_error(e, std::string(what) + " " + std::string(path) + ": " + std::strerror(e));
}

class XenStore final : public Store {
 public:
  XenStore(DomId self, xs_handle* h) : self_(self), h_(h) {}

  DomId self() const override { return self_; }

  Result<std::string> read(std::string_view path) override {
    const std::string p(path);
    unsigned int len = 0;
    errno = 0;
    Malloced<char> v(static_cast<char*>(xs_read(h_.get(), XBT_NULL, p.c_str(), &len)));
    if (!v) return xs_error("xs_read", path);
    return std::string(v.get(), len);
  }
  Result<void> write(std::string_view path, std::string_view value) override {
    const std::string p(path);
    errno = 0;
    if (!xs_write(h_.get(), XBT_NULL, p.c_str(), value.data(), static_cast<unsigned>(value.size())))
      return xs_error("xs_write", path);
    return {};
  }
  Result<void> remove(std::string_view path) override {
    const std::string p(path);
    errno = 0;
    if (!xs_rm(h_.get(), XBT_NULL, p.c_str())) return xs_error("xs_rm", path);
    return {};
  }
  Result<std::vector<std::string>> directory(std::string_view path) override {
    const std::string p(path);
    unsigned int n = 0;
    errno = 0;
    Malloced<char*> v(xs_directory(h_.get(), XBT_NULL, p.c_str(), &n));
    if (!v) return xs_error("xs_directory", path);
    std::vector<std::string> out;
    for (unsigned i = 0; i < n; ++i) out.emplace_back(v.get()[i]);
    return out;
  }
  Result<void> watch(std::string_view path, std::string_view token) override {
    const std::string p(path), t(token);
    errno = 0;
    if (!xs_watch(h_.get(), p.c_str(), t.c_str())) return xs_error("xs_watch", path);
    return {};
  }
  Result<void> unwatch(std::string_view path, std::string_view token) override {
    const std::string p(path), t(token);
    errno = 0;
    if (!xs_unwatch(h_.get(), p.c_str(), t.c_str())) return xs_error("xs_unwatch", path);
    return {};
  }
  int watch_fd() const override { return xs_fileno(h_.get()); }
  std::vector<WatchEvent> read_watches() override {
    std::vector<WatchEvent> out;
    // xs_check_watch never blocks: NULL with EAGAIN once the queue is empty.
    while (Malloced<char*> v{xs_check_watch(h_.get())})
      out.push_back(WatchEvent{v.get()[XS_WATCH_PATH], v.get()[XS_WATCH_TOKEN]});
    return out;
  }
  std::vector<WatchEvent> wait_watches(int timeout_ms) override {
    auto ev = read_watches();
    if (!ev.empty()) return ev;
    wait_readable(watch_fd(), timeout_ms);
    return read_watches();
  }
  Result<void> set_permissions(std::string_view path, const NodePerms& perms) override {
    const std::string p(path);
    std::vector<xs_permissions> v;
    for (const XsPerm& x : to_xs_perms(perms)) v.push_back(xs_permissions{x.id, static_cast<unsigned>(x.perms)});
    errno = 0;
    if (!xs_set_permissions(h_.get(), XBT_NULL, p.c_str(), v.data(), static_cast<unsigned>(v.size())))
      return xs_error("xs_set_permissions", path);
    return {};
  }
  Result<NodePerms> get_permissions(std::string_view path) override {
    const std::string p(path);
    unsigned int n = 0;
    errno = 0;
    Malloced<xs_permissions> v(xs_get_permissions(h_.get(), XBT_NULL, p.c_str(), &n));
    if (!v) return xs_error("xs_get_permissions", path);
    std::vector<XsPerm> out;
    for (unsigned i = 0; i < n; ++i) out.push_back(XsPerm{v.get()[i].id, static_cast<int>(v.get()[i].perms)});
    return from_xs_perms(out);
  }

 private:
  DomId self_;
  std::unique_ptr<xs_handle, XsClose> h_;
};

}  // namespace

std::vector<XsPerm> to_xs_perms(const NodePerms& p) {
  std::vector<XsPerm> v{XsPerm{p.owner.value, XS_PERM_NONE}};
  for (DomId w : p.writers) v.push_back(XsPerm{w.value, XS_PERM_READ | XS_PERM_WRITE});
  for (DomId r : p.readers) v.push_back(XsPerm{r.value, XS_PERM_READ});
  return v;
}

NodePerms from_xs_perms(const std::vector<XsPerm>& v) {
  NodePerms p;
  if (v.empty()) return p;
  p.owner = DomId{static_cast<uint16_t>(v[0].id)};
  // A write-only entry ("w") has no NodePerms form: it is counted as a writer (which may also read).
  for (size_t i = 1; i < v.size(); ++i) {
    const DomId d{static_cast<uint16_t>(v[i].id)};
    if (v[i].perms & XS_PERM_WRITE) p.writers.push_back(d);
    else if (v[i].perms & XS_PERM_READ) p.readers.push_back(d);
  }
  return p;
}

Result<std::unique_ptr<Store>> open_xen_store(DomId self) {
  errno = 0;
  xs_handle* h = xs_open(0);
  if (!h) {
    const int e = errno ? errno : ENOENT;
    return make_error(e, std::string("xs_open: cannot reach xenstored (") + std::strerror(e) +
                             "): is this a Xen domain with xenstored running?");
  }
  return std::unique_ptr<Store>(std::make_unique<XenStore>(self, h));
}

Result<DomId> xen_store_self_domid() {
  auto s = open_xen_store(kDom0);
  if (!s) return s.error();
  auto v = (*s)->read_int("domid");
  if (!v) return kDom0;  // dom0's own "domid" node is written by xen-init-dom0; absent only before that
  if (*v < 0 || *v >= 0x7FF0) return make_error(ERANGE, "xenstore domid " + std::to_string(*v) + " is not a domain");
  return DomId{static_cast<uint16_t>(*v)};
}

}  // namespace pvnet
