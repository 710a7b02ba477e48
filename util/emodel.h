// The E-model (ITU-T G.107, simplified) that turns delay, delay variation and loss into an
// R-factor and a MOS: site state uses it on ping rounds, the STAMP path test on its stream.
#pragma once

#include <algorithm>

namespace siteprobe {

struct EModel {
  double r, mos;
};
// effective latency = rtt + 2*jitter + 10 ms (round trip, in ms);
// R = 93.2 - eff/40 if eff < 160 else 93.2 - (eff - 120)/10; R -= 2.5 * loss%; R in [0, 100];
// MOS = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R), in [1, 4.5].
inline EModel emodel(double rtt_s, double jitter_s, double loss_ratio) {
  const double eff = rtt_s * 1000 + 2 * jitter_s * 1000 + 10;
  double r = eff < 160 ? 93.2 - eff / 40 : 93.2 - (eff - 120) / 10;
  r -= 2.5 * loss_ratio * 100;
  r = std::clamp(r, 0.0, 100.0);
  const double mos = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r);
  return {r, std::clamp(mos, 1.0, 4.5)};
}

}  // namespace siteprobe
