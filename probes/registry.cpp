#include "probes/registry.h"

#include "probes/icmp.h"
#include "probes/sip.h"
#include "probes/snmp.h"
#include "probes/tcp.h"

namespace siteprobe::probes {
namespace {

std::vector<CallService> none(const Device&) {
  return {};
}

}  // namespace

const std::vector<ProbeType>& probe_types() {
  static const std::vector<ProbeType> types = {
      {"icmp", [](const Device&) { return true; }, none, make_icmp_prober},
      {"snmp", [](const Device& d) { return d.snmp.has_value(); }, none, make_snmp_prober},
      {"sip", [](const Device& d) { return d.sip.enabled; },
       [](const Device& d) {
         return d.sip.enabled ? std::vector<CallService>{{"sip", "SIP"}} : none(d);
       },
       make_sip_prober},
      {"tcp", [](const Device& d) { return d.h323.enabled || !d.tcp.empty(); },
       [](const Device& d) {
         return d.h323.enabled ? std::vector<CallService>{{"h323", "H.323"}} : none(d);
       },
       make_tcp_prober},
  };
  return types;
}

std::vector<CallService> call_services(const Device& d) {
  std::vector<CallService> out;
  for (const auto& t : probe_types())
    for (auto& c : t.call_services(d)) out.push_back(std::move(c));
  return out;
}

}  // namespace siteprobe::probes
