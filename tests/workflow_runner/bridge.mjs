// A long-lived bridge to GitHub's own workflow parser and expression evaluator.
// Protocol: one JSON request per line on stdin, one JSON response per line on stdout.
//   {"op": "parse", "name": "wf.yml", "content": "..."}
//     -> {"ok": true, "errors": [...], "workflow": {...}}   (template tokens as plain JSON;
//        an expression becomes {"$expr": "..."} )
//   {"op": "eval", "expr": "...", "context": {...}, "status": {"success": true, ...}}
//     -> {"ok": true, "value": <JSON>}  or  {"ok": false, "error": "..."}
import readline from "node:readline";
import { Evaluator, Lexer, Parser, data } from "@actions/expressions";
import {
  NoOperationTraceWriter,
  convertWorkflowTemplate,
  isBasicExpression,
  isLiteral,
  isMapping,
  isSequence,
  parseWorkflow,
} from "@actions/workflow-parser";

function tokenToJson(token) {
  if (token === undefined || token === null) return null;
  if (isBasicExpression(token)) return { $expr: token.expression };
  if (isMapping(token)) {
    const out = {};
    for (let i = 0; i < token.count; i++) {
      const pair = token.get(i);
      out[String(pair.key.value ?? pair.key)] = tokenToJson(pair.value);
    }
    return out;
  }
  if (isSequence(token)) {
    const out = [];
    for (let i = 0; i < token.count; i++) out.push(tokenToJson(token.get(i)));
    return out;
  }
  if (isLiteral(token)) return token.value === undefined ? null : token.value;
  return String(token);
}

function jobToJson(job) {
  const out = {
    id: job.id.value,
    type: job.type,
    needs: (job.needs || []).map((n) => n.value),
    if: job.if ? job.if.expression : "success()",
    outputs: tokenToJson(job.outputs),
    env: tokenToJson(job.env),
    environment: tokenToJson(job.environment),
    concurrency: tokenToJson(job.concurrency),
    strategy: tokenToJson(job.strategy),
  };
  if (job.type === "reusableWorkflowJob") {
    out.uses = job.ref.value;
    out.with = tokenToJson(job["input-values"]);
  } else {
    out.steps = (job.steps || []).map((s) => ({
      id: s.id,
      name: tokenToJson(s.name),
      if: s.if ? s.if.expression : "success()",
      uses: s.uses ? s.uses.value : null,
      run: s.run !== undefined ? tokenToJson(s.run) : null,
      env: tokenToJson(s.env),
      with: tokenToJson(s.with),
      "continue-on-error": typeof s["continue-on-error"] === "boolean" ? s["continue-on-error"] : tokenToJson(s["continue-on-error"]),
    }));
  }
  return out;
}

async function parse(req) {
  const result = parseWorkflow({ name: req.name, content: req.content }, new NoOperationTraceWriter());
  const errors = result.context.errors.getErrors().map((e) => e.message);
  if (!result.value || errors.length) return { ok: true, errors, workflow: null };
  const template = await convertWorkflowTemplate(result.context, result.value);
  for (const e of template.errors || []) errors.push(e.Message || e.message);
  return { ok: true, errors, workflow: { jobs: (template.jobs || []).map(jobToJson) } };
}

function statusFunctions(status) {
  const fns = new Map();
  for (const name of ["success", "failure", "always", "cancelled"]) {
    fns.set(name, {
      name, minArgs: 0, maxArgs: 0,
      call: () => new data.BooleanData(Boolean(status[name])),
    });
  }
  return fns;
}

function evaluate(req) {
  const context = JSON.parse(JSON.stringify(req.context || {}), data.reviver);
  const lexed = new Lexer(req.expr).lex();
  const fns = statusFunctions(req.status || { success: true, always: true });
  const infos = [...fns.values()].map(({ name, minArgs, maxArgs }) => ({ name, minArgs, maxArgs }));
  const names = Object.keys(req.context || {});
  const expr = new Parser(lexed.tokens, names, infos).parse();
  const value = new Evaluator(expr, context, fns).evaluate();
  return { ok: true, value: JSON.parse(JSON.stringify(value, data.replacer) ?? "null") };
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
for await (const line of rl) {
  if (!line.trim()) continue;
  let response;
  try {
    const req = JSON.parse(line);
    response = req.op === "parse" ? await parse(req) : req.op === "eval" ? evaluate(req) : { ok: false, error: `unknown op ${req.op}` };
  } catch (err) {
    response = { ok: false, error: String(err && err.message ? err.message : err) };
  }
  process.stdout.write(JSON.stringify(response) + "\n");
}
