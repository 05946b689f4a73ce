import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_SCOPES, type AdminScope } from "../../worker/src/contract";
import { purge } from "../purge";
import { revoke } from "../revoke";
import { runSmoke } from "../smoke";
import { type LocalStack, startLocalStack } from "../start";

/** The scopes each command needs, as docs/security.md states them. */
const NEEDS: Record<"smoke" | "purge" | "revoke", AdminScope[]> = {
  smoke: ["sessions:write", "sessions:revoke", "flags:write"],
  purge: ["cache:purge"],
  revoke: ["sessions:revoke"],
};

/** A token per command with exactly its scopes, and for each of its scopes one holding the others only. */
const tokenFor = (command: string, without?: AdminScope) => `${command}-token-${without ? `without-${without.replace(":", "-")}` : "exact"}`;
const ADMIN_TOKENS = JSON.stringify(
  Object.entries(NEEDS).flatMap(([command, scopes]) => [
    { name: command, token: tokenFor(command), scopes },
    ...scopes
      .filter(() => scopes.length > 1)
      .map((without) => ({ name: `${command}-without-${without.replace(":", "-")}`, token: tokenFor(command, without), scopes: scopes.filter((s) => s !== without) })),
    // A command's token minus its only scope still needs some scope: give it the one it can least use.
    ...(scopes.length === 1 ? [{ name: `${command}-without`, token: tokenFor(command, scopes[0]), scopes: [ADMIN_SCOPES.find((s) => s === "read")!] }] : []),
  ]),
);

describe("npm run smoke, purge and revoke with scoped tokens (ADMIN_TOKENS)", () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: "scoped-test-admin-token", adminTokens: ADMIN_TOKENS, originUrl: "http://127.0.0.1:9" });
  });
  afterAll(() => stack.dispose());

  it("smoke passes every check with a token of just sessions:write, sessions:revoke and flags:write", async () => {
    const results = await runSmoke({ url: stack.url, adminToken: tokenFor("smoke") });
    expect(results.filter((r) => r.status === "fail")).toEqual([]);
    expect(results.filter((r) => r.status === "pass").map((r) => r.name)).toEqual(expect.arrayContaining(["session create", "sign out all", "flag put", "flag delete"]));
  });

  it.each(NEEDS.smoke)("smoke fails a check with a token lacking %s", async (scope) => {
    const results = await runSmoke({ url: stack.url, adminToken: tokenFor("smoke", scope) });
    const failed = results.filter((r) => r.status === "fail");
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.map((r) => r.detail).join(" ")).toContain("insufficient_scope");
  });

  it("purge works with a token of just cache:purge, and not with one lacking it", async () => {
    expect(await purge({ url: stack.url, prefix: "product:", adminToken: tokenFor("purge") })).toMatchObject({ deleted: 0 });
    await expect(purge({ url: stack.url, prefix: "product:", adminToken: tokenFor("purge", "cache:purge") })).rejects.toThrow(/403|insufficient_scope/);
  });

  it("revoke works with a token of just sessions:revoke, and not with one lacking it", async () => {
    expect(await revoke({ url: stack.url, userId: "nobody", adminToken: tokenFor("revoke") })).toMatchObject({ revoked: 0 });
    await expect(revoke({ url: stack.url, userId: "nobody", adminToken: tokenFor("revoke", "sessions:revoke") })).rejects.toThrow(/403|insufficient_scope/);
  });

  it("npm start refuses a malformed ADMIN_TOKENS with the reason, never the token", async () => {
    const bad = JSON.stringify([{ name: "ci", token: "a-secret-token-value", scopes: ["cache:everything"] }]);
    const error = await startLocalStack({ port: 0, ephemeral: true, adminTokens: bad }).then(
      (s) => s.dispose().then(() => undefined),
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/^ADMIN_TOKENS is invalid: 0\.scopes\.0: /);
    expect(error?.message).not.toContain("a-secret-token-value");
  });
});
