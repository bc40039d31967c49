// Helpers for Keel's browser tests: launching Debian chromium through
// playwright-core, axe-core checks, keyboard-only interaction, and the JSON
// API with the demo key. Test files register tests with `test()`; the
// runner (runner.mjs, started by ./run) gives each test a fresh browser
// context and page.

import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';

const require = createRequire(import.meta.url);

export const CHROMIUM = process.env.KEEL_CHROMIUM || '/usr/bin/chromium';

// As in shared/DEPENDENCIES.md: without the background-networking flags
// chromium keeps trying to reach the (closed) internet.
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-proxy-server',
];

// WCAG 2.0, 2.1 and 2.2, levels A and AA (axe has no separate wcag22a tag).
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

export const PHONE = { width: 390, height: 844 };

/** Debian chromium through playwright-core. `launch` gives the browser a
 * fresh temporary profile (--user-data-dir) and removes it on close. No
 * browser is ever downloaded. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    timeout: 30_000,
  });
}

/** A context as shoppers have it: bypassCSP only so axe can be injected. */
export async function newContext(browser, { base, viewport = { width: 1280, height: 900 }, ...rest } = {}) {
  return browser.newContext({ baseURL: base, viewport, bypassCSP: true, ...rest });
}

// ------------------------------------------------------------------ tests

const registry = [];

/** Registers a test: `test(name, fn)` or `test(name, { timeout }, fn)`.
 * `fn` gets { page, context, browser, base, key, api, skip, log }. */
export function test(name, opts, fn) {
  if (typeof opts === 'function') [opts, fn] = [{}, opts];
  registry.push({ name, timeout: opts.timeout, fn, file: currentFile });
}

/** Skips every test of the file when `check({ base, api })` returns a
 * reason (a string); it runs once, before the file's first test. */
export function skipFileIf(check) {
  fileSkips.set(currentFile, check);
}

export class Skip extends Error {}

let currentFile = null;
const fileSkips = new Map();

/** For the runner. */
export function _beginFile(file) {
  currentFile = file;
}
export function _takeTests(file) {
  return { tests: registry.filter((t) => t.file === file), skipCheck: fileSkips.get(file) };
}

// -------------------------------------------------------------------- API

/** The JSON API with the demo key: `api.get(path)`, `api.post(path, body)`;
 * paths are relative to /api/v1. Returns { status, body }. */
export function apiClient(base, key) {
  async function call(method, path, body) {
    const headers = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST') headers['idempotency-key'] = randomUUID();
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = text;
    try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: res.status, body: parsed };
  }
  const ok = async (method, path, body) => {
    const r = await call(method, path, body);
    if (r.status < 200 || r.status > 299) {
      throw new Error(`${method} /api/v1${path} -> ${r.status}: ${JSON.stringify(r.body)}`);
    }
    return r.body;
  };
  return {
    get: (path) => call('GET', path),
    post: (path, body = {}) => call('POST', path, body),
    /** 2xx or throw; returns the body. */
    ok,
    getOk: (path) => ok('GET', path),
    postOk: (path, body = {}) => ok('POST', path, body),
  };
}

/** Sets the sellable stock of `sku` to `available` in total: all of it at
 * the first location, none elsewhere (reserved, safety stock, damaged and
 * QC units are kept, on_hand is set around them). */
export async function setAvailable(api, sku, available) {
  const levels = (await api.getOk(`/inventory/levels?sku=${encodeURIComponent(sku)}`)).data;
  if (!levels.length) throw new Error(`no stock levels for ${sku}: receive some first`);
  for (const [i, l] of levels.entries()) {
    const held = l.reserved + l.safety_stock + l.damaged + l.quality_control;
    const want = held + (i === 0 ? available : 0);
    if (want !== l.on_hand) {
      await api.postOk('/inventory/adjustments', {
        sku, location_id: l.location_id, set_on_hand: want, expected_on_hand: l.on_hand, reason: 'browser test',
      });
    }
  }
}

// ----------------------------------------------------------- accessibility

/** Runs axe-core (WCAG 2.0/2.1/2.2 A and AA) on the page; throws with a
 * readable list of violations. `options.exclude`: CSS selectors to leave
 * out (say why in the test). Returns the axe results. */
export async function axeCheck(page, options = {}) {
  const has = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!has) await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
  const results = await page.evaluate(async ({ tags, exclude }) => {
    const context = exclude && exclude.length ? { exclude: exclude.map((s) => [s]) } : document;
    const r = await window.axe.run(context, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return {
      url: location.href,
      violations: r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl,
        nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary })),
      })),
    };
  }, { tags: AXE_TAGS, exclude: options.exclude || [] });
  if (results.violations.length) {
    const lines = [`axe: ${results.violations.length} violation(s) on ${results.url}`];
    for (const v of results.violations) {
      lines.push(`  - [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})`);
      for (const n of v.nodes.slice(0, 10)) {
        lines.push(`      at ${n.target}`);
        if (n.summary) lines.push(...n.summary.split('\n').map((s) => `        ${s}`));
      }
      if (v.nodes.length > 10) lines.push(`      … and ${v.nodes.length - 10} more`);
    }
    throw new Error(lines.join('\n'));
  }
  return results;
}

// ---------------------------------------------------------------- keyboard

/** Whether `locator`'s element has the focus. */
export async function isFocused(locator) {
  return locator.evaluate((el) => el === document.activeElement || el.contains(document.activeElement));
}

/** Presses Tab (or `key`, e.g. 'Shift+Tab') until `locator` has the focus,
 * proving it is reachable by keyboard; fails after `max` presses. */
export async function tabTo(page, locator, { key = 'Tab', max = 80 } = {}) {
  await locator.first().waitFor({ state: 'visible' });
  const target = locator.first();
  for (let i = 0; i < max; i++) {
    if (await isFocused(target)) return target;
    await page.keyboard.press(key);
  }
  if (await isFocused(target)) return target;
  const active = await page.evaluate(() => {
    const a = document.activeElement;
    return a ? `${a.tagName.toLowerCase()}${a.id ? '#' + a.id : ''} "${(a.textContent || '').trim().slice(0, 40)}"` : 'nothing';
  });
  throw new Error(`${target} not reached with ${max} x ${key} (focus is on ${active})`);
}

/** Tabs to `locator` and presses Enter (links, buttons). With `load`
 * (default true) waits for the page that loads next, if one does within
 * 15 s (a form post, a link); pages updated in place load nothing. */
export async function activate(page, locator, { key = 'Enter', load = true } = {}) {
  await tabTo(page, locator);
  const loaded = load ? page.waitForEvent('load', { timeout: 15_000 }).catch(() => null) : null;
  await page.keyboard.press(key);
  if (loaded) await loaded;
}

/** Tabs to a form field and types `text` into it (after clearing it). */
export async function typeInto(page, locator, text) {
  await tabTo(page, locator);
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Backspace');
  await page.keyboard.type(String(text));
}

/** Chooses `label` in a <select> (arrow keys) or a radio group (arrow keys
 * from its first radio), by keyboard only. `field` is the select, or the
 * group (e.g. getByRole('radiogroup', { name: 'Size' }) or a fieldset). */
export async function chooseOption(page, field, label, { max = 50 } = {}) {
  const el = field.first();
  const tag = await el.evaluate((e) => e.tagName.toLowerCase());
  if (tag === 'select') {
    await tabTo(page, el);
    const want = label instanceof RegExp ? label : new RegExp(`^\\s*${escapeRe(label)}\\s*$`, 'i');
    const texts = await el.evaluate((s) => [...s.options].map((o) => o.textContent || ''));
    const wantIndex = texts.findIndex((t) => want.test(t));
    if (wantIndex < 0) throw new Error(`no option ${label} in ${texts.join(' | ')}`);
    for (let i = 0; i < max; i++) {
      const at = await el.evaluate((s) => s.selectedIndex);
      if (at === wantIndex) return;
      await page.keyboard.press(at < wantIndex ? 'ArrowDown' : 'ArrowUp');
    }
    throw new Error(`could not select ${label} by keyboard`);
  }
  const radio = el.getByRole('radio', { name: label });
  // Tab enters a radio group at its checked (or first) radio; arrows move.
  const radios = el.getByRole('radio');
  const checked = el.locator('input[type=radio]:checked');
  await tabTo(page, (await checked.count()) ? checked : radios.first());
  for (let i = 0; i < max; i++) {
    if (await radio.isChecked()) return;
    await page.keyboard.press('ArrowDown');
  }
  throw new Error(`could not choose ${label} by keyboard`);
}

function escapeRe(s) {
  return String(s).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `true` when `path` answers 404 (the route does not exist yet). */
export async function isMissing(base, path) {
  const r = await fetch(base + path, { redirect: 'manual' });
  await r.arrayBuffer();
  return r.status === 404;
}
