// Copies Swagger UI's files (from npm, pinned in package-lock.json) into the Python package, where /docs
// serves them: the API reference page needs no CDN and no Node.js at run time. `make apidocs` runs this.
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "..", "node_modules", "swagger-ui-dist");
const target = join(here, "..", "..", "..", "src", "agenthub", "web", "static", "apidocs");
mkdirSync(target, { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"]) {
  copyFileSync(join(source, file), join(target, file));
}
const version = JSON.parse(readFileSync(join(source, "package.json"), "utf8")).version;
console.log(`swagger-ui-dist ${version} -> ${target}`);
