// The storefront as a shopper uses it, keyboard only (no mouse): browse,
// pick a variant, add to cart, check out with tok_visa, see the
// confirmation; axe-core (WCAG 2.0/2.1/2.2 A and AA) on every page type at
// desktop and phone sizes; a stock change made through the API shows on
// the product page on the next load.
//
// Written against the planned routes (/, /collections/{handle},
// /products/{handle}, /search?q=, /cart, /checkout, /orders/{number},
// /account/…) and standard accessible markup: elements are found by role
// and label, as assistive technology finds them. Skipped while / answers 404.

import assert from 'node:assert/strict';
import {
  test, skipFileIf, axeCheck, tabTo, activate, typeInto, chooseOption, setAvailable, isMissing, PHONE,
} from './lib.mjs';

skipFileIf(async ({ base }) => ((await isMissing(base, '/')) ? 'the storefront is not served yet (GET / is 404)' : null));

const SHOPPER_EMAIL = 'ada.browser@example.com';

/** The demo shop has no shipping method or tax rate: add a US one once. */
async function ensureShipping(api) {
  const methods = (await api.getOk('/shipping-methods?limit=100')).data;
  if (!methods.some((m) => m.currency === 'USD' && (m.countries || []).includes('US'))) {
    await api.postOk('/shipping-methods', { name: 'Standard', currency: 'USD', amount: 500, countries: ['US'] });
  }
}

/** The variant picker for `name`: a labelled <select>, or a radio group
 * (fieldset + legend, or role=radiogroup). */
async function optionField(page, name) {
  for (const candidate of [
    page.getByRole('combobox', { name }),
    page.getByRole('radiogroup', { name }),
    page.getByRole('group', { name }),
    page.getByLabel(name, { exact: true }),
  ]) {
    if (await candidate.count()) return candidate.first();
  }
  throw new Error(`no option picker labelled ${name}`);
}

/** A form field by one of several label patterns, or null. */
async function field(page, ...labels) {
  for (const label of labels) {
    const f = page.getByLabel(label);
    if (await f.count()) return f.first();
  }
  return null;
}

async function fill(page, labels, value, { required = true } = {}) {
  const f = await field(page, ...labels);
  if (!f) {
    if (required) throw new Error(`no field labelled ${labels.join(' or ')}`);
    return;
  }
  const tag = await f.evaluate((e) => e.tagName.toLowerCase());
  if (tag === 'select') await chooseOption(page, f, value instanceof RegExp ? value : new RegExp(value, 'i'));
  else await typeInto(page, f, value);
}

test('a shopper buys a tee with the keyboard only', { timeout: 120_000 }, async ({ page, api, log }) => {
  await ensureShipping(api);

  // Browse: home → the product (from the home page, or through search).
  await page.goto('/');
  await axeCheck(page);
  const fromHome = page.getByRole('link', { name: /everyday tee/i });
  if (await fromHome.count()) {
    await activate(page, fromHome);
  } else {
    log('no link to Everyday Tee on the home page; searching');
    const search = page.getByRole('searchbox').or(page.getByLabel(/search/i)).first();
    await typeInto(page, search, 'everyday tee');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/search\?/);
    await axeCheck(page);
    await activate(page, page.getByRole('link', { name: /everyday tee/i }));
  }
  await page.waitForURL(/\/products\/everyday-tee/);
  await axeCheck(page);
  await assert.doesNotReject(page.getByRole('heading', { level: 1, name: /everyday tee/i }).waitFor());

  // Pick a variant, add to cart.
  await chooseOption(page, await optionField(page, 'Size'), 'M');
  await activate(page, page.getByRole('button', { name: /add to cart/i }));
  if (!/\/cart(\?|$)/.test(new URL(page.url()).pathname + new URL(page.url()).search)) {
    await activate(page, page.getByRole('link', { name: /cart|bag/i }));
    await page.waitForURL(/\/cart/);
  }
  await axeCheck(page);
  const main = page.getByRole('main');
  await assert.doesNotReject(main.getByText(/everyday tee/i).first().waitFor());
  await assert.doesNotReject(main.getByText(/\bM\b/).first().waitFor());

  // Checkout.
  await activate(page, page.getByRole('link', { name: /check ?out/i }).or(page.getByRole('button', { name: /check ?out/i })));
  await page.waitForURL(/\/checkout/);
  await axeCheck(page);
  // Step 1: contact and address.
  await fill(page, [/email address/i], SHOPPER_EMAIL);
  await fill(page, [/full name/i], 'Ada Lovelace');
  await fill(page, [/address line 1/i], '1 Main Street');
  await fill(page, [/town or city/i], 'Brooklyn');
  await fill(page, [/state, province or region/i], 'NY', { required: false });
  await fill(page, [/postal code/i], '11201');
  await fill(page, [/^country/i], /united states/i);
  await activate(page, page.getByRole('button', { name: /continue to shipping/i }));
  await page.waitForURL(/\/checkout/);
  await axeCheck(page);
  // Step 2: shipping method.
  const shipping = page.getByRole('group', { name: /shipping method/i }).or(page.getByRole('radiogroup', { name: /shipping method/i }));
  await chooseOption(page, shipping.first(), /standard/i);
  await activate(page, page.getByRole('button', { name: /update shipping/i }));
  await page.waitForURL(/\/checkout/);
  await axeCheck(page);
  // Step 3: pay with the test provider's succeeding card (tok_visa).
  const card = page.getByRole('group', { name: /test card/i }).or(page.getByRole('radiogroup', { name: /test card/i }));
  await chooseOption(page, card.first(), /visa/i);
  await activate(page, page.getByRole('button', { name: /place order/i }));

  // Confirmation.
  await page.waitForURL(/\/orders\/[^/]+\/confirmation/, { timeout: 30_000 });
  await assert.doesNotReject(page.getByRole('heading', { name: /thank you|order (is )?confirmed|order placed/i }).first().waitFor());
  await axeCheck(page);
  const orders = await api.getOk(`/orders?email=${encodeURIComponent(SHOPPER_EMAIL)}`);
  assert.ok(orders.data.length >= 1, 'the order exists in the API');
  const number = decodeURIComponent(new URL(page.url()).pathname.split('/')[2]);
  assert.ok(orders.data.some((o) => [o.number, o.id].includes(number)), `order ${number} is the shopper's`);
});

test('every page type passes axe (WCAG 2.x A/AA), desktop and phone', { timeout: 120_000 }, async ({ page, api, context }) => {
  await page.goto('/');
  const collection = await page.locator('a[href^="/collections/"]').first().getAttribute('href').catch(() => null);
  const pages = [
    ['home', '/'],
    ['collection', collection],
    ['product', '/products/everyday-tee'],
    ['search', '/search?q=tee'],
    ['search, no results', '/search?q=zzzznothing'],
    ['cart', '/cart'],
    ['checkout', '/checkout'],
    ['account', '/account'],
    ['sign in', '/account/login'],
    ['register', '/account/register'],
    ['order lookup', '/orders/lookup'],
    ['not found', '/products/no-such-product'],
  ];
  assert.ok(collection, 'the home page links to a collection');
  const failures = [];
  for (const viewport of [{ width: 1280, height: 900 }, PHONE]) {
    await page.setViewportSize(viewport);
    for (const [kind, path] of pages) {
      const res = await page.goto(path);
      if (res.status() >= 500) failures.push(`${kind} ${path}: HTTP ${res.status()}`);
      try {
        await axeCheck(page);
      } catch (e) {
        failures.push(`${kind} ${path} at ${viewport.width}x${viewport.height}:\n${e.message}`);
      }
    }
  }
  assert.equal(failures.length, 0, failures.join('\n\n'));
  void api; void context;
});

test('a stock change through the API shows on the next load of the product page', async ({ page, api }) => {
  const suffix = Date.now().toString(36);
  const sku = `BROWSER-LAMP-${suffix}`.toUpperCase();
  const handle = `browser-lamp-${suffix}`;
  const channels = (await api.getOk('/sales-channels?limit=100')).data.map((c) => c.id);
  await api.postOk('/products', {
    title: 'Browser Lamp',
    handle,
    status: 'active',
    channel_ids: channels,
    variants: [{ sku, prices: [{ currency: 'USD', amount: 4500 }] }],
  });
  const location = (await api.getOk('/locations?limit=1')).data[0].id;
  await api.postOk('/inventory/adjustments', { sku, location_id: location, kind: 'receive', quantity_delta: 10 });

  await setAvailable(api, sku, 2);
  await page.goto(`/products/${handle}`);
  await assert.doesNotReject(page.getByText(/only 2 left/i).first().waitFor({ timeout: 5_000 }), 'shows "Only 2 left"');

  await setAvailable(api, sku, 0);
  await page.reload();
  await assert.doesNotReject(page.getByText(/out of stock|sold out/i).first().waitFor({ timeout: 5_000 }), 'shows "Out of stock"');
  const add = page.getByRole('button', { name: /add to cart/i });
  if (await add.count()) assert.ok(await add.isDisabled(), 'no adding to cart when out of stock');

  await setAvailable(api, sku, 7);
  await page.reload();
  await assert.doesNotReject(page.getByRole('button', { name: /add to cart/i }).waitFor({ timeout: 5_000 }));
  assert.equal(await page.getByText(/out of stock|sold out/i).count(), 0, 'back in stock');
  await axeCheck(page);
});

test('the skip link and focus order reach the main content by keyboard', async ({ page }) => {
  await page.goto('/products/everyday-tee');
  await page.keyboard.press('Tab');
  const skip = page.getByRole('link', { name: /skip to (main )?content/i });
  await tabTo(page, skip, { max: 3 });
  await page.keyboard.press('Enter');
  const focusedInMain = await page.evaluate(() => {
    const main = document.querySelector('main');
    return !!main && (main === document.activeElement || main.contains(document.activeElement) || location.hash === `#${main.id}`);
  });
  assert.ok(focusedInMain, 'Enter on the skip link moves to <main>');
});
