// A Platform made of the simulator's parts, for one domain: its own memory and grant table (from its
// SimDomainView), a mapper that finds other domains through a DomainDirectory, an event-channel handle and a
// store connection. Used by the in-process SimHypervisor and by SimClient alike.
#pragma once
#include <memory>
#include "grant-sim/platform/platform.hpp"
#include "grant-sim/sim/sim_domain.hpp"
#include "grant-sim/sim/sim_event_channel.hpp"
#include "grant-sim/sim/sim_store.hpp"

namespace pvnet {

class SimPlatform final : public Platform {
 public:
  // `directory` must stay alive as long as the platform: `keepalive` owns whatever it lives in (it is released
  // after every other part).
  static Result<std::unique_ptr<SimPlatform>> assemble(std::shared_ptr<SimDomainView> view,
                                                       DomainDirectory& directory, std::shared_ptr<void> keepalive,
                                                       std::unique_ptr<EvtchnControl> evtchn,
                                                       std::unique_ptr<Store> store);
  ~SimPlatform() override;

  DomId self() const override { return self_; }
  GuestMemory& memory() override { return *memory_; }
  GrantTable& grant_table() override { return *grant_table_; }
  GrantMapper& mapper() override { return *mapper_; }
  EventChannel& evtchn() override { return *evtchn_; }
  Store& store() override { return *store_; }
  const std::shared_ptr<SimDomainView>& view() const { return view_; }

 private:
  SimPlatform() = default;
  std::shared_ptr<void> keepalive_;  // first member: destroyed last
  DomId self_;
  std::shared_ptr<SimDomainView> view_;
  std::unique_ptr<GuestMemory> memory_;
  std::unique_ptr<GrantTable> grant_table_;
  std::unique_ptr<GrantMapper> mapper_;
  std::unique_ptr<SimEventChannel> evtchn_;
  std::unique_ptr<Store> store_;
};

}  // namespace pvnet
