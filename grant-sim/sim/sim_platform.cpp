#include "grant-sim/sim/sim_platform.hpp"

#include <cerrno>
#include <string>

namespace pvnet {

Result<std::unique_ptr<SimPlatform>> SimPlatform::assemble(std::shared_ptr<SimDomainView> view,
                                                           DomainDirectory& directory,
                                                           std::shared_ptr<void> keepalive,
                                                           std::unique_ptr<EvtchnControl> evtchn,
                                                           std::unique_ptr<Store> store) {
  std::unique_ptr<SimPlatform> p(new SimPlatform());
  p->keepalive_ = std::move(keepalive);
  p->self_ = view->dom();
  p->view_ = view;
  p->memory_ = make_sim_guest_memory(view);
  p->grant_table_ = make_sim_grant_table(view);
  p->mapper_ = make_sim_mapper(p->self_, directory);
  auto ev = SimEventChannel::create(std::move(evtchn));
  if (!ev) return ev.error();
  p->evtchn_ = std::move(ev).value();
  p->store_ = std::move(store);
  if (!p->memory_ || !p->grant_table_ || !p->mapper_)
    return make_error(ENOMEM, "sim platform: could not build the grant parts of dom" + std::to_string(p->self_.value));
  return p;
}

// The mapper goes before the store and event channel (reverse declaration order), and the keepalive last.
SimPlatform::~SimPlatform() = default;

}  // namespace pvnet
