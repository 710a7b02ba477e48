// SNMP trap and inform receiver (docs/inventory.md#traps): one UDP socket on the loop, off unless
// the inventory's `traps.listen` is set.
//
// A datagram is read by libuv (at most 32 per loop turn), then, in this order: over its source's
// token bucket (traps.max_per_source; one bucket for all unknown sources) or the global one
// (traps.max_per_second) it is dropped as rate_limited before it is decoded; net-snmp decodes it
// (SNMPv1 Trap, SNMPv2c Trap and InformRequest, SNMPv3 Trap authenticated with the sending
// device's v3 profile for the sender's engine ID, SNMPv3 InformRequest for the receiver's own
// engine ID, traps.engine_id, after the sender discovered it from a Report; other PDUs are dropped
// as unsupported); it must come from a device of the inventory that is polled over SNMP (v1: the
// agent-addr field when it is set, else the UDP source) and, v1 and v2c, carry that device's
// community. Then it is counted by kind, an inform is answered with a Response, the device gets
// one extra ICMP round and SNMP poll (ProbeContext::probe_now, at most once per traps.debounce),
// and a line is logged (at most 10 a second). A trap never changes a site's state itself.
//
// decode_trap, trap_kind and TokenBucket are free of sockets and unit-tested.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "inventory/config.h"
#include "probes/probe.h"
#include "probes/snmp.h"

namespace siteprobe::probes {

// What one datagram held. `error` is empty if it decoded, else the drop reason: "decode",
// "unsupported" (a PDU that is not a trap or inform) or "auth" (v3: no such user for the sender, a
// wrong digest, a decryption error, outside the time window).
struct TrapMessage {
  std::string error;
  std::string version;  // "1", "2c" or "3"
  std::string community;
  bool inform = false;
  Oid trap_oid;            // snmpTrapOID.0; v1: the RFC 3584 mapping (a generic trap's standard OID,
                           // else enterprise.0.specific-trap)
  std::string agent_addr;  // v1: the agent-addr field ("" when 0.0.0.0)
  long if_index = -1;      // the ifIndex varbind (linkDown, linkUp), -1 if none
  std::string response;    // inform: the encoded Response PDU to send back; report: the Report
  bool report = false;     // v3 engine discovery or time synchronisation (RFC 3414 4): not a
                           // trap; `response` tells the sender the receiver's engine ID, boots, time
};
// What an SNMPv3 trap is checked with: the USM user of the sending device's auth profile.
struct UsmKeys {
  std::string user, auth_protocol, priv_protocol;
  int level = 0;                               // SNMP_SEC_LEVEL_*
  std::vector<std::uint8_t> auth_ku, priv_ku;  // Ku: the passphrases hashed (slow: once per load)
};
UsmKeys usm_keys(const AuthProfile& a);
// The keys of the device that sent a v3 trap as `user`, or null: then the trap is dropped as `auth`.
using UsmLookup = std::function<const UsmKeys*(const std::string& user)>;
// SNMPv3 (authNoPriv, authPriv) Traps are authenticated and decrypted with the keys `usm` gives, for
// the engine ID they carry (the sender's); their version is "3". A v3 InformRequest is sent to the
// receiver's engine (trap_engine_id): a sender first asks for it (an empty engine ID) and gets a
// Report; an inform outside the receiver's time window gets one too.
TrapMessage decode_trap(const std::uint8_t* data, std::size_t len, const UsmLookup& usm = {});

// The receiver's SNMP engine ID (the process's net-snmp engine). `id` empty: 0x80001f8804 (net-snmp's
// enterprise, text format) followed by "siteprobe@" and the host name, at most 32 bytes, so it
// stays the same across restarts and devices configured with it keep working.
void set_trap_engine_id(std::vector<std::uint8_t> id);
std::string trap_engine_id();

// The kind of a trap OID: coldStart, warmStart, linkDown, linkUp, authenticationFailure (as
// snake_case), an inventory vendor kind, else "other". `severity` gets the kind's severity.
std::string trap_kind(const Oid& oid, const std::vector<TrapVendor>& vendor, std::string& severity);

// Up to `burst` at once, refilled at `rate` per second; times in monotonic ns.
struct TokenBucket {
  double rate = 100, burst = 100, tokens = 100;
  std::int64_t at = 0;
  bool take(std::int64_t now_ns) {
    tokens = std::min(burst, tokens + static_cast<double>(now_ns - at) * rate / 1e9);
    at = now_ns;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }
};

// The drop reasons of siteprobe_snmp_traps_dropped_total, in exposition order.
const std::vector<std::string>& trap_drop_reasons();

// The receiver: a Prober of every device with SNMP (the registry's "snmp_trap" row). It opens
// its socket when set_targets() first sees traps.listen, and again when that changes.
std::unique_ptr<Prober> make_trap_receiver(ProbeContext& ctx);

}  // namespace siteprobe::probes
