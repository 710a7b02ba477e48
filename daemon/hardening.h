// Process hardening that needs no configuration (issue #20): no core dumps, CAP_NET_RAW only
// while the ICMP sockets are opened, and a warning when inline SNMP secrets are readable by every
// local user. Called from main() and the daemon, on the loop thread.
#pragma once

#include <string>

#include "inventory/config.h"

namespace siteprobe {

// Marks the process undumpable: a crash writes no core (which would hold the SNMP secrets in
// clear) and other processes of the same user cannot ptrace it or read /proc/PID/mem. Call before
// any secret is read. Returns false (errno set) on failure.
bool make_undumpable();

// Drops CAP_NET_RAW from the effective, permitted and inheritable sets (and so from the ambient
// set). Call once the ICMP sockets are open: nothing opens a raw socket after start. Returns an
// empty string, or what failed.
std::string drop_net_raw();

// A one-line warning (empty if none) when `config` has an SNMP secret written inline and its file
// `config.file` is readable by other users. It names the auth profiles, never a secret.
std::string inline_secret_warning(const Config& config);

}  // namespace siteprobe
