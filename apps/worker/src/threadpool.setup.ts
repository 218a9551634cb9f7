/**
 * Imported first by main.ts, before any module that may touch libuv's thread pool: the pool is
 * sized once, at its first use, from UV_THREADPOOL_SIZE. Its default of 4 threads is shared by
 * file I/O, DNS lookups, zlib and crypto; password hashing (scrypt) is bounded separately
 * (HASH_CONCURRENCY, 2 by default), so 8 leaves at least 6 threads to files and DNS whatever
 * logins arrive. An operator's own UV_THREADPOOL_SIZE wins.
 */
process.env.UV_THREADPOOL_SIZE ??= '8';
export {};
