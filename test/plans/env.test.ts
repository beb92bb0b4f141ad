// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` here is plan syntax under test, not a template literal.
import { describe, expect, test } from 'vitest';
import { interpolate, parsePlan, printPlan, redact, redactUrl } from '../../src/plans/index.js';
import { planErrorOf } from './helpers.js';

describe('interpolate', () => {
  const env = { HOST: 'h.example', EMPTY: '', PORT: '8080' };

  test.each([
    ['${HOST}', 'h.example'],
    ['http://${HOST}:${PORT}/v1', 'http://h.example:8080/v1'],
    ['${MISSING:-fallback}', 'fallback'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${EMPTY}', ''],
    ['${HOST:-unused}', 'h.example'],
    ['${MISSING:-}', ''],
    ['${MISSING:-a:-b}', 'a:-b'],
    ['$${HOST}', '${HOST}'],
    ['cost $5 and $$ and $HOST', 'cost $5 and $$ and $HOST'],
    ['$$${HOST}', '$${HOST}'],
  ])('%s -> %s', (text, value) => {
    const r = interpolate(text, env);
    expect(r.value).toBe(value);
    expect(r.missing).toEqual([]);
    expect(r.error).toBeUndefined();
  });

  test('reports unset variables and malformed references', () => {
    expect(interpolate('${A}-${B:-b}-${C}', {})).toEqual({
      value: '-b-',
      vars: ['A', 'B', 'C'],
      missing: ['A', 'C'],
    });
    expect(interpolate('${OPEN', {}).error).toBe('unterminated ${ at offset 0');
    expect(interpolate('${}', {}).error).toBe(
      'invalid variable reference ${} (write $${ for a literal ${)',
    );
  });
});

describe('in a plan', () => {
  test('runs after YAML parsing: a value cannot inject structure', () => {
    const m = parsePlan('workflow_id: ${NAME}\ncases: [{}]\n', {
      env: { NAME: 'x\nexecution_policy: { concurrency: 1 }\n# {' },
    });
    expect(m.workflowId).toBe('x\nexecution_policy: { concurrency: 1 }\n# {');
    expect(m.executionPolicy.concurrency).toBe(10);
  });

  test('case data is not interpolated', () => {
    const m = parsePlan('workflow_id: w\ncases:\n  - inputs: { template: "Hi ${name}" }\n', {
      env: {},
    });
    const [ds] = m.datasets;
    expect(ds?.cases.kind === 'inline' && ds.cases.cases[0]?.inputs).toEqual({
      template: 'Hi ${name}',
    });
  });

  test('a missing variable names file, line, column, key path and variable; value is the template', () => {
    const err = planErrorOf(() =>
      parsePlan('workflow_id: w\ncases: [{}]\ntarget:\n  type: dify\n  api_key: ${KEY}\n', {
        file: 'p.yaml',
        env: { OTHER: 'super-secret-value' },
      }),
    );
    expect(err.code).toBe('ENV_MISSING');
    expect(err.message).toBe('p.yaml:5:12: target.api_key: environment variable KEY is not set');
    expect(err.issues).toEqual([
      {
        file: 'p.yaml',
        line: 5,
        column: 12,
        path: 'target.api_key',
        message: 'environment variable KEY is not set',
        value: '${KEY}',
      },
    ]);
  });
});

describe('secrets', () => {
  const text = `workflow_id: w
cases: [{}]
target:
  type: http
  url: \${URL:-http://127.0.0.1:1/x}
  headers:
    Authorization: Bearer \${TOKEN}
    X-Api-Key: literal-key-123
    X-Trace: \${TRACE:-on}
    Accept: application/json
`;
  const env = { TOKEN: 'tok-SECRET-42' };

  test('the manifest records which paths hold secrets, and their templates', () => {
    const m = parsePlan(text, { env });
    expect(m.secrets).toEqual([
      { path: ['target', 'headers', 'Authorization'], template: 'Bearer ${TOKEN}' },
      { path: ['target', 'headers', 'X-Api-Key'] },
      { path: ['target', 'headers', 'X-Trace'], template: '${TRACE:-on}' },
    ]);
    expect(m.target).toMatchObject({
      headers: { Authorization: 'Bearer tok-SECRET-42', Accept: 'application/json' },
    });
  });

  test('redact() replaces every secret value', () => {
    const m = parsePlan(text, { env });
    const r = redact(m);
    expect(r.target).toEqual({
      type: 'http',
      url: 'http://127.0.0.1:1/x',
      method: 'POST',
      headers: {
        Authorization: '[redacted]',
        'X-Api-Key': '[redacted]',
        'X-Trace': '[redacted]',
        Accept: 'application/json',
      },
    });
    expect(JSON.stringify(r)).not.toContain('SECRET');
    // The original is untouched.
    expect(m.target).toMatchObject({ headers: { Authorization: 'Bearer tok-SECRET-42' } });
  });

  test('printPlan prints templates, never values', () => {
    const m = parsePlan(text, { env });
    const printed = printPlan(m);
    expect(printed).not.toContain('SECRET');
    expect(printed).not.toContain('literal-key-123');
    expect(printed).toContain('Authorization: Bearer ${TOKEN}');
    expect(printed).toContain('X-Api-Key: "[redacted]"');
    expect(printPlan(m, { secrets: 'reveal' })).toContain('X-Api-Key: literal-key-123');
    expect(parsePlan(printPlan(m, { secrets: 'reveal' }), { env })).toEqual(m);
  });

  test('an api_key is a secret even when written literally', () => {
    const m = parsePlan('workflow_id: w\ncases: [{}]\ntarget: { type: dify, api_key: app-lit }\n');
    expect(m.secrets).toEqual([{ path: ['target', 'apiKey'] }]);
    expect(redact(m).target).toMatchObject({ apiKey: '[redacted]' });
  });

  test('a password in base_url is redacted like every other secret; the host stays', () => {
    const m = parsePlan(
      'workflow_id: w\ncases: [{}]\ntarget: { type: dify, api_key: app-k, base_url: "${DIFY_URL}" }\n',
      { env: { DIFY_URL: 'https://bob:PASS-77@dify.example:8443/v1' } },
    );
    expect(m.target).toMatchObject({ baseUrl: 'https://bob:PASS-77@dify.example:8443/v1' });
    expect(redact(m).target).toMatchObject({
      baseUrl: 'https://[redacted]@dify.example:8443/v1',
      apiKey: '[redacted]',
    });
    expect(printPlan(m)).not.toContain('PASS-77');
    expect(printPlan(m)).toContain('base_url: https://[redacted]@dify.example:8443/v1');
    expect(printPlan(m, { secrets: 'reveal' })).toContain('bob:PASS-77@dify.example');
    // An openai target and an http target's url (with a credential query parameter) too.
    const o = parsePlan(
      'workflow_id: w\ncases: [{}]\ntarget: { type: openai, model: m, base_url: "http://u:PASS-78@h/v1" }\n',
    );
    expect(JSON.stringify(redact(o))).not.toContain('PASS-78');
    const h = parsePlan(
      'workflow_id: w\ncases: [{}]\ntarget: { type: http, url: "http://h/x?api_key=PASS-79&lang=en" }\n',
    );
    expect(redact(h).target).toMatchObject({ url: 'http://h/x?api_key=[redacted]&lang=en' });
  });

  test('redactUrl: user info up to the last @ of the authority, credential parameters, nothing else', () => {
    expect(redactUrl('http://u:p@ss@h:8/x@y')).toBe('http://[redacted]@h:8/x@y');
    expect(redactUrl('http:user:pass@host/v1')).toBe('http:[redacted]@host/v1');
    expect(redactUrl('http://token-only@h')).toBe('http://[redacted]@h');
    expect(redactUrl('http://h/p?a=1&Api-Key=zz&sig=s&key=k&keys=3#f?token=x')).toBe(
      'http://h/p?a=1&Api-Key=[redacted]&sig=[redacted]&key=[redacted]&keys=3#f?token=x',
    );
    for (const same of ['http://h/v1', 'http://h/a@b', 'not a url', 'http://h\\u:p@x'])
      expect(redactUrl(same)).toBe(same);
  });

  test('a bad base_url is shown in the error without its password', () => {
    const plan =
      'workflow_id: w\ncases: [{}]\ntarget: { type: dify, api_key: k, base_url: "ftp://u:PASS-80@h" }\n';
    let err: unknown;
    try {
      parsePlan(plan);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toMatch(/base_url: "ftp:\/\/\[redacted\]@h"/);
    expect((err as Error).message).not.toContain('PASS-80');
    expect(JSON.stringify(err)).not.toContain('PASS-80');
  });

  test('a literal ${ survives printing and reparsing', () => {
    const m = parsePlan('workflow_id: price $${AMOUNT}\ncases: [{}]\n', { env: {} });
    expect(m.workflowId).toBe('price ${AMOUNT}');
    expect(parsePlan(printPlan(m), { env: {} })).toEqual(m);
  });
});
