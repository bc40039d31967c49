// The admin console in a real browser, keyboard only, as the demo owner
// (signed in with two-factor by admin.test.mjs, which runs first; a fresh
// sign-in otherwise): adjust stock and find the movement in the ledger.
// axe-core checks every page seen.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test, skipFileIf, axeCheck, activate, typeInto, chooseOption } from './lib.mjs';
import { EMAIL, PASSWORD, asOwner } from './admin.mjs';

skipFileIf(async () => (EMAIL && PASSWORD ? null : 'serve --demo printed no demo owner'));

const SKU = 'EVE-TEE-M';

test('an owner adjusts stock and sees the ledger entry', { timeout: 90_000 }, async ({ page, api }) => {
  await asOwner(page);
  await page.goto('/admin');
  await axeCheck(page);

  // From the levels list, filtered by SKU, to the item's page.
  await activate(page, page.getByRole('link', { name: 'Inventory', exact: true }));
  await axeCheck(page);
  await typeInto(page, page.getByLabel('SKU or title'), SKU);
  await page.keyboard.press('Enter');
  await page.waitForURL(/[?&]q=EVE-TEE-M/);
  await activate(page, page.getByRole('link', { name: SKU }).first());
  await page.getByRole('heading', { name: `Stock of ${SKU}` }).waitFor();
  await axeCheck(page);

  const levels = (await api.getOk(`/inventory/levels?sku=${SKU}`)).data;
  const level = levels[0];
  const location = (await api.getOk(`/locations/${level.location_id}`)).name;
  const target = level.on_hand + 7;
  const note = `shelf count ${Date.now()}`;

  await chooseOption(page, page.getByLabel('Location'), location);
  await chooseOption(page, page.getByLabel('Reason'), /stock count/i);
  await typeInto(page, page.getByLabel('Quantity'), target);
  await typeInto(page, page.getByLabel(/^Note/), note);
  await activate(page, page.getByRole('button', { name: 'Adjust stock' }));

  await page.getByRole('status').getByText(`now has ${target} on hand`).waitFor();
  const entry = page.getByRole('row').filter({ hasText: note });
  await entry.waitFor();
  assert.match(await entry.innerText(), /\+7/, 'the ledger row shows the change');
  assert.match(await entry.innerText(), new RegExp(EMAIL.replace(/[.]/g, '\\.')), 'and who made it');
  await axeCheck(page);

  const after = (await api.getOk(`/inventory/levels?sku=${SKU}`)).data.find((l) => l.location_id === level.location_id);
  assert.equal(after.on_hand, target, 'the API reads the same level');
});

test('an owner replays a failed webhook and it is delivered', { timeout: 90_000 }, async ({ page, api }) => {
  // A receiver on loopback that fails until told otherwise (the server runs
  // with KEEL_ALLOW_PRIVATE_TARGETS=1, see ./run).
  let answer = 500;
  const received = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push({ id: req.headers['webhook-id'], status: answer });
      res.writeHead(answer).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${server.address().port}/hook`;
    const endpoint = await api.postOk('/webhook-endpoints', { url, event_types: ['location.*'] });
    await api.postOk('/locations', { name: `Webhook probe ${Date.now()}`, kind: 'warehouse', priority: 90, country: 'US' });
    // The first attempt fails at once, the retry 5 s later fails too; the
    // next automatic one is 5 minutes away, so only Replay can deliver it.
    const message = await waitFor(async () => {
      const m = (await api.getOk(`/webhook-endpoints/${endpoint.id}/messages`)).data[0];
      return m && m.attempts.length >= 2 ? m : null;
    }, 30_000, 'two failed attempts');
    assert.ok(received.length >= 2 && received.every((r) => r.status === 500));

    await asOwner(page);
    await page.goto('/admin');
    await activate(page, page.getByRole('link', { name: 'Integrations', exact: true }));
    await page.getByRole('heading', { name: 'Integrations', level: 1 }).waitFor();
    await axeCheck(page);
    await activate(page, page.getByRole('link', { name: url }));
    await page.getByRole('heading', { name: 'Webhook endpoint', level: 1 }).waitFor();
    await axeCheck(page);

    answer = 200;
    await activate(page, page.getByRole('button', { name: /^Replay location\.created message of/ }).first());
    await page.getByRole('status').getByText(/replayed/).waitFor();
    await axeCheck(page);

    // The message's own page: delivered, by the replay.
    await waitFor(async () => {
      const m = await api.getOk(`/webhook-messages/${message.id}`);
      return m.status === 'succeeded' ? m : null;
    }, 30_000, 'the replayed message to be delivered');
    await page.goto(`/admin/webhook-messages/${message.id}`);
    await page.getByRole('heading', { name: /^Webhook message location\.created/ }).waitFor();
    assert.match(await page.locator('main').innerText(), /Delivered/);
    await axeCheck(page);
    assert.equal(received.at(-1).status, 200);
    assert.equal(new Set(received.map((r) => r.id)).size, 1, 'every attempt carries the same webhook-id');
  } finally {
    server.close();
  }
});

/** Polls `check` every 250 ms until it returns something truthy. */
async function waitFor(check, timeoutMs, what) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('every admin page type passes axe (WCAG 2.x A/AA), desktop and phone', { timeout: 180_000 }, async ({ page, api, base }) => {
  // Something to show on every page: an order, an inbound integration with
  // one applied sync batch, a webhook endpoint with a message.
  const order = await placeOrder(api);
  const product = (await api.getOk('/products?limit=1')).data[0];
  const level = (await api.getOk('/inventory/levels?sku=EVE-TEE-M')).data[0];
  const integration = await api.postOk('/integrations', { name: `Axe 3PL ${Date.now()}`, kind: '3pl', auth: 'api_key', freshness_sla_seconds: 900 });
  const feed = await fetch(`${base}/hooks/integrations/${integration.id}/stock-feed?mode=apply_valid`, {
    method: 'POST',
    headers: { authorization: `Bearer ${integration.credential}`, 'content-type': 'text/csv' },
    body: `sku,location_id,on_hand,counted_at\nEVE-TEE-M,${level.location_id},${level.on_hand},${new Date().toISOString()}\nNO-SUCH-SKU,${level.location_id},3,${new Date().toISOString()}\n`,
  });
  const batch = await feed.json();
  assert.ok(batch.id, `a sync batch: ${JSON.stringify(batch)}`);
  const endpoint = await api.postOk('/webhook-endpoints', { url: 'https://receiver.invalid/hook', event_types: ['order.*'] });
  await api.postOk(`/orders/${order.id}/cancel`, {});
  const msg = await waitFor(async () => (await api.getOk(`/webhook-endpoints/${endpoint.id}/messages`)).data[0], 30_000, 'a webhook message');

  await asOwner(page);
  await page.goto('/admin/users');
  const userHref = await page.getByRole('link', { name: EMAIL }).first().getAttribute('href');
  await page.goto('/admin/inventory/lookup?sku=EVE-TEE-M');
  const itemPath = new URL(page.url()).pathname;

  const paths = [
    '/admin',
    '/admin/products', '/admin/products?q=no-such-product', '/admin/products/new', `/admin/products/${product.id}`,
    '/admin/inventory', '/admin/inventory?low=1', itemPath, '/admin/inventory/transfers',
    '/admin/orders', `/admin/orders/${order.id}`,
    '/admin/integrations', `/admin/webhook-endpoints/${endpoint.id}`, `/admin/webhook-messages/${msg.id}`,
    `/admin/integrations/${integration.id}`, `/admin/sync-batches/${batch.id}`,
    userHref, '/admin/users', '/admin/roles', '/admin/api-keys', '/admin/audit-log',
    '/admin/orders/ord_00000000000000000000000000000000', // the "not found" page
  ];
  for (const viewport of [{ width: 1280, height: 900 }, { width: 390, height: 844 }]) {
    await page.setViewportSize(viewport);
    for (const path of paths) {
      const res = await page.goto(path);
      const expected = path.includes('ord_0000') ? 404 : 200;
      assert.equal(res.status(), expected, `${path} answers ${expected}`);
      await axeCheck(page);
    }
  }

  // Refused forms re-render with their error summary: those pages too.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto('/admin/products/new');
  await activate(page, page.getByRole('button', { name: 'Create product' }));
  await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
  await axeCheck(page);
  const bad = await page.goto('/admin/orders?from=yesterday');
  assert.equal(bad.status(), 422);
  await axeCheck(page);

  // The add forms on the overview (a refusal, then each secret shown once)
  // and the rotations on the endpoint and integration pages.
  await page.goto('/admin/integrations');
  await activate(page, page.getByRole('button', { name: 'Add webhook endpoint' }));
  await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
  await axeCheck(page);
  await typeInto(page, page.getByLabel('Endpoint URL'), 'https://receiver.invalid/axe');
  await typeInto(page, page.getByLabel('Events'), 'order.*, inventory.*');
  await activate(page, page.getByRole('button', { name: 'Add webhook endpoint' }));
  await page.getByRole('heading', { level: 1, name: 'Webhook endpoint added' }).waitFor();
  await axeCheck(page);
  await activate(page, page.getByRole('link', { name: 'Go to the endpoint' }));
  await activate(page, page.getByRole('button', { name: 'Rotate signing secret' }));
  await page.getByRole('heading', { level: 1, name: 'Signing secret rotated' }).waitFor();
  await axeCheck(page);
  await page.goto('/admin/integrations');
  await typeInto(page, page.getByLabel('Name'), `Axe ERP ${Date.now()}`);
  await chooseOption(page, page.getByLabel('Kind'), 'ERP');
  await activate(page, page.getByRole('button', { name: 'Add inbound integration' }));
  await page.getByRole('heading', { level: 1, name: 'Inbound integration added' }).waitFor();
  await axeCheck(page);
  await activate(page, page.getByRole('link', { name: 'Go to the integration' }));
  await activate(page, page.getByRole('button', { name: 'Rotate credential' }));
  await page.getByRole('heading', { level: 1, name: 'Credential rotated' }).waitFor();
  await axeCheck(page);
});

/** A paid order for one EVE-TEE-M through the API, as a shopper's checkout makes it. */
async function placeOrder(api) {
  const cart = await api.postOk('/carts', { currency: 'USD', email: 'axe@example.com' });
  await api.postOk(`/carts/${cart.id}/lines`, { sku: 'EVE-TEE-M', quantity: 1 });
  const address = { name: 'Ada Lovelace', line1: '1 Main St', city: 'Springfield', region: 'IL', postal_code: '62701', country: 'US' };
  await api.postOk(`/carts/${cart.id}`, { shipping_address: address });
  const methods = await api.getOk(`/carts/${cart.id}/shipping-methods`);
  await api.postOk(`/carts/${cart.id}`, { shipping_method_id: methods.data[0].id });
  return api.postOk(`/carts/${cart.id}/complete`, { payment_method: 'tok_visa' });
}
