import { readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BUNDLE_BUDGET_BYTES, BUNDLE_PATH, build } from "../build";

describe("build", () => {
  it("is deterministic and records the bundle's sha256", async () => {
    const first = await build();
    const second = await build();
    expect(second.sha256).toBe(first.sha256);
    const bytes = await readFile(BUNDLE_PATH);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(first.sha256);
    expect(first.bytes).toBeLessThan(BUNDLE_BUDGET_BYTES);
  });
});
