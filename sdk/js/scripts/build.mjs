// Builds dist/: ESM and CommonJS (bundled: the SDK has no runtime dependencies), the minified
// browser bundle with its global `Wspush`, and the type declarations. Copies the bundle next to
// the chat demo, then prints its gzipped size.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, rmSync } from "node:fs";
import { gzipSync } from "node:zlib";

const root = new URL("..", import.meta.url).pathname;
process.chdir(root);
rmSync("dist", { recursive: true, force: true });

// ES2017: async/await but nothing newer, for mini-program and older React Native engines.
const common = { bundle: true, target: "es2017", logLevel: "warning", legalComments: "none" };
await Promise.all([
    build({ ...common, entryPoints: ["src/index.ts"], format: "esm", outfile: "dist/index.mjs", sourcemap: true }),
    build({ ...common, entryPoints: ["src/index.ts"], format: "cjs", outfile: "dist/index.cjs", sourcemap: true }),
    build({ ...common, entryPoints: ["src/global.ts"], format: "iife", outfile: "dist/wspush.min.js", minify: true }),
]);
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
copyFileSync("dist/wspush.min.js", "examples/chat/wspush.min.js");

const bundle = readFileSync("dist/wspush.min.js");
const gz = gzipSync(bundle, { level: 9 }).length;
console.log(`bundle size: dist/wspush.min.js ${bundle.length} bytes minified, ${gz} bytes min+gz (goal <= 8192)`);
if (gz > 8192) {
    console.error("bundle size over budget");
    process.exit(1);
}
