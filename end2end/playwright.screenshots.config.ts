import base from "./playwright.config";
import { defineConfig } from "@playwright/test";

// `make screenshots`: the same servers as the end-to-end suite, the screenshot walk instead of the
// tests. Writes PNGs to docs/screenshots/.
export default defineConfig({ ...base, testDir: "./screenshots", fullyParallel: false, workers: 1, timeout: 300_000 });
