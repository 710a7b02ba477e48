// A software prefetch of one cache line, for reading.
#pragma once

namespace siteprobe {

// An asm statement where the compiler allows, not __builtin_prefetch: GCC 12 at -O2 silently drops
// the builtin on one side of a branch on a function argument (`if (!deep) __builtin_prefetch(p)`
// compiles to nothing), and a prefetch that may vanish with the next refactor measures nothing.
// A prefetch never faults, whatever `p` is.
inline void prefetch(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}

}  // namespace siteprobe
