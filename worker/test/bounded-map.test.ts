import { describe, expect, it } from "vitest";
import { setBounded } from "../src/bounded-map";

describe("setBounded", () => {
  it("drops the oldest entry once the map holds more than its bound", () => {
    const map = new Map<string, number>();
    for (const [i, key] of ["a", "b", "c", "d"].entries()) setBounded(map, key, i, 3);
    expect([...map.keys()]).toEqual(["b", "c", "d"]);
  });

  it("counts a key set again as the newest, so it outlives older ones", () => {
    const map = new Map([["a", 1], ["b", 2], ["c", 3]]);
    setBounded(map, "a", 10, 3);
    setBounded(map, "d", 4, 3);
    expect([...map.entries()]).toEqual([["c", 3], ["a", 10], ["d", 4]]);
  });
});
