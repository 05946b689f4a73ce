/** Buckets per 100 %: a percentage is honoured to 0.01 %. */
export const BUCKETS = 10_000;

const utf8 = new TextEncoder();

/**
 * A user's stable bucket (0..9999) for one flag: MurmurHash3 (x86, 32-bit,
 * seed 0) of the UTF-8 bytes of `<flag>:<userId>`, modulo BUCKETS — the hash
 * Unleash buckets with, so any MurmurHash3 library reproduces it. Seeding
 * with the flag name keeps rollouts of different flags independent. The
 * modulo bias (2^32 is not a multiple of 10,000) is below 0.0003 %.
 * Synchronous, unlike the SHA-256 through crypto.subtle it replaces: that
 * was an async call into the runtime on every evaluation of the hottest
 * route (bench/analysis.md). A bucket needs uniformity, not secrecy.
 */
export const bucketOf = (flag: string, userId: string): number => murmurHash3(utf8Bytes(`${flag}:${userId}`)) % BUCKETS;

/** MurmurHash3_x86_32 (seed 0) of a string's UTF-8 bytes, without TextEncoder for ASCII text (flagd's `fractional` hashes this way). */
export const murmurHash3OfText = (text: string): number => murmurHash3(utf8Bytes(text));

/** Reused for ASCII keys (flag names always are, user ids nearly always): no allocation, no call into the runtime. */
const asciiBuffer = new Uint8Array(1024);

/** The UTF-8 bytes of `text`; an ASCII string's are its char codes, copied without TextEncoder. */
function utf8Bytes(text: string): Uint8Array {
  if (text.length > asciiBuffer.length) return utf8.encode(text);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return utf8.encode(text);
    asciiBuffer[i] = code;
  }
  return asciiBuffer.subarray(0, text.length);
}

/** MurmurHash3_x86_32 (Austin Appleby's reference, public domain) of `bytes`, as an unsigned integer. */
export function murmurHash3(bytes: Uint8Array, seed = 0): number {
  const mixK = (k: number) => Math.imul(rotl(Math.imul(k, 0xcc9e2d51), 15), 0x1b873593);
  const tail = bytes.length & ~3;
  let h = seed;
  for (let i = 0; i < tail; i += 4) {
    h ^= mixK(bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    h = (Math.imul(rotl(h, 13), 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (bytes.length & 3) {
    case 3:
      k ^= bytes[tail + 2]! << 16;
    // falls through
    case 2:
      k ^= bytes[tail + 1]! << 8;
    // falls through
    case 1:
      k ^= bytes[tail]!;
      h ^= mixK(k);
  }
  h ^= bytes.length;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
