import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { buildOpenApi } from "./worker/openapi-build.ts";
import { BACKUP_VARS, BACKUPS_BINDING } from "./worker/src/backup/format.ts";

/** The backup schedule the workerd tests run with (worker/test/backup.test.ts fires it). */
const TEST_BACKUP_SCHEDULE = "0 3 * * *";
import { COMPATIBILITY_DATE, COMPATIBILITY_FLAGS, KV_BINDINGS, LOCAL_VERSION_METADATA, VERSION_METADATA_BINDING } from "./worker/src/contract.ts";

/**
 * Two projects: `worker` runs inside workerd against real local KV;
 * `node` runs the Pulumi mock-engine tests and the scripts' end-to-end tests.
 */
export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            main: "./worker/src/index.ts",
            miniflare: {
              compatibilityDate: COMPATIBILITY_DATE,
              compatibilityFlags: [...COMPATIBILITY_FLAGS],
              // TEST_BULK: worker/test/backup.test.ts's 5,000 keys, seeded once, apart from the namespaces other tests clear.
              kvNamespaces: [...KV_BINDINGS, "TEST_BULK"],
              r2Buckets: [BACKUPS_BINDING],
              // Not bound under the Worker's limiter names, so other tests are not limited; the
              // rate-limit tests pass them in as PRODUCT_MISS_LIMITER and the rest (worker/test/rate-limits.test.ts).
              ratelimits: {
                TEST_LIMIT_3: { namespace_id: "9001", simple: { limit: 3, period: 60 } },
                TEST_LIMIT_3_SECOND: { namespace_id: "9002", simple: { limit: 3, period: 60 } },
              },
              bindings: {
                ADMIN_TOKEN: "test-admin-token",
                ENVIRONMENT: "test",
                ORIGIN_URL: "https://origin.test",
                [BACKUP_VARS.schedule]: TEST_BACKUP_SCHEDULE,
                [BACKUP_VARS.namespaces]: "CONFIG,SESSIONS",
                [VERSION_METADATA_BINDING]: { ...LOCAL_VERSION_METADATA },
              },
            },
          }),
        ],
        // What worker/build.ts defines, so GET /openapi.json serves the document built from these sources.
        define: { __BUILD_VERSION__: JSON.stringify("test"), ...buildOpenApi("test").define },
        test: { name: "worker", include: ["worker/test/**/*.test.ts"] },
      },
      {
        test: {
          name: "node",
          include: ["infra/test/**/*.test.ts", "policy/test/**/*.test.ts", "scripts/test/**/*.test.ts"],
          environment: "node",
          globalSetup: ["scripts/test/global-setup.ts"],
        },
      },
    ],
  },
});
