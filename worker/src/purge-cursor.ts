/**
 * The purge route's cursor: KV's own list cursor, signed with the admin token
 * for one prefix. KV cursors are opaque, and local KV does not refuse one it
 * never issued: it silently lists from elsewhere, so a purge reported complete
 * having deleted nothing (what the KV service does with one is undocumented).
 * A cursor the Worker did not issue for this prefix is a 400 before KV sees
 * it. Only the admin may purge, so the admin token is the key.
 */
import { timingSafeEqual } from "hono/utils/buffer";

const SEPARATOR = ".";

export async function signCursor(secret: string, prefix: string, kvCursor: string): Promise<string> {
  return `${kvCursor}${SEPARATOR}${await signature(secret, prefix, kvCursor)}`;
}

/** KV's cursor inside `cursor`, or undefined when the Worker did not issue it for `prefix`. */
export async function openCursor(secret: string, prefix: string, cursor: string): Promise<string | undefined> {
  const at = cursor.lastIndexOf(SEPARATOR);
  if (at <= 0) return undefined;
  const kvCursor = cursor.slice(0, at);
  const valid = await timingSafeEqual(cursor.slice(at + 1), await signature(secret, prefix, kvCursor));
  return valid ? kvCursor : undefined;
}

async function signature(secret: string, prefix: string, kvCursor: string): Promise<string> {
  const utf8 = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", utf8.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8.encode(`${prefix}\n${kvCursor}`)));
  // 128 bits is plenty to tell a forged cursor; base64url keeps it query-string safe.
  return btoa(String.fromCharCode(...mac.subarray(0, 16))).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
