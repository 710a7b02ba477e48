// The probe types siteprobe has: one row each. The daemon creates one prober per row, hands each
// only the devices it probes, and routes results by kind; readiness asks which checks are call
// services. Adding a type: its file(s) in probes/, one row in registry.cpp, its docs section
// (docs/architecture.md, "Adding a probe type").
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "inventory/config.h"
#include "probes/probe.h"

namespace siteprobe::probes {

// A call-service check a device runs: readiness counts it. `display` names it in reports.
struct CallService {
  std::string name;     // CheckResult::service: "sip", "h323"
  std::string display;  // "SIP", "H.323"
};

struct ProbeType {
  const char* name;
  // Whether this type probes the device at all.
  bool (*wants)(const Device&);
  // The call-service checks this type runs on the device (none for most types).
  std::vector<CallService> (*call_services)(const Device&);
  // Opens the type's sockets. Throws ProbeError, with a message for the operator, if it cannot.
  std::unique_ptr<Prober> (*make)(ProbeContext&);
  // The type's own inventory blocks: their keys, kinds, ranges and built-in values. The inventory
  // accepts these keys in defaults, roles, profiles and devices because they are listed here.
  std::vector<BlockSchema> blocks = {};
  // Whether its checks honour Target::max_interval: they run faster during a conference pre-flight.
  bool preflight = false;
};

struct ProbeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Every type, in start order (ICMP first: it is the only one that needs CAP_NET_RAW, dropped after).
const std::vector<ProbeType>& probe_types();
// Every call-service check of a device, over all types.
std::vector<CallService> call_services(const Device& d);
// Every type's own inventory blocks, and the inventory read with them (inventory/config.h).
const std::vector<BlockSchema>& inventory_blocks();
LoadResult load_inventory(const std::string& path);
LoadResult parse_inventory(const std::string& text, const std::string& name,
                           const std::string& base_dir = ".");

}  // namespace siteprobe::probes
