#include "probes/registry.h"

#include "probes/icmp.h"
#include "probes/sip.h"
#include "probes/snmp.h"
#include "probes/snmp_trap.h"
#include "probes/stamp.h"
#include "probes/tcp.h"

namespace siteprobe::probes {
namespace {

std::vector<CallService> none(const Device&) {
  return {};
}

}  // namespace

const std::vector<ProbeType>& probe_types() {
  static const std::vector<ProbeType> types = {
      {"icmp", [](const Device&) { return true; }, none, make_icmp_prober, {}, true},
      {"snmp", [](const Device& d) { return d.snmp.has_value(); }, none, make_snmp_prober},
      {"snmp_trap", [](const Device& d) { return d.snmp.has_value(); }, none, make_trap_receiver},
      {"sip",
       [](const Device& d) { return d.sip.enabled; },
       [](const Device& d) {
         return d.sip.enabled ? std::vector<CallService>{{"sip", "SIP"}} : none(d);
       },
       make_sip_prober,
       {},
       true},
      {"tcp",
       [](const Device& d) { return d.blocks.count("h323") || !d.tcp.empty(); },
       [](const Device& d) {
         return d.blocks.count("h323") ? std::vector<CallService>{{"h323", "H.323"}} : none(d);
       },
       make_tcp_prober,
       // H.323: a TCP connect to the H.225 call-signalling port (docs/inventory.md#h323).
       {{"h323",
         {"vc_endpoint", "mcu"},
         {{"port", BlockKey::Kind::Int, "1720", 1, 65535},
          {"interval", BlockKey::Kind::Time, "10s", 1000, 3600000},
          {"timeout", BlockKey::Kind::Time, "2s", 10, 60000}}}},
       true},
      // Path tests at call rate (STAMP), on demand only: docs/inventory.md#stamp.
      {"stamp",
       [](const Device& d) { return d.blocks.count("stamp") > 0; },
       none,
       make_stamp_prober,
       {stamp_block()}},
  };
  return types;
}

const std::vector<BlockSchema>& inventory_blocks() {
  static const std::vector<BlockSchema> blocks = [] {
    std::vector<BlockSchema> all;
    for (const auto& t : probe_types()) all.insert(all.end(), t.blocks.begin(), t.blocks.end());
    return all;
  }();
  return blocks;
}

LoadResult load_inventory(const std::string& path) {
  return load_config(path, inventory_blocks());
}

LoadResult parse_inventory(const std::string& text, const std::string& name, const std::string& base_dir) {
  return parse_config(text, inventory_blocks(), name, base_dir);
}

std::vector<CallService> call_services(const Device& d) {
  std::vector<CallService> out;
  for (const auto& t : probe_types())
    for (auto& c : t.call_services(d)) out.push_back(std::move(c));
  return out;
}

}  // namespace siteprobe::probes
