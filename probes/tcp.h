// TCP connect prober: H.323 call signalling (port 1720 by default) and generic TCP checks
// (management ports, the HTTPS of a codec's web UI), with the connect time.
//
// Each probe opens one non-blocking connection and closes it as soon as the handshake completes;
// nothing is sent. A device's H.323 check has the series label service="h323"; each entry of its
// `tcp` list has its own name. Series also carry the `port`.
//
// H.323 is checked by the TCP connect to the H.225 port only; no RAS (gatekeeper) GRQ is sent:
// see docs/metrics.md. Threading: loop thread only.
#pragma once

#include <prometheus/registry.h>
#include <uv.h>

#include <memory>

#include "probes/probe.h"

namespace siteprobe::probes {

std::unique_ptr<Prober> make_tcp_prober(ProbeContext& ctx);

}  // namespace siteprobe::probes
