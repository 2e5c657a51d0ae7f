// Loaded with `node --import ./register.mjs`: lets Node 20 import the parser's JSON schema files.
import { register } from "node:module";
register("./json-hooks.mjs", import.meta.url);
