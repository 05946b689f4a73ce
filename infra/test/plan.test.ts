import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderSnapshot, snapshotPath } from "../../scripts/plan";

describe("committed plan snapshots", () => {
  it.each(["dev", "prod"])("infra/plans/%s.txt matches the program (update: npm run plan -- --stack <stack> --update)", async (stack) => {
    expect(await renderSnapshot(stack)).toBe(readFileSync(snapshotPath(stack), "utf8"));
  });
});
