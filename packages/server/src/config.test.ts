import { describe, expect, it } from 'vitest';
import { parseTrustProxy, readConfig } from './config.js';

// Issue 12, item 4: the client address is only taken from X-Forwarded-For when the peer is a listed proxy.

describe('LATCHKEY_TRUST_PROXY', () => {
  it('is off when unset, empty or false', () => {
    expect(readConfig({}).trustProxy).toBe(false);
    expect(parseTrustProxy('')).toBe(false);
    expect(parseTrustProxy('false')).toBe(false);
  });

  it('takes a comma-separated list of proxy addresses and CIDRs, IPv4 and IPv6', () => {
    expect(readConfig({ LATCHKEY_TRUST_PROXY: '10.0.0.5, 10.1.0.0/16,fd00::/8 ,::1' }).trustProxy).toEqual([
      '10.0.0.5',
      '10.1.0.0/16',
      'fd00::/8',
      '::1',
    ]);
  });

  it.each(['true', 'TRUE', ' true '])('refuses %j at start-up, saying to list the proxies', (value) => {
    expect(() => readConfig({ LATCHKEY_TRUST_PROXY: value })).toThrow(
      /LATCHKEY_TRUST_PROXY=true is no longer accepted.*List the addresses or CIDRs of your proxies/,
    );
  });

  it.each(['proxy.example.test', '10.0.0.0/33', '10.0.0.5,loopback', '1.2.3.4/8/8'])(
    'refuses %j, naming the variable and the entry',
    (value) => {
      expect(() => readConfig({ LATCHKEY_TRUST_PROXY: value })).toThrow(
        /^LATCHKEY_TRUST_PROXY entry \d is not an IP address or CIDR/,
      );
    },
  );
});
