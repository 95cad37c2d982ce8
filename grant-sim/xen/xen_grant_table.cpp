#include "grant-sim/xen/xen_grant_table.hpp"

extern "C" {
#include <xengnttab.h>
}

#include <cerrno>
#include <cstring>
#include <string>

#include "grant-sim/xen/xen_platform.hpp"

namespace pvnet {

GntallocPoolBook::GntallocPoolBook(DomId self, DomId grantee, bool writable, std::span<std::byte> pages,
                                   std::vector<uint32_t> refs)
    : self_(self),
      grantee_(grantee),
      writable_(writable),
      pages_(pages),
      refs_(std::move(refs)),
      granted_(refs_.size(), 0),
      free_(static_cast<uint32_t>(refs_.size())) {}

std::span<std::byte> GntallocPoolBook::page(Pfn pfn) {
  if (pfn.value >= refs_.size()) return {};
  return pages_.subspan(pfn.value * kPageSize, kPageSize);
}

bool GntallocPoolBook::frame_of(const std::byte* p, Pfn* pfn) const {
  if (p < pages_.data() || p >= pages_.data() + pages_.size()) return false;
  *pfn = Pfn{static_cast<uint64_t>(p - pages_.data()) / kPageSize};
  return true;
}

Result<GrantRef> GntallocPoolBook::grant_access(DomId grantee, Pfn frame, bool readonly) {
  if (grantee != grantee_) {
    stats_.refused_other_domain++;
    return make_error(EPERM, "gntalloc pool of domain " + std::to_string(self_.value) + " is shared with domain " +
                                 std::to_string(grantee_.value) + " only, not " + std::to_string(grantee.value));
  }
  if (frame.value >= refs_.size())
    return make_error(EINVAL, "pfn " + std::to_string(frame.value) + " is outside the gntalloc pool");
  if (readonly && writable_) stats_.readonly_as_writable++;
  if (!readonly && !writable_) return make_error(EPERM, "the gntalloc pool is shared readonly");
  if (granted_[frame.value]++ == 0) free_--;
  stats_.grants++;
  return GrantRef{refs_[frame.value]};
}

Result<void> GntallocPoolBook::end_access(GrantRef ref) {
  for (size_t i = 0; i < refs_.size(); ++i) {
    if (refs_[i] != ref.value) continue;
    if (granted_[i] == 0)
      return make_error(GNTST_bad_gntref, "end_access: reference " + std::to_string(ref.value) + " is not granted");
    if (--granted_[i] == 0) free_++;
    stats_.ended_still_granted++;
    return {};
  }
  return make_error(GNTST_bad_gntref, "end_access: reference " + std::to_string(ref.value) + " is not in the pool");
}

namespace {

class PoolMemory final : public GuestMemory {
 public:
  explicit PoolMemory(GntallocPoolBook& b) : b_(b) {}
  uint64_t nr_pages() const override { return b_.nr_pages(); }
  std::span<std::byte> page(Pfn pfn) override { return b_.page(pfn); }
  bool frame_of(const std::byte* p, Pfn* pfn) const override { return b_.frame_of(p, pfn); }

 private:
  GntallocPoolBook& b_;
};

class PoolGrantTable final : public GrantTable {
 public:
  explicit PoolGrantTable(GntallocPoolBook& b) : b_(b) {}
  DomId self() const override { return b_.self(); }
  Result<GrantRef> grant_access(DomId grantee, Pfn frame, bool readonly) override {
    return b_.grant_access(grantee, frame, readonly);
  }
  Result<void> end_access(GrantRef ref) override { return b_.end_access(ref); }
  bool in_use(GrantRef) const override { return false; }  // gntalloc does not expose GTF_reading/GTF_writing
  uint32_t capacity() const override { return static_cast<uint32_t>(b_.nr_pages()); }
  uint32_t free_count() const override { return b_.free_count(); }

 private:
  GntallocPoolBook& b_;
};

}  // namespace

std::unique_ptr<GuestMemory> make_pool_memory(GntallocPoolBook& book) { return std::make_unique<PoolMemory>(book); }
std::unique_ptr<GrantTable> make_pool_grant_table(GntallocPoolBook& book) {
  return std::make_unique<PoolGrantTable>(book);
}

Result<std::unique_ptr<XenGntallocPool>> XenGntallocPool::create(DomId self, DomId grantee, uint32_t nr_pages,
                                                                 bool writable) {
  if (auto r = xen_device_present("gntalloc"); !r) return r.error();
  if (nr_pages == 0) return make_error(EINVAL, "gntalloc pool: 0 pages");
  std::unique_ptr<XenGntallocPool> p(new XenGntallocPool());
  errno = 0;
  auto* xgs = xengntshr_open(nullptr, 0);
  if (!xgs) {
    const int e = errno ? errno : EIO;
    return make_error(e, std::string("xengntshr_open: ") + std::strerror(e));
  }
  p->xgs_ = xgs;
  p->refs_.assign(nr_pages, 0);
  errno = 0;
  p->base_ = xengntshr_share_pages(xgs, grantee.value, static_cast<int>(nr_pages), p->refs_.data(), writable ? 1 : 0);
  if (!p->base_) {
    const int e = errno ? errno : ENOMEM;
    return make_error(e, "xengntshr_share_pages(" + std::to_string(nr_pages) + " pages for domain " +
                             std::to_string(grantee.value) + "): " + std::strerror(e) +
                             " (gntalloc's `limit` module parameter caps the pages one domain may share: "
                             "/sys/module/xen_gntalloc/parameters/limit)");
  }
  p->nr_ = nr_pages;
  p->book_ = std::make_unique<GntallocPoolBook>(
      self, grantee, writable, std::span<std::byte>(static_cast<std::byte*>(p->base_), size_t{nr_pages} * kPageSize),
      p->refs_);
  return p;
}

uint32_t XenGntallocPool::ref(uint32_t i) const { return i < refs_.size() ? refs_[i] : UINT32_MAX; }

XenGntallocPool::~XenGntallocPool() {
  auto* xgs = static_cast<xengntshr_handle*>(xgs_);
  // gntalloc ends each grant it can; one the grantee still maps stays allocated in the kernel until it is
  // unmapped (it is never handed back to anyone while mapped).
  if (base_) (void)xengntshr_unshare(xgs, base_, nr_);
  if (xgs) xengntshr_close(xgs);
}

}  // namespace pvnet
