// Phone-sized screenshot of a storefront page (default: the product page of
// the demo's Everyday Tee at 390x844, device scale 2) with Debian chromium.
//   node tests/browser/screenshot.mjs --base http://127.0.0.1:PORT \
//        [--path /products/everyday-tee] [--out docs/product-mobile.png] [--full-page]
// `scripts/bench --screenshot` starts a demo server and runs this.
// Exit 3 when the page does not answer 200 (the storefront is not there).

import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { launchBrowser, PHONE } from './lib.mjs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : true]);
    return acc;
  }, []),
);
const base = args.base || process.env.KEEL_BASE;
if (!base) {
  console.error('screenshot: --base URL (or KEEL_BASE) is required');
  process.exit(2);
}
const path = args.path || '/products/everyday-tee';
const out = resolve(args.out || 'docs/product-mobile.png');

const browser = await launchBrowser();
try {
  const context = await browser.newContext({
    viewport: PHONE, deviceScaleFactor: Number(args.scale || 2), isMobile: true, hasTouch: true,
  });
  const page = await context.newPage();
  const res = await page.goto(new URL(path, base).href, { waitUntil: 'load' });
  if (!res || res.status() !== 200) {
    console.error(`screenshot: ${path} answered ${res ? res.status() : 'nothing'}; no screenshot taken`);
    process.exitCode = 3;
  } else {
    await page.evaluate(() => document.fonts && document.fonts.ready);
    mkdirSync(dirname(out), { recursive: true });
    await page.screenshot({ path: out, fullPage: args['full-page'] === true });
    console.log(`screenshot: ${out} (${PHONE.width}x${PHONE.height} CSS px of ${path})`);
  }
} finally {
  await browser.close();
}
