// What one STAMP path test (probes/stamp.h) found, as the rest of the daemon sees it: readiness,
// the conference calendar (daemon/conference.h) and the quality report read this, never the
// prober's internals. Threading: loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace siteprobe::probes {

struct PathTestSummary {
  enum class Verdict {
    Ok,            // every bound below held
    Loss,          // part of the stream was lost (loss above the block's `max_loss`)
    AllLost,       // the reflector answered before (or to the first packets), then nothing came back
    NoReflector,   // nothing ever answered: not a loss figure
    QosRewritten,  // the DSCP arrived changed (RFC 8972 CoS TLV)
    Failed,        // could not run: no address, send error, refused by the safety caps
  };
  Verdict verdict = Verdict::Failed;
  // Operator's words, with the figures: "loss 31 % at 2 Mbit/s", "QoS mark rewritten to CS0",
  // "no reflector". Empty when Ok.
  std::string reason;
  double bitrate_bps = 0;  // what was asked
  std::uint64_t sent = 0, received = 0;
  double loss_ratio = 0;                        // round trip, 0..1
  double loss_forward = -1, loss_reverse = -1;  // 0..1, or -1 when the reflector gives no sequence
  double rtt_median_seconds = 0;
  // IPDV (RFC 3393): mean |D| between consecutive packets, round trip and per direction (the
  // clock offset between the hosts cancels out of each).
  double ipdv_seconds = 0, ipdv_forward_seconds = 0, ipdv_reverse_seconds = 0;
  double r_factor = 0, mos = 0;              // E-model at call rate, from this stream
  std::string dscp;                          // forward: "unchanged", "rewritten to CS0", "unknown"
  int dscp_forward = -1, dscp_reverse = -1;  // 1 unchanged, 0 rewritten, -1 unknown
  double finished_unix = 0;                  // wall-clock end of the test
};

inline const char* verdict_name(PathTestSummary::Verdict v) {
  switch (v) {
    case PathTestSummary::Verdict::Ok:
      return "ok";
    case PathTestSummary::Verdict::Loss:
      return "loss";
    case PathTestSummary::Verdict::AllLost:
      return "all_lost";
    case PathTestSummary::Verdict::NoReflector:
      return "no_reflector";
    case PathTestSummary::Verdict::QosRewritten:
      return "qos_rewritten";
    case PathTestSummary::Verdict::Failed:
      return "failed";
  }
  return "failed";
}

// Asks for path tests to these devices (keys "site/device"), with why ("preflight NAME",
// "http", "cli"); the prober queues them under its safety caps. Results come back one per
// device through a PathTestFn.
// Asks for path tests to `keys`; `why` is logged; `bitrate_bps` > 0 replaces the devices' own
// `stamp.bitrate_kbps` (a conference's bitrate), 0 keeps it.
using PathTestRequestFn =
    std::function<void(const std::vector<std::string>& keys, const std::string& why, double bitrate_bps)>;
using PathTestFn = std::function<void(const std::string& key, const PathTestSummary&)>;

}  // namespace siteprobe::probes
