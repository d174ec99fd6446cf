import { BridgeError } from '../../common/errors';
import { classifyError, classifyResponse, nextDelay, parseRetryAfter, WebhookAttemptError } from './webhook.policy';

const NOW = Date.parse('2025-01-01T12:00:00Z');

describe('webhook status policy', () => {
  it.each([200, 201, 202, 204, 299])('%i is delivered', (status) => {
    expect(classifyResponse({ status })).toBeUndefined();
  });

  it.each([
    // status, action, outcome, breaker
    [410, 'disable', '4xx', false],
    [429, 'retry', '4xx', false],
    [503, 'retry', '5xx', true],
    [408, 'retry', '4xx', true],
    [500, 'retry', '5xx', true],
    [502, 'retry', '5xx', true],
    [504, 'retry', '5xx', true],
    [400, 'dead_letter', '4xx', false],
    [401, 'dead_letter', '4xx', false],
    [404, 'dead_letter', '4xx', false],
    [413, 'dead_letter', '4xx', false],
    [301, 'dead_letter', '3xx', false],
    [302, 'dead_letter', '3xx', false],
    [307, 'dead_letter', '3xx', false],
    [308, 'dead_letter', '3xx', false],
    [102, 'retry', '5xx', true],
    [600, 'retry', '5xx', true],
  ] as const)('%i → %s (%s, breaker %s)', (status, action, outcome, breaker) => {
    const err = classifyResponse({ status });
    expect(err).toBeInstanceOf(WebhookAttemptError);
    expect(err).toBeInstanceOf(BridgeError);
    expect(err).toMatchObject({ action, outcome, status, opensBreaker: breaker, code: `http_${status}`, retriable: action === 'retry' });
  });

  it('puts the status and a body excerpt in the message, and names the redirect target without its query', () => {
    expect(classifyResponse({ status: 422, excerpt: '  {"error":"unknown field"}\n' })?.message).toBe('HTTP 422: {"error":"unknown field"}');
    expect(classifyResponse({ status: 400, excerpt: 'x'.repeat(5000) })?.message).toHaveLength('HTTP 400: '.length + 512);
    expect(classifyResponse({ status: 302, location: 'https://login.example.com/sso?token=abc' })?.message).toBe('HTTP 302: redirect to https://login.example.com/sso not followed');
  });

  it('honours retry-after on 429 and 503 only', () => {
    expect(classifyResponse({ status: 429, retryAfter: '7' }, NOW)?.retryAfterMs).toBe(7000);
    expect(classifyResponse({ status: 503, retryAfter: 'Wed, 01 Jan 2025 12:00:30 GMT' }, NOW)?.retryAfterMs).toBe(30_000);
    expect(classifyResponse({ status: 500, retryAfter: '7' }, NOW)?.retryAfterMs).toBeUndefined();
    expect(classifyResponse({ status: 429 }, NOW)?.retryAfterMs).toBeUndefined();
  });
});

describe('retry-after parsing', () => {
  it('reads delta-seconds and HTTP dates; a past date is 0; garbage is ignored', () => {
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter(' 120 ', NOW)).toBe(120_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 12:01:00 GMT', NOW)).toBe(60_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 11:00:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('-5', NOW)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
  });
});

describe('errors without a response', () => {
  const errno = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });

  it.each([
    ['ECONNREFUSED', 'network'], ['ECONNRESET', 'network'], ['EAI_AGAIN', 'network'], ['ENOTFOUND', 'network'],
    ['EHOSTUNREACH', 'network'], ['UND_ERR_SOCKET', 'network'], ['ETIMEDOUT', 'timeout'], ['UND_ERR_CONNECT_TIMEOUT', 'timeout'],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout'], ['SOMETHING_NEW', 'network'],
  ])('%s → retried as %s, counts for the breaker', (code, outcome) => {
    expect(classifyError(errno(code))).toMatchObject({ code, outcome, action: 'retry', retriable: true, opensBreaker: true });
  });

  it('reads our own attempt timeout by code, and codes of wrapped causes', () => {
    expect(classifyError(new BridgeError('attempt_timeout', 'no response within 100 ms', { retriable: true }))).toMatchObject({ outcome: 'timeout', action: 'retry' });
    expect(classifyError(new Error('fetch failed', { cause: errno('ECONNREFUSED') }))).toMatchObject({ code: 'ECONNREFUSED', outcome: 'network' });
  });

  it('does not retry a request that cannot be sent, and never decides by message text', () => {
    expect(classifyError(errno('UND_ERR_INVALID_ARG'))).toMatchObject({ action: 'dead_letter', retriable: false });
    // A message that looks like a refused connection but carries no code is an unknown network error.
    expect(classifyError(new Error('ECONNREFUSED'))).toMatchObject({ code: 'network_error', outcome: 'network', action: 'retry' });
  });
});

describe('next delay', () => {
  const schedule = [0, 5000, 300_000, 1_800_000];

  it('follows the schedule with equal jitter in [d/2, d], then gives up', () => {
    expect(nextDelay(schedule, 1, undefined, () => 0)).toBe(2500);
    expect(nextDelay(schedule, 1, undefined, () => 0.999999)).toBe(5000);
    expect(nextDelay(schedule, 2, undefined, () => 0.5)).toBe(225_000);
    expect(nextDelay(schedule, 3, undefined, () => 1)).toBe(1_800_000);
    expect(nextDelay(schedule, 4)).toBeUndefined();
    expect(nextDelay([0], 1)).toBeUndefined();
  });

  it('takes retry-after as a lower bound over the schedule, capped at the longest scheduled delay, still counting attempts', () => {
    expect(nextDelay(schedule, 1, 42_000, () => 0)).toBe(42_000);
    expect(nextDelay(schedule, 1, 0, () => 0)).toBe(2500);
    expect(nextDelay(schedule, 2, 1000, () => 1)).toBe(300_000);
    expect(nextDelay(schedule, 1, 86_400_000)).toBe(1_800_000);
    expect(nextDelay(schedule, 4, 1000)).toBeUndefined();
  });
});
