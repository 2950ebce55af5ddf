import { defineConfig } from "vite";

// Built assets are committed into the Python package, so users need no Node.js.
export default defineConfig({
  base: "/",
  build: {
    outDir: "../src/agenthub/web/static",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
  },
});
