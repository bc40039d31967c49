// A small test runner for Keel's browser tests (started by ./run, which
// provides KEEL_BASE and KEEL_KEY). Usage:
//   node runner.mjs [FILE.test.mjs ...] [--grep PATTERN]
// Without files it runs every *.test.mjs beside it, in name order. One
// chromium for the run; a fresh context and page per test; a per-test
// timeout (KEEL_BROWSER_TIMEOUT_MS, default 60 s, or `test(name, { timeout })`);
// a screenshot and the page's HTML under target/browser/ on failure.
// Exit status 1 if any test failed.

import { readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as lib from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.KEEL_BASE;
const key = process.env.KEEL_KEY;
const artifacts = resolve(process.env.KEEL_BROWSER_ARTIFACTS || join(here, '../../target/browser'));
const defaultTimeout = Number(process.env.KEEL_BROWSER_TIMEOUT_MS || 60_000);
if (!base || !key) {
  console.error('runner: KEEL_BASE and KEEL_KEY must be set (tests/browser/run sets them)');
  process.exit(2);
}

const args = process.argv.slice(2);
let grep = null;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--grep') grep = new RegExp(args[++i]);
  else files.push(resolve(args[i]));
}
if (!files.length) {
  for (const f of readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort()) files.push(join(here, f));
}

const color = process.stdout.isTTY;
const paint = (code, s) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
const PASS = paint(32, 'pass');
const FAIL = paint(31, 'FAIL');
const SKIP = paint(33, 'SKIP');

const api = lib.apiClient(base, key);
const results = { pass: 0, fail: 0, skip: 0 };
const failures = [];
const started = Date.now();

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function slug(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80);
}

const browser = await lib.launchBrowser();
try {
  for (const file of files) {
    const name = basename(file);
    lib._beginFile(file);
    await import(pathToFileURL(file).href);
    const { tests, skipCheck } = lib._takeTests(file);
    const selected = tests.filter((t) => !grep || grep.test(`${name} ${t.name}`));
    console.log(`\n${name}`);
    if (!selected.length) {
      console.log('  (no tests)');
      continue;
    }
    const fileSkip = skipCheck ? await skipCheck({ base, api }) : null;
    if (fileSkip) {
      for (const t of selected) {
        console.log(`  ${SKIP} ${t.name} — ${fileSkip}`);
        results.skip++;
      }
      continue;
    }
    for (const t of selected) {
      const t0 = Date.now();
      const context = await lib.newContext(browser, { base });
      const page = await context.newPage();
      const consoleErrors = [];
      page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
      page.on('pageerror', (e) => consoleErrors.push(String(e)));
      const ctx = {
        page, context, browser, base, key, api, lib,
        consoleErrors,
        skip: (reason) => { throw new lib.Skip(reason); },
        log: (...m) => console.log('     ', ...m),
      };
      const timeout = t.timeout || defaultTimeout;
      try {
        await withTimeout(Promise.resolve().then(() => t.fn(ctx)), timeout, t.name);
        results.pass++;
        console.log(`  ${PASS} ${t.name} (${Date.now() - t0} ms)`);
      } catch (e) {
        if (e instanceof lib.Skip) {
          results.skip++;
          console.log(`  ${SKIP} ${t.name} — ${e.message}`);
        } else {
          results.fail++;
          const stem = join(artifacts, `${slug(name.replace(/\.test\.mjs$/, ''))}--${slug(t.name)}`);
          let saved = '';
          try {
            mkdirSync(artifacts, { recursive: true });
            await page.screenshot({ path: `${stem}.png`, fullPage: true, timeout: 5_000 });
            writeFileSync(`${stem}.html`, await page.content());
            saved = `\n      screenshot: ${stem}.png (page at ${page.url()})`;
          } catch (shotError) {
            saved = `\n      (no screenshot: ${shotError.message.split('\n')[0]})`;
          }
          const detail = (e && e.stack) || String(e);
          console.log(`  ${FAIL} ${t.name} (${Date.now() - t0} ms)\n${indent(detail)}${saved}`);
          if (consoleErrors.length) console.log(indent(`browser console errors:\n${consoleErrors.join('\n')}`));
          failures.push(`${name} › ${t.name}`);
        }
      } finally {
        await context.close().catch(() => {});
      }
    }
  }
} finally {
  await browser.close().catch(() => {});
}

function indent(s) {
  return String(s).split('\n').map((l) => `      ${l}`).join('\n');
}

const secs = ((Date.now() - started) / 1000).toFixed(1);
console.log(`\n${results.pass} passed, ${results.fail} failed, ${results.skip} skipped (${secs} s)`);
if (failures.length) {
  console.log('failed:');
  for (const f of failures) console.log(`  - ${f}`);
  process.exit(1);
}
