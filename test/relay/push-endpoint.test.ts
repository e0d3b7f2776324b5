// Which push endpoints the relay may POST to (relay/push/endpoint.ts): public https services only,
// checked on the URL when a subscription is stored and on the resolved addresses at every send.
import { describe, expect, test } from 'vitest';
import { endpointProblem, isPublicAddress, publicLookup } from '../../relay/push/endpoint.ts';

describe('push endpoints', () => {
  test.each([
    ['8.8.8.8', true],
    ['142.250.74.10', true],
    ['2a00:1450:4001:80b::200a', true],
    ['127.0.0.1', false],
    ['10.0.0.1', false],
    ['172.16.5.4', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['255.255.255.255', false],
    ['224.0.0.1', false],
    ['::1', false],
    ['::', false],
    ['fe80::1', false],
    ['fd12:3456::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['::ffff:8.8.8.8', true],
    ['64:ff9b::a00:1', false],
    ['not an address', false],
  ])('%s is public: %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });

  test('URL checks, strict and for a local push service', () => {
    expect(endpointProblem(new URL('https://fcm.googleapis.com/fcm/send/abc'), false)).toBeUndefined();
    expect(endpointProblem(new URL('https://updates.push.services.mozilla.com:443/wpush/v2/x'), false)).toBeUndefined();
    expect(endpointProblem(new URL('http://push.example/x'), false)).toMatch(/https/);
    expect(endpointProblem(new URL('https://push.example:8443/x'), false)).toMatch(/port/);
    expect(endpointProblem(new URL('https://127.0.0.1/x'), false)).toMatch(/public/);
    expect(endpointProblem(new URL('https://LOCALHOST/x'), false)).toMatch(/public/);
    expect(endpointProblem(new URL('https://u:p@push.example/x'), true)).toMatch(/credentials/);
    expect(endpointProblem(new URL('http://127.0.0.1:9999/x'), true)).toBeUndefined();
    expect(endpointProblem(new URL('ftp://127.0.0.1/x'), true)).toMatch(/https/);
  });

  test('a name that resolves to a non-public address fails at connection time', async () => {
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => publicLookup('localhost', {}, (e) => resolve(e)));
    expect(err?.code).toBe('EPUSHADDRESS');
  });
});
