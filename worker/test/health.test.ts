import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("health", () => {
  it("answers 200 with the environment", async () => {
    const res = await exports.default.fetch("http://w/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", environment: "test" });
    await env.SESSIONS.put("a", "b");
    expect(await env.SESSIONS.get("a")).toBe("b");
  });
});
