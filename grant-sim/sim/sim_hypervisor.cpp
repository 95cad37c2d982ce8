#include "grant-sim/sim/sim_hypervisor.hpp"

#include <cerrno>
#include <map>
#include <mutex>
#include <string>

#include "grant-sim/sim/sim_domain.hpp"
#include "grant-sim/sim/sim_platform.hpp"

namespace pvnet {

struct SimHypervisor::Core final : DomainDirectory {
  Options options;
  std::shared_ptr<StoreTree> store = std::make_shared<StoreTree>();
  std::shared_ptr<EvtchnTable> evtchn;
  mutable std::mutex mu;
  // dom0 is present from the start with a null view: its memory is made on first use.
  std::map<uint16_t, std::shared_ptr<SimDomainView>> domains;

  Result<std::shared_ptr<SimDomainView>> view(DomId dom) {
    std::lock_guard lk(mu);
    auto it = domains.find(dom.value);
    if (it == domains.end()) return make_error(ESRCH, "no domain " + std::to_string(dom.value));
    if (!it->second) {
      auto shm = create_domain_shm(dom, options.dom0_mem_bytes, options.dom0_grant_entries);
      if (!shm) return shm.error();
      auto v = SimDomainView::open(std::move(shm).value());
      if (!v) return v.error();
      it->second = std::move(v).value();
    }
    return it->second;
  }

  std::shared_ptr<SimDomainView> find(DomId dom) override {
    auto v = view(dom);
    return v ? std::move(v).value() : nullptr;
  }
};

Result<std::unique_ptr<SimHypervisor>> SimHypervisor::create(Options options) {
  if (auto ok = check_grant_entries(options.dom0_grant_entries); !ok)
    return make_error(ok.error().code, "dom0: " + ok.error().reason);
  if (options.dom0_mem_bytes == 0 || options.dom0_mem_bytes > kMaxDomainMemBytes)
    return make_error(EINVAL, "dom0: memory of " + std::to_string(options.dom0_mem_bytes) + " bytes out of range");
  auto core = std::make_shared<Core>();
  core->options = options;
  auto t = EvtchnTable::create();
  if (!t) return t.error();
  core->evtchn = std::move(t).value();
  core->domains[kDom0.value] = nullptr;
  return std::unique_ptr<SimHypervisor>(new SimHypervisor(std::move(core)));
}

SimHypervisor::~SimHypervisor() = default;

const std::shared_ptr<StoreTree>& SimHypervisor::store_tree() const { return core_->store; }
const std::shared_ptr<EvtchnTable>& SimHypervisor::evtchn_table() const { return core_->evtchn; }

std::shared_ptr<SimDomainView> SimHypervisor::find(DomId dom) { return core_->find(dom); }

Result<std::shared_ptr<SimDomainView>> SimHypervisor::domain_view(DomId dom) { return core_->view(dom); }

bool SimHypervisor::has_domain(DomId dom) const {
  std::lock_guard lk(core_->mu);
  return core_->domains.count(dom.value) != 0;
}

std::vector<DomId> SimHypervisor::domains() const {
  std::lock_guard lk(core_->mu);
  std::vector<DomId> out;
  for (auto& [d, v] : core_->domains) out.push_back(DomId{d});
  return out;
}

Result<std::shared_ptr<SimDomainView>> SimHypervisor::add_domain(DomainShm shm) {
  DomId dom = shm.dom;
  if (dom.value >= kFirstReservedDomId)
    return make_error(EINVAL, "domain id " + std::to_string(dom.value) + " is reserved");
  {
    std::lock_guard lk(core_->mu);
    if (core_->domains.count(dom.value)) return make_error(EEXIST, "domain " + std::to_string(dom.value) + " exists");
  }
  auto v = SimDomainView::open(std::move(shm));
  if (!v) return v.error();
  {
    std::lock_guard lk(core_->mu);
    if (!core_->domains.emplace(dom.value, *v).second)
      return make_error(EEXIST, "domain " + std::to_string(dom.value) + " exists");
  }
  core_->store->introduce_domain(dom);
  return v;
}

Result<std::unique_ptr<Platform>> SimHypervisor::platform_for(std::shared_ptr<SimDomainView> view) {
  DomId dom = view->dom();
  auto store = make_local_store(core_->store, dom);
  if (!store) return store.error();
  auto p = SimPlatform::assemble(std::move(view), *core_, core_, make_local_evtchn_control(core_->evtchn, dom),
                                 std::move(store).value());
  if (!p) return p.error();
  return std::unique_ptr<Platform>(std::move(p).value());
}

Result<std::unique_ptr<Platform>> SimHypervisor::create_domain(DomId dom, uint64_t mem_bytes,
                                                               uint32_t nr_grant_entries) {
  if (has_domain(dom)) return make_error(EEXIST, "domain " + std::to_string(dom.value) + " exists");
  auto shm = create_domain_shm(dom, mem_bytes, nr_grant_entries);
  if (!shm) return shm.error();
  return adopt_domain(std::move(shm).value());
}

Result<std::unique_ptr<Platform>> SimHypervisor::adopt_domain(DomainShm shm) {
  auto v = add_domain(std::move(shm));
  if (!v) return v.error();
  return platform_for(std::move(v).value());
}

Result<std::unique_ptr<Platform>> SimHypervisor::adopt_ram(DomId dom, std::span<const GuestRamRegion> ram,
                                                           uint32_t nr_grant_entries) {
  auto regions = dup_ram_regions(ram);
  if (!regions) return regions.error();
  auto shm = create_domain_shm(dom, 0, nr_grant_entries);
  if (!shm) return shm.error();
  shm->regions = std::move(regions).value();
  return adopt_domain(std::move(shm).value());
}

Result<std::unique_ptr<Platform>> SimHypervisor::attach(DomId dom) {
  auto v = core_->view(dom);
  if (!v) return v.error();
  return platform_for(std::move(v).value());
}

Result<void> SimHypervisor::destroy_domain(DomId dom) {
  if (dom == kDom0) return make_error(EINVAL, "dom0 cannot be destroyed");
  {
    std::lock_guard lk(core_->mu);
    if (!core_->domains.erase(dom.value)) return make_error(ESRCH, "no domain " + std::to_string(dom.value));
  }
  core_->evtchn->close_domain(dom);
  core_->store->release_domain(dom);
  return {};
}

}  // namespace pvnet
