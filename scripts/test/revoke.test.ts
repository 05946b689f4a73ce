import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revoke } from "../revoke";
import { type LocalStack, startLocalStack } from "../start";
import { runScript } from "./run-script";

const ADMIN_TOKEN = "revoke-test-admin-token";

/** Runs `npm run revoke` as a user would. */
const runRevoke = (args: string[], env: Record<string, string> = {}) => runScript("revoke.ts", args, env);

describe("npm run revoke", () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: ADMIN_TOKEN });
  });
  afterAll(() => stack.dispose());

  const createSession = async (userId: string) => {
    const response = await fetch(`${stack.url}/sessions`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ userId, email: "someone@example.com" }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { sessionId: string }).sessionId;
  };
  const status = async (id: string) => (await fetch(`${stack.url}/sessions/${id}`)).status;

  it("signs one user out everywhere and leaves other users signed in", async () => {
    const alice = await Promise.all([1, 2, 3].map(() => createSession("alice@corp")));
    const bob = await createSession("bob");

    const { code, stdout, stderr } = await runRevoke(["--url", stack.url, "--user", "alice@corp"], { ADMIN_TOKEN });

    expect(code, stderr).toBe(0);
    expect(stdout).toMatch("page 1: revoked 3 (3 so far)");
    expect(stdout).toMatch(/Revoked 3 sessions in 1 page, [\d.]+ s\. They stop validating everywhere within 60 s/);
    for (const id of alice) expect(await status(id)).toBe(404);
    expect(await status(bob)).toBe(200);
  }, 30_000);

  it("fails with the server's code and message when the token is wrong", async () => {
    const { code, stdout, stderr } = await runRevoke(["--url", stack.url, "--user", "bob", "--admin-token", "wrong"]);
    expect(code).toBe(1);
    expect(stderr.trim().split("\n")).toEqual([expect.stringMatching(/^revoke: DELETE .*answered 401 \(unauthorized: .+\)$/)]);
    expect(stdout).not.toContain("Revoked");
  }, 30_000);
});

describe("revoke()", () => {
  it("follows the cursor page by page and reports sessions created meanwhile", async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const cursor = new URL(req.url ?? "/", "http://x").searchParams.get("cursor");
      const body =
        req.method === "GET"
          ? { sessions: [{ sessionIdPrefix: "abcdefgh" }] }
          : cursor === null
            ? { revoked: 499, complete: false, cursor: "c1" }
            : cursor === "c1"
              ? { revoked: 499, complete: false, cursor: "c2" }
              : { revoked: 2, complete: true };
      res.setHeader("content-type", "application/json").end(JSON.stringify(body));
    }).listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const summary = await revoke({ url, userId: "a/b", adminToken: "t" });
      expect(summary).toMatchObject({ revoked: 1000, pages: 3, remaining: 1 });
      expect(seen).toEqual([
        "DELETE /users/a%2Fb/sessions",
        "DELETE /users/a%2Fb/sessions?cursor=c1",
        "DELETE /users/a%2Fb/sessions?cursor=c2",
        "GET /users/a%2Fb/sessions",
      ]);
    } finally {
      server.close();
    }
  });
});
