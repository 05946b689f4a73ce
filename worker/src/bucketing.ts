/** Buckets per 100 %: a percentage is honoured to 0.01 %. */
export const BUCKETS = 10_000;

/**
 * A user's stable bucket (0..9999) for one flag: SHA-256 of `<flag>:<userId>`,
 * first four bytes as an unsigned integer, modulo BUCKETS. Seeding with the
 * flag name keeps rollouts of different flags independent. The modulo bias
 * (2^32 is not a multiple of 10,000) is below 0.0003 %.
 */
export async function bucketOf(flag: string, userId: string): Promise<number> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${flag}:${userId}`));
  return new DataView(digest).getUint32(0) % BUCKETS;
}
