/**
 * Responses built once per isolate where possible. Every response carries the
 * JSON API's security headers; the hot routes get them in the one header
 * object their Response is constructed with (one call into the runtime),
 * instead of a middleware layer that sets each header after the handler.
 */

/** nosniff, HSTS and no-referrer: the headers that matter for a JSON API (the rest guard HTML documents). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "X-Content-Type-Options": "nosniff",
  "Strict-Transport-Security": "max-age=15552000; includeSubDomains",
  "Referrer-Policy": "no-referrer",
};

const JSON_HEADERS = { ...SECURITY_HEADERS, "Content-Type": "application/json" };

/**
 * Responses built here already carry SECURITY_HEADERS: the app's last step
 * skips them without a header lookup. Isolate-wide, but safe across requests:
 * it holds its Responses weakly and is only asked about the Response of the
 * request that built it; nothing awaits or reads another request's Response.
 */
const secured = new WeakSet<Response>();

function mark(res: Response): Response {
  secured.add(res);
  return res;
}

/** A JSON response with the security headers; `extra` headers (Allow, Retry-After…) are added to them. */
export const json = (body: unknown, status = 200, extra?: Record<string, string>): Response =>
  mark(new Response(JSON.stringify(body), { status, headers: extra ? { ...JSON_HEADERS, ...extra } : JSON_HEADERS }));

/** A header set for `jsonText`: the JSON headers plus `extra`; build it once, not per request. */
export const jsonHeaders = (extra: Record<string, string>): Readonly<Record<string, string>> => ({ ...JSON_HEADERS, ...extra });

/** A 200 whose body is already JSON text (a cached origin body), with headers from `jsonHeaders`. */
export const jsonText = (body: string, headers: Readonly<Record<string, string>>): Response => mark(new Response(body, { headers }));

/** An empty response (204) with the security headers. */
export const empty = (status: number): Response => mark(new Response(null, { status, headers: SECURITY_HEADERS }));

/**
 * The safety net for responses built elsewhere (a route added with `c.json`,
 * Hono's HEAD handling): sets the security headers unless the response was
 * built here. A response whose headers cannot change (one passed through from
 * fetch) is copied.
 */
export function withSecurityHeaders(res: Response): Response {
  if (secured.has(res)) return res;
  try {
    for (const name in SECURITY_HEADERS) res.headers.set(name, SECURITY_HEADERS[name]!);
    return res;
  } catch {
    const copy = new Response(res.body, res);
    for (const name in SECURITY_HEADERS) copy.headers.set(name, SECURITY_HEADERS[name]!);
    return copy;
  }
}
