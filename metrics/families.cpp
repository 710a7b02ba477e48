#include "metrics/families.h"

#include <algorithm>
#include <stdexcept>

namespace siteprobe {
namespace {

// Sorted by name (families() and family() rely on it; the unit test checks).
const std::vector<Family> kFamilies = {
    {"siteprobe_build_info", "gauge", "Build facts; always 1."},
    {"siteprobe_conference_info", "gauge",
     "A conference of the inventory calendar: its time zone, start (local HH:MM) and number of participant "
     "sites; always 1."},
    {"siteprobe_conference_next_start_timestamp_seconds", "gauge",
     "Unix time the conference's current or next occurrence starts."},
    {"siteprobe_conference_participant_not_ready_reason", "gauge",
     "1 with the first reason a participant site is not ready (or pending) during a pre-flight; no series "
     "when ready."},
    {"siteprobe_conference_participant_ready", "gauge",
     "1 if a participant site is ready for the conference, 0 if not; only from the first pre-flight mark to "
     "the "
     "end, and no series while its path test is pending."},
    {"siteprobe_conference_preflight", "gauge",
     "1 from the conference's first pre-flight mark to its end, else 0."},
    {"siteprobe_config_last_reload_success_timestamp_seconds", "gauge",
     "Unix time of the last successful inventory load."},
    {"siteprobe_config_last_reload_successful", "gauge", "1 if the last inventory load succeeded."},
    {"siteprobe_config_reload_failures_total", "counter", "Inventory reloads rejected because of errors."},
    {"siteprobe_device_info", "gauge", "Inventory facts about a device; always 1."},
    {"siteprobe_device_mos", "gauge",
     "Mean opinion score (1..4.5) estimated from the R-factor (audio-path proxy)."},
    {"siteprobe_device_r_factor", "gauge",
     "E-model R-factor estimated from RTT, jitter and loss over the last rounds "
     "(audio-path proxy, ITU-T G.107 simplified)."},
    {"siteprobe_device_up", "gauge", "1 if the device answered at least one echo request in its last round."},
    {"siteprobe_dns_lookup_failures_total", "counter", "Failed DNS lookups of a device's address."},
    {"siteprobe_endpoint_not_ready_reason", "gauge",
     "1 with the reason the endpoint is not ready; no series while it is ready."},
    {"siteprobe_endpoint_ready", "gauge",
     "1 if the endpoint can take a call: it answers ping, a call service (SIP or "
     "H.323) is up and its MOS estimate is at least readiness.min_mos."},
    {"siteprobe_icmp_duplicate_replies_total", "counter", "Echo replies received more than once."},
    {"siteprobe_icmp_errors_total", "counter",
     "ICMP errors (unreachable, time exceeded) quoting a request to this device."},
    {"siteprobe_icmp_invalid_replies_total", "counter",
     "Echo replies dropped: wrong cookie, wrong source, truncated, or for an unknown "
     "target."},
    {"siteprobe_icmp_jitter_seconds", "gauge",
     "Mean absolute difference of consecutive RTTs in the last complete round."},
    {"siteprobe_icmp_late_replies_total", "counter", "Echo replies received after their timeout."},
    {"siteprobe_icmp_loss_ratio", "gauge", "Fraction of echo requests lost in the last complete round."},
    {"siteprobe_icmp_packets_received_total", "counter",
     "ICMP echo replies received in time and matched to a request."},
    {"siteprobe_icmp_packets_sent_total", "counter", "ICMP echo requests sent."},
    {"siteprobe_icmp_receive_queue_drops_total", "counter",
     "Packets the kernel dropped because siteprobe's receive buffer was full "
     "(SO_RXQ_OVFL)."},
    {"siteprobe_icmp_rtt_seconds", "histogram", "Round-trip time of matched echo replies."},
    {"siteprobe_icmp_send_errors_total", "counter", "Echo requests the kernel refused to send."},
    {"siteprobe_icmp_stalled_rounds_total", "counter",
     "Rounds left without a verdict (neither loss nor down): siteprobe fell behind (a "
     "round overran into the next) or the kernel dropped replies it did not read in "
     "time."},
    {"siteprobe_loop_lag_seconds", "gauge", "How late the event loop ran a 1 s timer, last measurement."},
    {"siteprobe_loop_lateness_seconds", "histogram",
     "How late the event loop ran its 50 ms timer, each time."},
    {"siteprobe_loop_stalls_total", "counter",
     "Stalls of the event loop (a 50 ms timer run more than 100 ms late): the host "
     "starved or stopped siteprobe. Replies queued meanwhile are still judged by their "
     "kernel timestamps."},
    {"siteprobe_maintenance", "gauge",
     "1 for each site (no device label) or device in a maintenance window that is on now; the shipped alert "
     "rules page nothing for them."},
    {"siteprobe_maintenance_next_start_timestamp_seconds", "gauge",
     "Unix time the window's current or next occurrence starts; no series for a one-off window that is "
     "over."},
    {"siteprobe_maintenance_window_active", "gauge", "1 while the maintenance window is on, else 0."},
    {"siteprobe_path_changed", "gauge",
     "1 when the last trace toward the site's router found hops other than its expected_path, 0 when they "
     "matched."},
    {"siteprobe_path_hops", "gauge",
     "Hop number of the last hop that answered the last trace toward the site's router (the router itself "
     "when it "
     "answered)."},
    {"siteprobe_path_last_hop_info", "gauge",
     "The last hop that answered the last trace toward the site's router: hop, address, and how the path "
     "ended "
     "(reached, unreachable, silent)."},
    {"siteprobe_path_test_dscp_unchanged", "gauge",
     "1 if the stream's DSCP arrived unchanged in that direction, 0 if rewritten; no series when "
     "the reflector does not say (no RFC 8972 Class-of-Service TLV)."},
    {"siteprobe_path_test_duplicate_packets_total", "counter", "Path-test replies received more than once."},
    {"siteprobe_path_test_invalid_packets_total", "counter",
     "Datagrams dropped by path tests: too short, or answering no packet sent (forged or stale)."},
    {"siteprobe_path_test_ipdv_seconds", "gauge",
     "Mean absolute delay variation between consecutive packets (RFC 3393 IPDV) in the last path "
     "test, round trip and per direction."},
    {"siteprobe_path_test_last_run_timestamp_seconds", "gauge", "Unix time the last path test ended."},
    {"siteprobe_path_test_loss_ratio", "gauge",
     "Fraction of the last path test's stream lost, round trip and, with a stateful reflector, per "
     "direction."},
    {"siteprobe_path_test_mos", "gauge",
     "MOS (1..4.5) of the last path test's stream, at call rate (E-model)."},
    {"siteprobe_path_test_ok", "gauge", "1 if the last path test passed every bound, else 0."},
    {"siteprobe_path_test_packets_received_total", "counter", "Path-test replies matched to a packet sent."},
    {"siteprobe_path_test_packets_sent_total", "counter", "Path-test packets sent (STAMP Session-Sender)."},
    {"siteprobe_path_test_r_factor", "gauge",
     "E-model R-factor of the last path test's stream, at call rate."},
    {"siteprobe_path_test_rate_bytes_per_second", "gauge",
     "Rate (IP level) the last path test sent at, in bytes per second (stamp.bitrate_kbps / 8)."},
    {"siteprobe_path_test_reordered_packets_total", "counter",
     "Path-test replies that arrived after a reply to a later packet."},
    {"siteprobe_path_test_rtt_seconds", "histogram",
     "Round-trip time of path-test packets, less the reflector's own holding time."},
    {"siteprobe_path_test_runs_total", "counter",
     "Path tests by result: ok, loss, all_lost, no_reflector, qos_rewritten, failed."},
    {"siteprobe_path_test_skipped_packets_total", "counter",
     "Path-test packets not sent because siteprobe's own loop ran more than 20 ms late (never counted as "
     "loss)."},
    {"siteprobe_path_test_streams", "gauge", "Path-test streams running and queued."},
    {"siteprobe_path_trace_timestamp_seconds", "gauge",
     "Unix time the last trace toward the site's router ended."},
    {"siteprobe_path_traces_total", "counter",
     "Traces toward site routers by result: reached, unreachable, silent, failed; rate_limited: waited for a "
     "token."},
    {"siteprobe_peer_up", "gauge",
     "1 if the peer siteprobe (--peer) answered its last /-/healthy with 200, else 0."},
    {"siteprobe_probes_in_flight", "gauge", "Probes sent and not yet answered or timed out."},
    {"siteprobe_reflector_packets_total", "counter",
     "Datagrams the STAMP reflector (siteprobe reflect) handled, by result: reflected, "
     "rate_limited, too_short, too_long."},
    {"siteprobe_reflector_sessions", "gauge",
     "Sessions the stateful reflector keeps (idle ones expire after 1 min)."},
    {"siteprobe_reflector_sessions_full_total", "counter",
     "Packets the stateful reflector answered statelessly because its session table was full."},
    {"siteprobe_shard_ancestor", "gauge",
     "1 for a site this shard probes only as an ancestor of its own subtrees: another shard owns and pages "
     "for "
     "it."},
    {"siteprobe_shard_info", "gauge", "This instance's shard (i of shards) and vantage; always 1."},
    {"siteprobe_sip_errors_total", "counter", "SIP requests that got no final response, by kind."},
    {"siteprobe_sip_invalid_responses_total", "counter",
     "UDP datagrams on the SIP socket dropped because they could not be parsed "
     "(malformed) or matched to a request in flight (unmatched)."},
    {"siteprobe_sip_requests_total", "counter",
     "SIP OPTIONS requests started (retransmissions not counted)."},
    {"siteprobe_sip_response_code", "gauge",
     "Status code of the last final SIP response; 0 if the last request got none "
     "(error or timeout)."},
    {"siteprobe_sip_responses_total", "counter",
     "SIP responses to siteprobe's requests, by class (1xx provisional, 2xx..6xx "
     "final)."},
    {"siteprobe_sip_rtt_seconds", "histogram",
     "Time from sending a SIP OPTIONS request to its final response."},
    {"siteprobe_sip_up", "gauge", "1 if the last SIP OPTIONS request got a 2xx final response."},
    {"siteprobe_site_alias_info", "gauge",
     "An id the site had in an earlier inventory (inventory key formerly), one series per old id; "
     "always 1."},
    {"siteprobe_site_backup_parent_info", "gauge",
     "A backup parent of a site (inventory backup_parents); always 1."},
    {"siteprobe_site_info", "gauge", "Inventory facts about a site; always 1."},
    {"siteprobe_site_on_backup_path", "gauge",
     "1 while the site answers over a backup uplink only (its primary uplink is down)."},
    {"siteprobe_site_state", "gauge",
     "Site state: 0 unknown, 1 up, 2 degraded, 3 down, 4 unreachable (parent down)."},
    {"siteprobe_site_state_change_timestamp_seconds", "gauge",
     "Unix time of the site's last state change (\"down since\"); kept across reloads."},
    {"siteprobe_site_state_changes_total", "counter", "Changes of the site's state."},
    {"siteprobe_snmp_device_info", "gauge", "sysName, sysDescr and sysObjectID of the agent."},
    {"siteprobe_snmp_device_reboots_total", "counter", "Agent restarts seen as sysUpTime going backwards."},
    {"siteprobe_snmp_errors_total", "counter", "SNMP poll errors by kind."},
    {"siteprobe_snmp_interface_admin_status", "gauge", "ifAdminStatus (1 up, 2 down, 3 testing)."},
    {"siteprobe_snmp_interface_high_capacity", "gauge",
     "1 if the traffic counters come from ifXTable's 64-bit HC columns, 0 if from "
     "ifTable's 32-bit ones."},
    {"siteprobe_snmp_interface_oper_status", "gauge",
     "ifOperStatus (1 up, 2 down, 3 testing, 4 unknown, 5 dormant, 6 notPresent, 7 "
     "lowerLayerDown)."},
    {"siteprobe_snmp_interface_receive_discards_total", "counter", "ifInDiscards, wrap-corrected."},
    {"siteprobe_snmp_interface_receive_errors_total", "counter", "ifInErrors, wrap-corrected."},
    {"siteprobe_snmp_interface_received_bytes_total", "counter",
     "ifHCInOctets (or wrap-corrected ifInOctets)."},
    {"siteprobe_snmp_interface_received_unicast_packets_total", "counter",
     "ifHCInUcastPkts (or wrap-corrected ifInUcastPkts)."},
    {"siteprobe_snmp_interface_sent_bytes_total", "counter",
     "ifHCOutOctets (or wrap-corrected ifOutOctets)."},
    {"siteprobe_snmp_interface_sent_unicast_packets_total", "counter",
     "ifHCOutUcastPkts (or wrap-corrected ifOutUcastPkts)."},
    {"siteprobe_snmp_interface_speed_bytes_per_second", "gauge",
     "ifHighSpeed in bytes per second (ifSpeed where ifHighSpeed is missing)."},
    {"siteprobe_snmp_interface_transmit_discards_total", "counter", "ifOutDiscards, wrap-corrected."},
    {"siteprobe_snmp_interface_transmit_errors_total", "counter", "ifOutErrors, wrap-corrected."},
    {"siteprobe_snmp_interface_uplink", "gauge", "1 if the interface matches the device's uplink pattern."},
    {"siteprobe_snmp_last_trap_timestamp_seconds", "gauge",
     "Unix time of the last SNMP trap or inform accepted from the device."},
    {"siteprobe_snmp_max_repetitions", "gauge",
     "GETBULK max-repetitions in use (halved after tooBig or a timeout)."},
    {"siteprobe_snmp_pdus_received_total", "counter", "SNMP response and report PDUs received."},
    {"siteprobe_snmp_pdus_sent_total", "counter", "SNMP request PDUs sent, retransmissions included."},
    {"siteprobe_snmp_poll_duration_seconds", "gauge", "Duration of the last SNMP poll."},
    {"siteprobe_snmp_polls_in_flight", "gauge", "SNMP polls running now (at most global.snmp_max_inflight)."},
    {"siteprobe_snmp_polls_total", "counter", "SNMP polls completed, successful or not."},
    {"siteprobe_snmp_polls_waiting", "gauge",
     "SNMP polls due but waiting for a free slot under global.snmp_max_inflight."},
    {"siteprobe_snmp_sessions_kept", "gauge",
     "SNMP sessions (one UDP socket each) kept open between the polls of a device."},
    {"siteprobe_snmp_traps_dropped_total", "counter",
     "SNMP traps and informs dropped: rate_limited, decode, unsupported, unknown_source, auth, community."},
    {"siteprobe_snmp_traps_total", "counter", "SNMP traps and informs accepted from the device, by kind."},
    {"siteprobe_snmp_up", "gauge", "1 if the last SNMP poll of the device succeeded."},
    {"siteprobe_snmp_uptime_seconds", "gauge", "sysUpTime of the agent."},
    {"siteprobe_tcp_connect_seconds", "histogram", "Time to establish a TCP connection."},
    {"siteprobe_tcp_errors_total", "counter", "TCP connect attempts that failed, by kind."},
    {"siteprobe_tcp_up", "gauge", "1 if the last TCP connect succeeded."},
    {"siteprobe_vantage_up", "gauge",
     "0 when every top-level site is down: siteprobe cannot reach the network core, so "
     "nothing below can be judged."},
};

}  // namespace

const std::vector<Family>& families() {
  return kFamilies;
}

const Family* find_family(std::string_view name) {
  const auto it = std::lower_bound(kFamilies.begin(), kFamilies.end(), name,
                                   [](const Family& f, std::string_view n) { return f.name < n; });
  return it != kFamilies.end() && it->name == name ? &*it : nullptr;
}

const Family& family(std::string_view name) {
  if (const auto* f = find_family(name)) return *f;
  throw std::logic_error("metric family not in metrics/families.cpp: " + std::string(name));
}

const char* help(std::string_view name) {
  return family(name).help.data();
}

const std::set<std::string>& reserved_labels() {
  static const std::set<std::string> names = {
      "site", "device", "role", "level", "name", "parent", "latitude", "longitude", "map_latitude",
      "map_longitude", "address", "family", "reason", "type", "probe", "le", "job", "instance", "version",
      "quantile", "profile", "path", "state", "service", "port", "class", "kind", "criticality",
      // the SNMP prober's, and "value" of custom info objects
      "if_alias", "if_index", "if_name", "sys_descr", "sys_name", "sys_object_id", "value"};
  return names;
}

}  // namespace siteprobe
