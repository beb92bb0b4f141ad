/**
 * An action `http` step that cannot connect says where and why (issue #18 item 11): fetch() only
 * says "fetch failed"; the tool names the host, the port and the cause (ECONNREFUSED, ENOTFOUND,
 * TLS), as the test-plan targets do, and keeps the retry verdict of the cause.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpTool } from '../../src/actions/builtins.js';
import type { ToolContext } from '../../src/actions/tool.js';
import { classifyError } from '../../src/core/errors.js';

function ctx(): ToolContext {
  return {
    signal: new AbortController().signal,
    attempt: 1,
    stepId: 'register',
    planId: 'plan',
    usage: { networkRequest: () => {}, diskRead: () => {}, diskWrite: () => {} },
  };
}

async function failure(url: string, method = 'POST'): Promise<Error> {
  try {
    await httpTool().execute({ url, method, ...(method === 'POST' ? { json: {} } : {}) }, ctx());
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the request to fail');
}

let plain: Server;
let plainPort: number;
let closedPort: number;

beforeAll(async () => {
  // A port nothing listens on: bound, then released.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  // A plain HTTP server, for a TLS handshake that cannot succeed.
  plain = createServer((_req, res) => res.end('plain'));
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  plainPort = (plain.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => plain.close(() => resolve())));

describe('http tool: a request that cannot connect names host, port and cause', () => {
  it('connection refused: host and port, ECONNREFUSED, retried as a network error', async () => {
    const err = await failure(`http://127.0.0.1:${closedPort}/tenants`);
    expect(err.message).toBe(
      `http: POST http://127.0.0.1:${closedPort}/tenants failed: cannot connect to 127.0.0.1:${closedPort}: connection refused (ECONNREFUSED)`,
    );
    expect(classifyError(err)).toMatchObject({ retryable: true, code: 'NETWORK_ERROR' });
  });

  it('an unknown host: the name, the default port and the DNS code', async () => {
    const err = await failure('http://stride-no-such-host.invalid/x', 'GET');
    // ENOTFOUND where DNS answers; EAI_AGAIN where no resolver can be reached (a sandbox).
    expect(err.message).toMatch(
      /^http: GET http:\/\/stride-no-such-host\.invalid\/x failed: cannot connect to stride-no-such-host\.invalid:80: (host not found \(ENOTFOUND\)|DNS lookup failed, temporarily \(EAI_AGAIN\))$/,
    );
    expect(classifyError(err)).toMatchObject({ retryable: true, code: 'NETWORK_ERROR' });
  });

  it('TLS: the handshake with host:port failed, with the TLS reason; not retried', async () => {
    const err = await failure(`https://127.0.0.1:${plainPort}/x`, 'GET');
    expect(err.message).toMatch(
      new RegExp(
        `^http: GET https://127\\.0\\.0\\.1:${plainPort}/x failed: TLS handshake with 127\\.0\\.0\\.1:${plainPort} failed: .+ \\([A-Z_]+\\)$`,
      ),
    );
    expect(classifyError(err)).toMatchObject({ retryable: false });
  });
});
