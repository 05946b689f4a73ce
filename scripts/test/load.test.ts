import type { Result } from "autocannon";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LoadTarget, loadErrors, mixedLoad, startLoadTarget, unreadableSessions } from "../lib/mixed-load";
import { LOAD_TEST_CONNECTIONS } from "../soak";

const SECONDS = 10;

// Mixed reads and writes against the local stack `npm start` runs, over real HTTP.
describe(`load: ${LOAD_TEST_CONNECTIONS} connections, mixed reads and writes for ${SECONDS} s`, () => {
  let target: LoadTarget;
  let result: Result;
  /** Every session the server confirmed creating (201 with an id). */
  let created: string[] = [];

  beforeAll(async () => {
    target = await startLoadTarget();
    ({ result, created } = await mixedLoad(target, { connections: LOAD_TEST_CONNECTIONS, seconds: SECONDS }));
  }, 60_000);

  afterAll(() => target?.dispose());

  it("answers every request without an error", () => {
    expect(result.requests.total).toBeGreaterThan(LOAD_TEST_CONNECTIONS * 4);
    expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }).toEqual({ errors: 0, timeouts: 0, non2xx: 0 });
    expect(loadErrors(result)).toBe(0);
  });

  it("loses no session: every one created during the run is readable afterwards", async () => {
    expect(created.length).toBeGreaterThan(LOAD_TEST_CONNECTIONS);
    expect(await unreadableSessions(target, created)).toEqual([]);
  }, 60_000);
});
