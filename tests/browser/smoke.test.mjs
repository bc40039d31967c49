// The harness itself, against what every build serves: the real binary is
// up, chromium reaches it, the API answers with the demo key, and axe runs.

import assert from 'node:assert/strict';
import { test, axeCheck } from './lib.mjs';

test('healthz answers in the browser', async ({ page }) => {
  const res = await page.goto('/healthz');
  assert.equal(res.status(), 200);
  assert.deepEqual(JSON.parse(await page.locator('body').innerText()), { status: 'ok' });
});

test('the OpenAPI document is fetched from the page context', async ({ page }) => {
  await page.goto('/healthz');
  const doc = await page.evaluate(async () => {
    const r = await fetch('/api/v1/openapi.json');
    return { status: r.status, type: r.headers.get('content-type'), body: await r.json() };
  });
  assert.equal(doc.status, 200);
  assert.match(doc.type, /application\/json/);
  assert.match(doc.body.openapi, /^3\.1/);
  assert.ok(doc.body.paths['/products'], 'documents /products');
});

test('the demo shop is seeded and the demo key works', async ({ api }) => {
  const r = await api.get('/products?limit=100');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(r.body.data.length >= 10, `demo products: ${r.body.data.length}`);
  assert.ok(r.body.data.some((p) => p.handle === 'everyday-tee'), 'Everyday Tee is in the demo shop');
  const unauth = await fetch(`${process.env.KEEL_BASE}/api/v1/products`);
  assert.equal(unauth.status, 401);
});

test('axe finds a violation on a known-bad page and none on a good one', async ({ page }) => {
  // A local page (no network): an image without alt text must be reported.
  await page.setContent('<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>Bad</h1><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></main></body></html>');
  await assert.rejects(axeCheck(page), /image-alt/);
  await page.setContent('<!doctype html><html lang="en"><head><title>Good</title></head><body><main><h1>Good</h1><p>Fine.</p></main></body></html>');
  const r = await axeCheck(page);
  assert.equal(r.violations.length, 0);
});

test('keyboard helpers drive selects, radio groups, fields and buttons', async ({ page }) => {
  const { tabTo, typeInto, chooseOption, activate } = await import('./lib.mjs');
  await page.setContent(`<!doctype html><html lang="en"><head><title>Form</title></head><body><main>
    <form onsubmit="event.preventDefault(); document.querySelector('output').textContent =
      [...new FormData(this)].map(([k, v]) => k + '=' + v).join('&')">
      <label for="size">Size</label>
      <select id="size" name="size"><option>S</option><option>M</option><option>L</option></select>
      <fieldset><legend>Color</legend>
        <label><input type="radio" name="color" value="sand" checked> Sand</label>
        <label><input type="radio" name="color" value="slate"> Slate</label>
        <label><input type="radio" name="color" value="moss"> Moss</label>
      </fieldset>
      <label for="email">Email</label><input id="email" name="email" value="old@example.com">
      <button>Add to cart</button>
    </form><output></output></main></body></html>`);
  await chooseOption(page, page.getByLabel('Size'), 'L');
  await chooseOption(page, page.getByRole('group', { name: 'Color' }), 'Moss');
  await typeInto(page, page.getByLabel('Email'), 'ada@example.com');
  await activate(page, page.getByRole('button', { name: /add to cart/i }), { load: false });
  await page.getByText('size=L').waitFor();
  assert.equal(await page.locator('output').textContent(), 'size=L&color=moss&email=ada@example.com');
  // Shift+Tab goes back.
  await tabTo(page, page.getByLabel('Size'), { key: 'Shift+Tab' });
});
