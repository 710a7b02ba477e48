/* The "libcrypto.so" CivetWeb dlopen()s: no code of its own, only a dependency on the real
 * libcrypto.so.3, whose symbols dlsym() finds through it. See ssl.c. */
int siteprobe_crypto_stub;
