// UvHandle<T>: the one owner of a libuv handle (uv_timer_t, uv_poll_t, …) on the heap.
//
// libuv closes handles asynchronously: after uv_close() the loop still uses the handle's memory
// until the close callback runs. So the owner never frees the memory itself; reset() and the
// destructor call uv_close(), and the close callback deletes it. There is one owner per handle:
// copying is forbidden (a copy would close the handle twice), moving hands the handle over (the
// handle stays where it is on the heap, so a `data` pointer set on it stays valid).
//
// T is a libuv handle type, or a type that derives from one without adding members (a test uses
// that to count frees). Threading: loop thread only, like the handle.
#pragma once

#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

namespace siteprobe {

// For libuv calls that fail only when siteprobe misuses libuv (uv_timer_start on a closing
// handle, say): such a failure is a bug of ours, not data, so it stops the process loudly.
inline void uv_must(int rc, const char* what) noexcept {
  if (rc == 0) return;
  std::fprintf(stderr, "siteprobe: %s failed: %s (a bug: please report it)\n", what, uv_strerror(rc));
  std::abort();
}

template <class T>
class UvHandle {
 public:
  UvHandle() = default;
  ~UvHandle() { reset(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  UvHandle(UvHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  UvHandle& operator=(UvHandle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }

  // Closes any handle held, then allocates a new one and initialises it with init(T*), a uv_*_init
  // call. Returns init's result; on failure nothing is held (a handle whose init failed is not
  // registered with the loop, so it is freed at once).
  template <class Init>
  int init(Init&& init) {
    reset();
    auto h = std::make_unique<T>();
    const int rc = init(h.get());
    if (rc == 0) h_ = h.release();
    return rc;
  }

  T* get() const { return h_; }
  explicit operator bool() const { return h_ != nullptr; }

  // Closes the handle (stopping it); its memory is freed in the close callback.
  void reset() noexcept {
    if (!h_) return;
    uv_close(reinterpret_cast<uv_handle_t*>(h_), [](uv_handle_t* h) noexcept {
      // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): libuv hands the handle back to this C callback
      delete reinterpret_cast<T*>(h);
    });
    h_ = nullptr;
  }

 private:
  T* h_ = nullptr;
};

}  // namespace siteprobe
