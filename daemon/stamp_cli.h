// `siteprobe path-test` (one STAMP stream from this host, printed) and `siteprobe reflect` (a
// STAMP Session-Reflector until stopped). docs/runbook.md#path-tests-and-the-reflector.
#pragma once

namespace siteprobe {

int path_test_main(int argc, char** argv);
int reflect_main(int argc, char** argv);

}  // namespace siteprobe
