// Compiles the TypeScript tests of the given suites (unit, e2e, browser) with esbuild and runs them
// with node's test runner, one file at a time (the machine is small and e2e tests start daemons).
// Usage: node scripts/run-tests.mjs unit e2e browser
import { build } from "esbuild";
import { spawn } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";

process.chdir(new URL("..", import.meta.url).pathname);
const suites = process.argv.slice(2);
// Per test file: the suite is killed after this times its number of files, on top of each test's own timeout.
const FILE_TIMEOUT_MS = { unit: 60_000, e2e: 180_000, browser: 180_000 };
// Per test.
const TEST_TIMEOUT_MS = { unit: 10_000, e2e: 90_000, browser: 150_000 };

let failed = false;
const totals = { pass: 0, fail: 0 };
for (const suite of suites) {
    const files = readdirSync(`test/${suite}`).filter((f) => f.endsWith(".test.ts"));
    const outdir = `.build/test/${suite}`;
    rmSync(outdir, { recursive: true, force: true });
    await build({
        entryPoints: files.map((f) => `test/${suite}/${f}`),
        outdir,
        outExtension: { ".js": ".mjs" },
        bundle: true,
        platform: "node",
        format: "esm",
        target: "node18",
        packages: "external",
        sourcemap: "inline",
        logLevel: "warning",
    });
    const compiled = files.map((f) => `${outdir}/${f.replace(/\.ts$/, ".mjs")}`);
    console.log(`\n=== ${suite} tests (${compiled.length} files) ===`);
    const code = await new Promise((resolve) => {
        const child = spawn(
            process.execPath,
            ["--enable-source-maps", "--disable-warning=ExperimentalWarning", "--test", `--test-timeout=${TEST_TIMEOUT_MS[suite]}`, "--test-reporter=spec", "--test-concurrency=1", ...compiled],
            { stdio: ["ignore", "pipe", "inherit"] },
        );
        // Echo the runner's output, keeping its closing counts for the total below.
        let output = "";
        child.stdout.on("data", (chunk) => (process.stdout.write(chunk), (output += chunk)));
        child.on("close", () => {
            for (const [, key, n] of output.matchAll(/^ℹ (pass|fail) (\d+)$/gm)) totals[key] += Number(n);
        });
        const timer = setTimeout(() => {
            console.error(`${suite}: over ${FILE_TIMEOUT_MS[suite] * compiled.length} ms, killing`);
            child.kill("SIGKILL");
        }, FILE_TIMEOUT_MS[suite] * compiled.length);
        child.on("close", (c) => (clearTimeout(timer), resolve(c ?? 1)));
    });
    if (code !== 0) failed = true;
}
console.log(`\nsdk/js tests (${suites.join(", ")}): ${totals.pass} passed, ${totals.fail} failed`);
process.exit(failed ? 1 : 0);
