// Writes cases.jsonl, the demo's 500 cases (run once; the output is committed):
//   node examples/demo/generate.mjs
// Faults are assigned by position so every demo shows each outcome: retries that pay off, a
// 429 that cools the bucket down, hangs the timeout cuts, persistent errors, and assertion
// failures on purpose. The mock adds a few random 429s and 503s on top (seeded).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const topics = {
  refunds: [
    'refund for order',
    'money back for order',
    'refund window for order',
    'refund status of order',
  ],
  shipping: [
    'shipping time for order',
    'tracking number of order',
    'delivery address of order',
    'lost parcel for order',
  ],
  accounts: [
    'password reset for account',
    'two-factor setup for account',
    'email change for account',
    'closing account',
  ],
  billing: [
    'invoice copy for order',
    'double charge on order',
    'payment method for order',
    'VAT number on order',
  ],
  products: [
    'warranty of product',
    'size guide of product',
    'stock of product',
    'manual of product',
  ],
};
const names = Object.keys(topics);

/** The fault the mock injects for case i (`times`: only the first attempts), if any. */
function faultFor(i) {
  if (i % 61 === 13) return { fault: '503', times: 1, tag: 'flaky' }; // a retry that pays off
  if (i === 5 || i === 205) return { fault: '429-retry-after', times: 1, tag: 'rate-limited' };
  if (i === 22 || i === 144) return { fault: 'hang', tag: 'hang' }; // times out on every attempt
  if (i === 100) return { fault: 'hang', times: 1, tag: 'hang' }; // once, then fine
  if (i % 167 === 40) return { fault: '500', tag: 'broken' }; // 5xx on every attempt: error
  if (i === 77) return { fault: '400', tag: 'bad-request' }; // not retried: error at once
  return undefined;
}
const lines = [];
for (let i = 0; i < 500; i++) {
  const dataset = names[i % names.length];
  const phrases = topics[dataset];
  const phrase = phrases[Math.floor(i / names.length) % phrases.length];
  const n = 1000 + i;
  const query = `Question about the ${phrase} ${n}`;
  const keyword = phrase.split(' ')[0];
  const inputs = { query };
  const tags = [dataset];
  if (i % 10 === 0) tags.push('smoke');
  let expected = { field: 'text', contains: [keyword, String(n)] };
  const fault = faultFor(i);
  if (fault !== undefined) {
    inputs.__fault = fault.fault;
    if (fault.times !== undefined) inputs.__fault_times = fault.times;
    tags.push(fault.tag);
  } else if (i % 37 === 19) {
    expected = { field: 'text', contains: 'I cannot help with that' }; // fails on purpose
    tags.push('known-bad');
  }
  lines.push(JSON.stringify({ id: `${dataset}-${n}`, dataset, tags, inputs, expected }));
}
writeFileSync(
  join(dirname(fileURLToPath(import.meta.url)), 'cases.jsonl'),
  `${lines.join('\n')}\n`,
);
console.log(`wrote ${lines.length} cases`);
